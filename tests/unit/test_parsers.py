import json

import pytest

from ovms_grpc.genai.parsers import OutputParser, Parsed

HERMES = (
    'Let me check. <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}\n</tool_call>'
    '<tool_call>{"name": "get_time", "arguments": {"tz": "CET"}}</tool_call>'
)
THINKING = "<think>The user greets me.\nI should answer.</think>Hello! How can I help?"


def run(parser: OutputParser, text: str, piece: int) -> Parsed:
    total = Parsed()
    pieces = [text[i : i + piece] for i in range(0, len(text), piece)]
    for index, chunk in enumerate(pieces):
        out = parser.feed(chunk, final=index == len(pieces) - 1)
        total.content += out.content
        total.reasoning += out.reasoning
        total.tool_calls += out.tool_calls
    return total


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 1000])
def test_hermes_tool_calls_in_any_chunking(piece: int) -> None:
    parser = OutputParser(None, "hermes3")
    out = run(parser, HERMES, piece)
    assert out.content == "Let me check. "
    assert [(c.name, json.loads(c.arguments)) for c in out.tool_calls] == [
        ("get_weather", {"city": "Paris", "unit": "C"}),
        ("get_time", {"tz": "CET"}),
    ]
    assert parser.tool_calls_seen and all(c.id.startswith("call_") for c in out.tool_calls)


@pytest.mark.parametrize("piece", [1, 4, 1000])
def test_reasoning_is_separated(piece: int) -> None:
    out = run(OutputParser("qwen3", None), THINKING, piece)
    assert out.reasoning == "The user greets me.\nI should answer."
    assert out.content == "Hello! How can I help?"


def test_reasoning_never_leaks_when_generation_stops_early() -> None:
    out = run(OutputParser("qwen3", None), "<think>still thinking about <thi", 3)
    assert out.content == "" and out.reasoning == "still thinking about <thi"


def test_unfinished_or_invalid_tool_call_stays_text() -> None:
    out = run(OutputParser(None, "hermes3"), 'ok <tool_call>{"name": "f", "argu', 5)
    assert out.tool_calls == [] and out.content == 'ok <tool_call>{"name": "f", "argu'
    out = run(OutputParser(None, "hermes3"), "x <tool_call>not json</tool_call> y", 4)
    assert out.tool_calls == [] and out.content == "x <tool_call>not json</tool_call> y"


def test_both_parsers_and_a_lone_angle_bracket() -> None:
    text = "<think>plan</think>a < b <tool_call>" + '{"name": "f", "arguments": {}}' + "</tool_call>"
    out = run(OutputParser("qwen3", "hermes3"), text, 2)
    assert out.reasoning == "plan" and out.content == "a < b " and out.tool_calls[0].arguments == "{}"
