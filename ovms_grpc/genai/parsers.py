"""Output parsers for chat: reasoning (``<think>...</think>``) and tool calls in the formats models write.

One `OutputParser` per choice is fed the generated text piece by piece and returns what can be
said so far: content, reasoning and complete tool calls. Tags split across pieces are held back
until they are whole, reasoning never leaks into content (text after an unclosed ``<think>`` stays
reasoning even when generation stops early), and a tool call is returned only once its block is
complete, so its arguments are always a complete JSON text. A block that turns out not to be a
call comes back as content, nothing lost.

Tool-call formats (``--tool_parser``):
- ``hermes3``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, any number of them.
- ``qwen3coder``: ``<tool_call><function=NAME><parameter=KEY>value</parameter>...</function></tool_call>``;
  values are JSON when they parse as JSON, else strings.
- ``mistral``: ``[TOOL_CALLS]`` then a JSON array of ``{"name", "arguments"}`` to the end of the output.
- ``llama3``: output that starts with ``<|python_tag|>`` or ``{``: JSON objects
  ``{"name": ..., "parameters": {...}}`` separated by ``;``, to the end of the output.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REASONING_PARSERS = ("qwen3",)
TOOL_PARSERS = ("hermes3", "llama3", "mistral", "qwen3coder")

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


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


def _call(name: Any, arguments: Any) -> ToolCallOut | None:
    if not isinstance(name, str) or not name:
        return None
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            json.loads(arguments)
        except json.JSONDecodeError:
            return None
        text = arguments
    else:
        text = json.dumps({} if arguments is None else arguments, ensure_ascii=False)
    return ToolCallOut(id=f"call_{uuid.uuid4().hex[:24]}", name=name, arguments=text)


def _json_call(value: Any) -> ToolCallOut | None:
    if not isinstance(value, dict):
        return None
    return _call(value.get("name"), value.get("arguments", value.get("parameters", {})))


def parse_tool_call(block: str) -> ToolCallOut | None:
    """A hermes-style block ``{"name": ..., "arguments": {...}}``; None when it is not valid."""
    try:
        return _json_call(json.loads(block))
    except json.JSONDecodeError:
        return None


def _hermes(block: str) -> list[ToolCallOut] | None:
    call = parse_tool_call(block.strip())
    return [call] if call else None


FUNCTION = re.compile(r"<function=([^>\n]+)>(.*?)</function>", re.DOTALL)
PARAMETER = re.compile(r"<parameter=([^>\n]+)>\n?(.*?)\n?</parameter>", re.DOTALL)


def _xml_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _qwen3coder(block: str) -> list[ToolCallOut] | None:
    function = FUNCTION.search(block)
    if function is None or block[: function.start()].strip() or block[function.end() :].strip():
        return None
    arguments = {key.strip(): _xml_value(value) for key, value in PARAMETER.findall(function.group(2))}
    call = _call(function.group(1).strip(), arguments)
    return [call] if call else None


def _json_values(text: str, separator: str) -> list[Any] | None:
    """The JSON values of ``text``, one after the other with ``separator`` (and spaces) between."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    position = 0
    while True:
        while position < len(text) and (text[position].isspace() or text[position] == separator):
            position += 1
        if position == len(text):
            return values or None
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return None
        values.append(value)


def _mistral(block: str) -> list[ToolCallOut] | None:
    values = _json_values(block, ",")
    if not values:
        return None
    items = [item for value in values for item in (value if isinstance(value, list) else [value])]
    calls = [_json_call(item) for item in items]
    return calls if calls and all(calls) else None  # type: ignore[return-value]


def _llama3(block: str) -> list[ToolCallOut] | None:
    values = _json_values(block, ";")
    calls = [_json_call(value) for value in values or ()]
    return calls if calls and all(calls) else None  # type: ignore[return-value]


@dataclass(frozen=True)
class ToolFormat:
    open: str
    """The tag that starts a call block."""
    close: str | None
    """The tag that ends it; None: the block runs to the end of the output."""
    parse: Callable[[str], list[ToolCallOut] | None]
    bare_json_start: bool = False
    """Output whose first character is ``{`` is a call block too (llama3)."""


