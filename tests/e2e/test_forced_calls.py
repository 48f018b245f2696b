"""Forced tool calls and json_schema output end within max_tokens, even from the random model.

The grammars are compact (no whitespace between JSON tokens) and the schemas here bound every
value, so whatever the model draws, the longest output the grammar admits fits in MAX_TOKENS:
each answer must be complete (a parsed call, or JSON that validates), never cut at the length limit.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from openai import OpenAI

from ovms_grpc.genai.grammar import FORCEABLE_PARSERS
from tests.server_process import ServerProcess

MAX_TOKENS = 400
SEEDS = range(1, 7)
ASK = [{"role": "user", "content": "plan my trip"}]
BOOK = {
    "type": "object",
    "properties": {
        "city": {"enum": ["Paris", "Rome"]},
        "note": {"type": "string", "maxLength": 24},
        "nights": {"type": "integer", "minimum": 1, "maximum": 30},
        "pets": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 3},
    },
    "required": ["city", "note", "nights"],
    "additionalProperties": False,
}
ZONE = {
    "type": "object",
    "properties": {"zone": {"anyOf": [{"enum": ["UTC", "CET"]}, {"type": "null"}]}},
    "required": ["zone"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {"name": "book_hotel", "parameters": BOOK}},
    {"type": "function", "function": {"name": "get_time", "parameters": ZONE}},
    {"type": "function", "function": {"name": "ping"}},
]
SCHEMAS = {"book_hotel": BOOK, "get_time": ZONE, "ping": {"type": "object", "maxProperties": 0}}
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


@pytest.fixture(scope="module")
def client(server_factory, llm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> OpenAI:
    """One model per forceable tool parser (OVMS graph.pbtxt folders over the same LLM)."""
    root = tmp_path_factory.mktemp("forced-calls")
    entries = []
    for parser in FORCEABLE_PARSERS:
        (root / parser).mkdir()
        (root / parser / "graph.pbtxt").write_text(GRAPH.format(models_path=llm_dir, tool_parser=parser))
        entries.append({"config": {"name": parser, "base_path": str(root / parser)}})
    (root / "config.json").write_text(json.dumps({"model_config_list": entries}))
    server: ServerProcess = server_factory("--config_path", str(root / "config.json"), rest=True)
    return OpenAI(base_url=f"{server.rest_url}/v3", api_key="unused", max_retries=0)


@pytest.mark.parametrize("parser", FORCEABLE_PARSERS)
@pytest.mark.parametrize(
    ("tool_choice", "names"),
    [("required", set(SCHEMAS)), ({"type": "function", "function": {"name": "book_hotel"}}, {"book_hotel"})],
    ids=["required", "named"],
)
def test_a_forced_call_always_completes(client: OpenAI, parser: str, tool_choice, names: set[str]) -> None:
    for seed in SEEDS:
        answer = client.chat.completions.create(
            model=parser, messages=ASK, max_tokens=MAX_TOKENS, seed=seed, temperature=1.0, tools=TOOLS,
            tool_choice=tool_choice,
        )  # fmt: skip
        (choice,) = answer.choices
        assert choice.finish_reason == "tool_calls", (parser, seed, choice.message.content)
        assert not choice.message.content
        (call,) = choice.message.tool_calls
        assert call.function.name in names
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])
        assert answer.usage.completion_tokens < MAX_TOKENS


def test_a_json_schema_answer_always_completes_and_validates(client: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "trip": BOOK,
            "budget": {"anyOf": [{"type": "integer", "minimum": -10, "maximum": 5000}, {"type": "null"}]},
            "legs": {"type": "array", "items": ZONE, "minItems": 1, "maxItems": 2},
        },
        "required": ["trip", "legs"],
        "additionalProperties": False,
    }
    for seed in SEEDS:
        answer = client.chat.completions.create(
            model="hermes3", messages=ASK, max_tokens=MAX_TOKENS, seed=seed, temperature=1.0,
            response_format={"type": "json_schema", "json_schema": {"name": "trip", "schema": schema}},
        )  # fmt: skip
        (choice,) = answer.choices
        assert choice.finish_reason == "stop", (seed, choice.message.content)
        text = choice.message.content
        jsonschema.validate(json.loads(text), schema)
        assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)  # compact
