"""Constrained decoding: response_format JSON schemas and forced tool calls as openvino_genai grammars.

Runs in the engine's child process (``og`` is the openvino_genai module). A forced tool call
(``tool_choice`` "required" or a named function) is a grammar of the configured tool parser's
output format around each tool's parameter schema, so the output is always a call the parser reads.

The grammars are compact (`json_grammar`): no whitespace between JSON tokens and every value
bounded, so a constrained output always ends, even from a model that would write whitespace
forever where the compiler's own JSON grammar allows it. A schema outside the subset the compact
grammar writes falls back to the compiler's own JSON schema grammar.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from ovms_grpc.genai.json_grammar import MAX_STRING, GrammarWriter, Unsupported, compact_grammar, literal

logger = logging.getLogger(__name__)

#: Tool parsers whose call format a grammar can force.
FORCEABLE_PARSERS = ("hermes3", "llama3", "mistral", "qwen3coder")

#: Parameter schema used when a tool gives none: OpenAI reads that as a function of no parameters.
NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}

#: Text around one call's JSON object, per JSON tool format.
JSON_CALLS = {
    "hermes3": ("<tool_call>\n", "arguments", "\n</tool_call>"),
    "llama3": ("", "parameters", ""),
    "mistral": ("[TOOL_CALLS][", "arguments", "]"),
}


def _call_schema(name: str, parameters: dict[str, Any], arguments_key: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": name}, arguments_key: parameters or NO_PARAMETERS},
        "required": ["name", arguments_key],
        "additionalProperties": False,
    }


def _qwen_xml_grammar(name: str, parameters: dict[str, Any]) -> str:
    """``<tool_call><function=NAME><parameter=KEY>value</parameter>...``, one parameter per property
    in the schema's order. A string is written as plain text (no ``</`` in it), as Qwen3-Coder
    writes it; any other value as compact JSON, which the parser reads back."""
    if {"$ref", "anyOf", "oneOf", "allOf"} & parameters.keys():
        raise Unsupported("parameters that are not one object schema")
    writer = GrammarWriter(parameters)
    required = set(parameters.get("required") or ())
    properties = parameters.get("properties") or {}
    if not isinstance(properties, dict):
        raise Unsupported("properties that are not an object")
    blocks = []
    for key, schema in properties.items():
        value = _qwen_text(writer, schema) or writer.value(schema, depth=1)
        block = f"{literal(f'<parameter={key}>' + chr(10))} {value} {literal(chr(10) + '</parameter>' + chr(10))}"
        blocks.append(block if key in required else f"({block})?")
    head, tail = literal(f"<tool_call>\n<function={name}>\n"), literal("</function>\n</tool_call>")
    return writer.text(" ".join([head, *blocks, tail]))


def _qwen_text(writer: GrammarWriter, schema: Any) -> str | None:
    """The plain-text rule of a string parameter, or None when the value is written as JSON."""
    if not isinstance(schema, dict):
        return None
    choices = schema["enum"] if "enum" in schema else [schema["const"]] if "const" in schema else None
    if choices is not None:
        if not choices or not all(isinstance(c, str) and c and not _reads_as_json(c) for c in choices):
            return None
        return writer.rule(" | ".join(literal(c) for c in choices), "text")
    if schema.get("type") != "string" or not {"type", "minLength", "maxLength"}.issuperset(
        schema.keys() - {"title", "description", "default", "examples", "format"}
    ):
        return None
    low = max(int(schema.get("minLength", 1)), 1)
    high = max(int(schema.get("maxLength", MAX_STRING)), low)
    return writer.rule(f'([^<] | "<" [^/<]){{{low},{high}}}', "text")


def _reads_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def _one_call(og: Any, parser: str, name: str, parameters: dict[str, Any]) -> Any:
    """The grammar of one call of ``name`` in ``parser``'s format."""
    s = og.StructuredOutputConfig
    if parser in JSON_CALLS:
        prefix, arguments_key, suffix = JSON_CALLS[parser]
        schema = _call_schema(name, parameters, arguments_key)
        try:
            return s.EBNF(compact_grammar(schema, prefix=prefix, suffix=suffix))
        except Unsupported as exc:
            logger.debug("tool %s: the compiler's JSON grammar constrains the call (%s)", name, exc)
        parts = [s.ConstString(prefix)] if prefix else []
        parts += [s.JSONSchema(json.dumps(schema))] + ([s.ConstString(suffix)] if suffix else [])
        return parts[0] if len(parts) == 1 else s.Concat(*parts)
    if parser == "qwen3coder":
        try:
            return s.EBNF(_qwen_xml_grammar(name, parameters or NO_PARAMETERS))
        except Unsupported as exc:
            logger.debug("tool %s: the compiler's XML grammar constrains the call (%s)", name, exc)
        return s.Concat(
            s.ConstString(f"<tool_call>\n<function={name}>\n"),
            s.QwenXMLParametersFormat(json.dumps(parameters or NO_PARAMETERS)),
            s.ConstString("</function>\n</tool_call>"),
        )
    raise ValueError(f"tool_choice cannot be enforced with the {parser} tool parser")


def constraint_of(*, forced_tools: Sequence[tuple[str, dict[str, Any]]], json_schema: str | None) -> bool:
    """Whether a request's output is constrained by a grammar."""
    return bool(forced_tools or json_schema)


def structured_output(
    og: Any, *, forced_tools: Sequence[tuple[str, dict[str, Any]]], tool_parser: str | None, json_schema: str | None
) -> Any | None:
    """The StructuredOutputConfig forcing one of ``forced_tools`` (name, parameter schema) in
    ``tool_parser``'s format, or output matching ``json_schema``; None when the output is free."""
    if forced_tools:
        if tool_parser is None:
            raise ValueError("a forced tool call needs a tool parser")
        calls = [_one_call(og, tool_parser, name, parameters) for name, parameters in forced_tools]
        grammar = calls[0] if len(calls) == 1 else og.StructuredOutputConfig.Union(*calls)
        return og.StructuredOutputConfig(compound_grammar=grammar)
    if json_schema:
        try:
            return og.StructuredOutputConfig(grammar=compact_grammar(json.loads(json_schema)))
        except Unsupported as exc:
            logger.debug("response_format: the compiler's JSON grammar constrains the output (%s)", exc)
        return og.StructuredOutputConfig(json_schema=json_schema)
    return None