FORMATS = {
    "hermes3": ToolFormat("<tool_call>", "</tool_call>", _hermes),
    "qwen3coder": ToolFormat("<tool_call>", "</tool_call>", _qwen3coder),
    "mistral": ToolFormat("[TOOL_CALLS]", None, _mistral),
    "llama3": ToolFormat("<|python_tag|>", None, _llama3, bare_json_start=True),
}


def _held_back(text: str, tags: tuple[str, ...]) -> int:
    """How many trailing characters might be the start of a tag."""
    longest = 0
    for tag in tags:
        for size in range(min(len(tag) - 1, len(text)), 0, -1):
            if text.endswith(tag[:size]):
                longest = max(longest, size)
                break
    return longest


class OutputParser:
    def __init__(self, reasoning_parser: str | None, tool_parser: str | None) -> None:
        self._reasoning = reasoning_parser is not None
        self._format = FORMATS[tool_parser] if tool_parser is not None else None
        self._buffer = ""
        self._mode = "content"  # or "reasoning", "tool"
        self._started = False  # some content was said (llama3's bare JSON counts only at the start)
        self._opened_with = ""  # the tag that opened the current call block
        self.tool_calls_seen = False

    @property
    def active(self) -> bool:
        return self._reasoning or self._format is not None

    def _tags(self) -> tuple[str, ...]:
        if self._mode == "reasoning":
            return (THINK_CLOSE,)
        if self._mode == "tool":
            return (self._format.close,) if self._format and self._format.close else ()
        tags = [THINK_OPEN] if self._reasoning else []
        if self._format is not None:
            tags.append(self._format.open)
        return tuple(tags)

    def feed(self, text: str, final: bool = False) -> Parsed:
        self._buffer += text
        out = Parsed()
        while True:
            if self._bare_json_starts():
                self._open_tool("")
                continue
            tags = self._tags()
            positions = [(self._buffer.find(tag), tag) for tag in tags if tag in self._buffer]
            if not positions:
                break
            index, tag = min(positions)
            before, self._buffer = self._buffer[:index], self._buffer[index + len(tag) :]
            if self._mode == "tool":
                self._close_tool(out, before)
                continue
            self._emit(out, before)
            if tag == THINK_OPEN:
                self._mode = "reasoning"
            elif tag == THINK_CLOSE:
                self._mode = "content"
            else:
                self._open_tool(tag)
        if self._mode == "tool":  # a call is only said once its block is complete
            if final:
                self._close_tool(out, self._buffer, closed=False)
                self._buffer = ""
            return out
        if self._mode == "content" and self._waiting_for_start():
            keep = 0 if final else len(self._buffer)
        else:
            keep = 0 if final else _held_back(self._buffer, tags)
        self._emit(out, self._buffer[: len(self._buffer) - keep])
        self._buffer = self._buffer[len(self._buffer) - keep :]
        return out

    def _waiting_for_start(self) -> bool:
        """llama3: nothing but spaces so far, so the output may still start with a bare ``{``."""
        return bool(self._format and self._format.bare_json_start and not self._started and not self._buffer.strip())

    def _bare_json_starts(self) -> bool:
        return bool(
            self._format
            and self._format.bare_json_start
            and self._mode == "content"
            and not self._started
            and self._buffer.lstrip().startswith("{")
        )

    def _open_tool(self, tag: str) -> None:
        self._mode, self._opened_with = "tool", tag

    def _emit(self, out: Parsed, text: str) -> None:
        if self._mode == "reasoning":
            out.reasoning += text
        elif self._mode == "content":
            out.content += text
            self._started = self._started or bool(text.strip())

    def _close_tool(self, out: Parsed, block: str, closed: bool = True) -> None:
        """A complete block (or, at the end, what followed an opening tag): calls, or text after all."""
        assert self._format is not None
        self._mode = "content"
        calls = self._format.parse(block) if closed or self._format.close is None else None
        if calls:
            out.tool_calls.extend(calls)
            self.tool_calls_seen = True
        else:
            closing = self._format.close if closed and self._format.close else ""
            out.content += self._opened_with + block + closing
        self._started = True
