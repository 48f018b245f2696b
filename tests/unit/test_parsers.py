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


LLAMA3 = '{"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": "get_time", "parameters": {"tz": "CET"}}'
MISTRAL = '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {}}]'
QWEN3CODER = (
    "I will look it up.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
    '<parameter=days>\n3\n</parameter>\n<parameter=options>\n{"metric": true}\n</parameter>\n'
    "</function>\n</tool_call>"
)


@pytest.mark.parametrize("piece", [1, 3, 1000])
@pytest.mark.parametrize(
    ("parser", "text", "content", "calls"),
    [
        ("llama3", LLAMA3, "", [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]),
        ("llama3", "  <|python_tag|>" + LLAMA3.split(";")[0], "  ", [("get_weather", {"city": "Paris"})]),
        ("mistral", "Sure. " + MISTRAL, "Sure. ", [("get_weather", {"city": "Paris"}), ("get_time", {})]),
        (
            "qwen3coder", QWEN3CODER, "I will look it up.\n",
            [("get_weather", {"city": "Paris", "days": 3, "options": {"metric": True}})],
        ),
    ],
)  # fmt: skip
def test_other_tool_formats_in_any_chunking(piece: int, parser: str, text: str, content: str, calls: list) -> None:
    tool_parser = OutputParser(None, parser)
    out = run(tool_parser, text, piece)
    assert out.content == content
    assert [(c.name, json.loads(c.arguments)) for c in out.tool_calls] == calls
    assert tool_parser.tool_calls_seen


@pytest.mark.parametrize(
    ("parser", "text"),
    [
        ("llama3", "Hello, {not a call} here"),  # JSON only counts at the start
        ("llama3", '{"name": "f", "parameters": {"a": '),  # cut short
        ("llama3", "{not json at all}"),
        ("mistral", '[TOOL_CALLS][{"name": "f", "argum'),
        ("mistral", "[TOOL_CALLS] just words"),
        ("qwen3coder", "<tool_call>\n<function=f>\n<parameter=a>\n1\n</parameter>\n"),  # no closing tags
        ("qwen3coder", "<tool_call>no function here</tool_call> after"),
    ],
)
def test_text_that_is_not_a_complete_call_stays_content(parser: str, text: str) -> None:
    for piece in (1, 4, 1000):
        tool_parser = OutputParser(None, parser)
        out = run(tool_parser, text, piece)
        assert out.tool_calls == [] and out.content == text and not tool_parser.tool_calls_seen


def test_reasoning_then_a_llama3_call() -> None:
    out = run(OutputParser("qwen3", "llama3"), "<think>need weather</think>" + LLAMA3.split(";")[0], 2)
    assert out.reasoning == "need weather" and out.content == ""
    assert [c.name for c in out.tool_calls] == ["get_weather"]


def test_llama3_plain_answer_streams_once_it_starts() -> None:
    parser = OutputParser(None, "llama3")
    assert parser.feed("  ").content == ""  # could still become a call
    assert parser.feed("Hi").content == "  Hi"
    assert parser.feed(" {x}").content == " {x}"
