"""Constrained output through the gateway: response_format JSON schemas and tool_choice.

The tiny random model never writes JSON or tool calls by itself, so whatever structure comes
back was imposed by the grammar. Sampling with several seeds shows it holds for any draw.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from openai import BadRequestError, OpenAI

from tests.server_process import ServerProcess

ASK = [{"role": "user", "content": "what is the weather?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris", "Rome"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"enum": ["UTC", "CET"]}},
            "required": ["zone"],
            "additionalProperties": False,
        },
    },
}
SEEDS = range(1, 7)


@pytest.fixture(scope="module")
def server(server_factory, llm_dir: Path) -> ServerProcess:
    return server_factory(
        "--task", "text_generation", "--model_path", str(llm_dir), "--model_name", "llm", "--tool_parser", "hermes3",
        rest=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=f"{server.rest_url}/v3", api_key="unused", max_retries=0)


def test_json_schema_response_format_always_gives_matching_json(client: OpenAI) -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "maxItems": 3}
    for seed in SEEDS:
        answer = client.chat.completions.create(
            model="llm", messages=ASK, max_tokens=60, seed=seed, temperature=1.0,
            response_format={"type": "json_schema", "json_schema": {"name": "numbers", "schema": schema}},
        )  # fmt: skip
        value = json.loads(answer.choices[0].message.content)
        assert isinstance(value, list) and len(value) <= 3 and all(isinstance(v, int) for v in value)
        assert answer.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("tool_choice", "names"),
    [("required", {"get_weather", "get_time"}), ({"type": "function", "function": {"name": "get_time"}}, {"get_time"})],
)
def test_tool_choice_forces_a_call_in_the_parser_format(client: OpenAI, tool_choice, names: set[str]) -> None:
    complete = 0
    for seed in SEEDS:
        answer = client.chat.completions.create(
            model="llm", messages=ASK, max_tokens=120, seed=seed, temperature=1.0, tools=[WEATHER, TIME],
            tool_choice=tool_choice,
        )  # fmt: skip
        (choice,) = answer.choices
        if choice.finish_reason == "length":  # cut short inside the call: still nothing but the call's text
            assert choice.message.content.startswith("<tool_call>\n{")
            assert any(f'"{name}"' in choice.message.content for name in names)
            continue
        complete += 1
        assert choice.finish_reason == "tool_calls" and not choice.message.content
        (call,) = choice.message.tool_calls
        assert call.function.name in names and call.id.startswith("call_")
        arguments = json.loads(call.function.arguments)
        assert arguments in ({"city": "Paris"}, {"city": "Rome"}, {"zone": "UTC"}, {"zone": "CET"})
    assert complete >= 1


def test_tool_choice_none_and_auto_leave_the_text_free(client: OpenAI) -> None:
    for tool_choice in ("none", "auto"):
        answer = client.chat.completions.create(
            model="llm", messages=ASK, max_tokens=12, tools=[WEATHER], tool_choice=tool_choice
        )
        assert answer.choices[0].finish_reason == "length" and not answer.choices[0].message.tool_calls
        assert not answer.choices[0].message.content.startswith("<tool_call>")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, '"nope"'),
        ({"tool_choice": "required"}, "the request has no tools"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, 'got "sometimes"'),
        ({"response_format": {"type": "xml"}}, 'got "xml"'),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 7}}}},
            "response_format.json_schema is not a valid JSON schema: ['type']",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {"$ref": "#/$defs/gone"}}}},
            "response_format.json_schema is not supported: ['$ref'] '#/$defs/gone' points to nothing",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {"minItems": 3, "maxItems": 1}}}},
            "minItems (3) is greater than maxItems (1)",
        ),
        (
            {
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"properties": 5}}}],
                "tool_choice": "required",
            },
            "the parameters of tool f is not a valid JSON schema",
        ),
    ],
)
def test_bad_constraints_are_400(server: ServerProcess, client: OpenAI, body: dict, message: str) -> None:
    answer = httpx.post(
        f"{server.rest_url}/v3/chat/completions", json={"model": "llm", "messages": ASK, "max_tokens": 4, **body}
    )
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]["message"]
    assert client.chat.completions.create(model="llm", messages=ASK, max_tokens=2).choices


def test_forcing_a_call_needs_a_tool_parser(server_factory, llm_dir: Path) -> None:
    server = server_factory("--task", "text_generation", "--model_path", str(llm_dir), "--model_name", "llm", rest=True)
    client = OpenAI(base_url=f"{server.rest_url}/v3", api_key="unused", max_retries=0)
    with pytest.raises(BadRequestError, match="no tool parser"):
        client.chat.completions.create(model="llm", messages=ASK, max_tokens=4, tools=[WEATHER], tool_choice="required")


def test_a_schema_the_grammar_compiler_rejects_fails_alone_and_the_engine_comes_back(
    server: ServerProcess, client: OpenAI
) -> None:
    """Valid JSON Schema that the compiler rejects only inside an engine step (a lookahead pattern):
    that request is a 400 naming the reason; a generation running beside it fails as retryable
    (the pipeline cannot go on after a failed step), and the restarted engine serves again."""
    victim_body = {"model": "llm", "prompt": "go", "max_tokens": 2000, "ignore_eos": True, "stream": True}
    with httpx.Client(base_url=server.rest_url, timeout=60) as http:
        with http.stream("POST", "/v3/completions", json=victim_body) as victim:
            lines = victim.iter_lines()
            assert next(lines).startswith("data: ")  # generating now
            schema = {"type": "string", "pattern": "(?=a)a"}
            bad = http.post(
                "/v3/chat/completions",
                json={"model": "llm", "messages": ASK, "max_tokens": 4,
                      "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}},
            )  # fmt: skip
            rest = "\n".join(lines)
    assert bad.status_code == 400, bad.text
    assert "the output constraint was rejected" in bad.json()["error"]["message"]
    assert "Lookahead is not supported" in bad.json()["error"]["message"]
    assert "retry the request" in rest and rest.rstrip().endswith("data: [DONE]")
    deadline = time.monotonic() + 60
    while True:  # the engine is being restarted: 503 until it is back
        answer = httpx.post(f"{server.rest_url}/v3/completions", json={"model": "llm", "prompt": "x", "max_tokens": 2})
        if answer.status_code == 200 or time.monotonic() > deadline:
            break
        assert answer.status_code == 503
        time.sleep(0.2)
    assert answer.status_code == 200


OPENERS = {"hermes3": "<tool_call>", "llama3": "{", "mistral": "[TOOL_CALLS]", "qwen3coder": "<tool_call>"}


def test_forced_calls_come_back_parsed_in_every_tool_format(server_factory, llm_dir: Path, tmp_path: Path) -> None:
    """One config.json, one model per tool parser (OVMS graph.pbtxt folders over the same LLM)."""
    entries = []
    for parser in OPENERS:
        folder = tmp_path / parser
        folder.mkdir()
        (folder / "graph.pbtxt").write_text(GRAPH.format(models_path=llm_dir, tool_parser=parser))
        entries.append({"config": {"name": parser, "base_path": str(folder)}})
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_config_list": entries}))
    server = server_factory("--config_path", str(config), rest=True)
    client = OpenAI(base_url=f"{server.rest_url}/v3", api_key="unused", max_retries=0)
    for parser, opener in OPENERS.items():
        complete = 0
        for seed in SEEDS:
            answer = client.chat.completions.create(
                model=parser, messages=ASK, max_tokens=120, seed=seed, temperature=1.0, tools=[WEATHER, TIME],
                tool_choice={"type": "function", "function": {"name": "get_weather"}},
            )  # fmt: skip
            (choice,) = answer.choices
            if choice.finish_reason == "length":
                assert choice.message.content.lstrip().startswith(opener), (parser, choice.message.content)
                continue
            assert choice.finish_reason == "tool_calls", (parser, choice.message.content)
            (call,) = choice.message.tool_calls
            assert call.function.name == "get_weather"
            assert json.loads(call.function.arguments) in ({"city": "Paris"}, {"city": "Rome"})
            complete += 1
        assert complete >= 1, parser


GRAPH = """
node: {{
  calculator: "HttpLLMCalculator"
  node_options: {{
    [type.googleapis.com / mediapipe.LLMCalculatorOptions]: {{
      models_path: "{models_path}"
      cache_size: 1
      tool_parser: "{tool_parser}"
    }}
  }}
}}
"""
