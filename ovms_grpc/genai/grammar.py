"""Constrained decoding: response_format JSON schemas and forced tool calls as openvino_genai grammars.

Runs in the engine's child process (``og`` is the openvino_genai module). A forced tool call
(``tool_choice`` "required" or a named function) is a grammar of the configured tool parser's
output format around each tool's parameter schema, so the output is always a call the parser reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

#: Tool parsers whose call format a grammar can force.
FORCEABLE_PARSERS = ("hermes3", "llama3", "mistral", "qwen3coder")

#: Parameter schema used when a tool gives none.
ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _call_schema(name: str, parameters: dict[str, Any], arguments_key: str) -> str:
    return json.dumps(
        {
            "type": "object",
            "properties": {"name": {"const": name}, arguments_key: parameters or ANY_OBJECT},
            "required": ["name", arguments_key],
            "additionalProperties": False,
        }
    )


def _one_call(og: Any, parser: str, name: str, parameters: dict[str, Any]) -> Any:
    """The grammar of one call of ``name`` in ``parser``'s format."""
    s = og.StructuredOutputConfig
    if parser == "hermes3":
        return s.Concat(
            s.ConstString("<tool_call>\n"), s.JSONSchema(_call_schema(name, parameters, "arguments")),
            s.ConstString("\n</tool_call>"),
        )  # fmt: skip
    if parser == "llama3":
        return s.JSONSchema(_call_schema(name, parameters, "parameters"))
    if parser == "mistral":
        return s.Concat(
            s.ConstString("[TOOL_CALLS]["),
            s.JSONSchema(_call_schema(name, parameters, "arguments")),
            s.ConstString("]"),
        )
    if parser == "qwen3coder":
        return s.Concat(
            s.ConstString(f"<tool_call>\n<function={name}>\n"),
            s.QwenXMLParametersFormat(json.dumps(parameters or ANY_OBJECT)),
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
        return og.StructuredOutputConfig(json_schema=json_schema)
    return None
