"""Output parsers for chat: reasoning (``<think>...</think>``) and tool calls (``<tool_call>{json}</tool_call>``).

One `OutputParser` per choice is fed the generated text piece by piece and returns what can be
said so far: content, reasoning and complete tool calls. Tags split across pieces are held back
until they are whole, reasoning never leaks into content (text after an unclosed ``<think>`` stays
reasoning even when generation stops early), and a tool call is returned only once its block
closed, so its arguments are always a complete JSON text.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

REASONING_PARSERS = ("qwen3",)
TOOL_PARSERS = ("hermes3",)

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"


@dataclass
class ToolCallOut:
    id: str
    name: str
    arguments: str
    """JSON text."""


@dataclass
class Parsed:
    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallOut] = field(default_factory=list)


def _held_back(text: str, tags: tuple[str, ...]) -> int:
    """How many trailing characters might be the start of a tag."""
    longest = 0
    for tag in tags:
        for size in range(min(len(tag) - 1, len(text)), 0, -1):
            if text.endswith(tag[:size]):
                longest = max(longest, size)
                break
    return longest


def parse_tool_call(block: str) -> ToolCallOut | None:
    """A hermes-style block ``{"name": ..., "arguments": {...}}``; None when it is not valid."""
    try:
        value = json.loads(block)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    arguments = value.get("arguments", value.get("parameters", {}))
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return ToolCallOut(id=f"call_{uuid.uuid4().hex[:24]}", name=value["name"], arguments=text)


class OutputParser:
    def __init__(self, reasoning_parser: str | None, tool_parser: str | None) -> None:
        self._reasoning = reasoning_parser is not None
        self._tools = tool_parser is not None
        self._buffer = ""
        self._mode = "content"  # or "reasoning", "tool"
        self.tool_calls_seen = False

    @property
    def active(self) -> bool:
        return self._reasoning or self._tools

    def _tags(self) -> tuple[str, ...]:
        if self._mode == "reasoning":
            return (THINK_CLOSE,)
        if self._mode == "tool":
            return (TOOL_CLOSE,)
        return tuple(t for t, on in ((THINK_OPEN, self._reasoning), (TOOL_OPEN, self._tools)) if on)

    def feed(self, text: str, final: bool = False) -> Parsed:
        self._buffer += text
        out = Parsed()
        while True:
            tags = self._tags()
            positions = [(self._buffer.find(tag), tag) for tag in tags if tag in self._buffer]
            if not positions:
                break
            index, tag = min(positions)
            before, self._buffer = self._buffer[:index], self._buffer[index + len(tag) :]
            if tag == TOOL_CLOSE:
                self._close_tool(out, before)
                continue
            self._emit(out, before)
            self._mode = {THINK_OPEN: "reasoning", TOOL_OPEN: "tool", THINK_CLOSE: "content"}[tag]
        if self._mode == "tool":  # a call is only said once its block is complete
            if final:
                out.content += TOOL_OPEN + self._buffer  # an unfinished call is plain text after all
                self._buffer = ""
            return out
        keep = 0 if final else _held_back(self._buffer, tags)
        self._emit(out, self._buffer[: len(self._buffer) - keep])
        self._buffer = self._buffer[len(self._buffer) - keep :]
        return out

    def _emit(self, out: Parsed, text: str) -> None:
        if self._mode == "reasoning":
            out.reasoning += text
        elif self._mode == "content":
            out.content += text

    def _close_tool(self, out: Parsed, block: str) -> None:
        self._mode = "content"
        call = parse_tool_call(block.strip())
        if call is None:
            out.content += TOOL_OPEN + block + TOOL_CLOSE
        else:
            out.tool_calls.append(call)
            self.tool_calls_seen = True
