"""JSON schemas as compact grammars: integer ranges exactly, and what the tiny model writes under them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import openvino_genai as og
import pytest

from ovms_grpc.genai import grammar
from ovms_grpc.genai.json_grammar import Unsupported, compact_grammar, integer_range
from ovms_grpc.genai.parsers import OutputParser

SEEDS = range(1, 5)
MAX_TOKENS = 400


def as_regex(expression: str) -> re.Pattern[str]:
    """An integer-range expression (literals, digit classes, counts) as a Python regex."""
    return re.compile(re.sub(r'"([^"]*)"', lambda m: re.escape(m.group(1)), expression).replace(" ", ""))


@pytest.mark.parametrize(
    ("low", "high"), [(0, 9), (1, 30), (-5, 120), (7, 7), (10, 1000), (-1234, -56), (99, 101), (0, 12345), (-9, 0)]
)
def test_integer_range_accepts_exactly_the_integers_between(low: int, high: int) -> None:
    pattern = as_regex(integer_range(low, high))
    texts = {str(n) for n in range(low - 150, high + 150)} | {"-0", "007", "01", "+3", ""}
    accepted = {text for text in texts if pattern.fullmatch(text)}
    assert accepted == {str(n) for n in range(low, high + 1)}


def test_integer_range_without_bounds_stops_at_19_digits() -> None:
    pattern = as_regex(integer_range(0, None))
    assert pattern.fullmatch("9" * 19) and not pattern.fullmatch("1" + "0" * 19) and not pattern.fullmatch("-1")


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "^a+$"},
        {"type": "number", "minimum": 0.5},
        {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
        {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": True},
        {"$ref": "https://example.com/schema.json"},
    ],
)
def test_what_the_compact_grammar_does_not_write_is_unsupported(schema: dict) -> None:
    with pytest.raises(Unsupported):
        compact_grammar(schema)
    config = grammar.structured_output(og, forced_tools=(), tool_parser=None, json_schema=json.dumps(schema))
    assert config.json_schema == json.dumps(schema) and config.grammar is None  # the compiler's own grammar


@pytest.fixture(scope="module")
def pipe(llm_dir: Path) -> og.ContinuousBatchingPipeline:
    scheduler = og.SchedulerConfig()
    scheduler.cache_size = 1
    return og.ContinuousBatchingPipeline(str(llm_dir), scheduler, "CPU", {})


def generate(pipe: og.ContinuousBatchingPipeline, constraint: og.StructuredOutputConfig) -> list[str]:
    """What the tiny model writes under ``constraint``, sampling with each seed; an output cut at
    MAX_TOKENS is incomplete, so it fails to parse."""
    texts = []
    for seed in SEEDS:
        config = og.GenerationConfig()
        config.max_new_tokens, config.do_sample, config.temperature, config.rng_seed = MAX_TOKENS, True, 1.0, seed
        config.set_eos_token_id(pipe.get_tokenizer().get_eos_token_id())
        config.structured_output_config = constraint
        texts.append(pipe.generate(["what now?"], [config])[0].m_generation_ids[0])
    return texts


def without_strings(text: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


SCHEMAS = [
    {"type": "object"},
    {},
    {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 4},
    {
        "$defs": {
            "Pet": {
                "type": "object",
                "properties": {
                    "kind": {"enum": ["chat", "ñandú"]},
                    "age": {"type": "integer", "minimum": 0, "maximum": 30},
                },
                "required": ["kind"],
            }
        },
        "type": "object",
        "properties": {
            "owner": {"type": "string", "maxLength": 12},
            "pet": {"anyOf": [{"$ref": "#/$defs/Pet"}, {"type": "null"}]},
            "x": {"type": ["boolean", "null"]},
            "n": {"const": 3},
        },
        "required": ["owner", "pet"],
    },  # fmt: skip
    {
        "type": "object",
        "properties": {"a": {"type": "string", "maxLength": 5}, "b": {"type": "integer", "exclusiveMinimum": 10}},
    },
    {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "integer"}}}, "maxItems": 3},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[json.dumps(s)[:40] for s in SCHEMAS])
def test_the_model_writes_compact_json_the_schema_accepts(pipe: og.ContinuousBatchingPipeline, schema: dict) -> None:
    constraint = grammar.structured_output(og, forced_tools=(), tool_parser=None, json_schema=json.dumps(schema))
    assert constraint.grammar and constraint.json_schema is None
    for text in generate(pipe, constraint):
        jsonschema.validate(json.loads(text), schema)
        assert not re.search(r"\s", without_strings(text)), text


TOOL = {
    "type": "object",
    "properties": {
        "city": {"enum": ["Paris", "Rome"]},
        "note": {"type": "string", "maxLength": 20},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "zone": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 4}, "maxItems": 2},
    },
    "required": ["city", "note"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("parser", grammar.FORCEABLE_PARSERS)
def test_a_forced_call_is_complete_and_reads_back(pipe: og.ContinuousBatchingPipeline, parser: str) -> None:
    constraint = grammar.structured_output(
        og, forced_tools=[("plan", TOOL), ("ping", {})], tool_parser=parser, json_schema=None
    )
    for text in generate(pipe, constraint):
        parsed = OutputParser(None, parser).feed(text, final=True)
        assert not parsed.content, text
        (call,) = parsed.tool_calls
        assert call.name in ("plan", "ping")
        jsonschema.validate(json.loads(call.arguments), TOOL if call.name == "plan" else {"maxProperties": 0})
