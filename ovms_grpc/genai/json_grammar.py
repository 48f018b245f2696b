"""JSON schemas as compact EBNF grammars: no whitespace between tokens and every value bounded.

The grammar compiler's own JSON schema grammar admits any amount of whitespace between tokens,
and a model that starts writing whitespace there may never stop (a random-weight one never does).
The grammars written here admit the compact form only (``{"a":1,"b":[true,null]}``) and bound
what a schema leaves open, so every output the grammar admits has a finite length:

- strings without ``maxLength`` hold at most `MAX_STRING` characters;
- arrays without ``maxItems`` hold at most `MAX_ITEMS` items;
- integers have at most 19 digits, numbers at most 16 fraction and 3 exponent digits;
- a schema that allows any value (``{}``, ``{"type": "object"}`` with no properties, ``items``
  left out) gets any JSON value nested at most `ANY_DEPTH` deep, objects of at most `MAX_ITEMS` members.

Objects list their properties in the schema's order, required ones always and optional ones when
the model writes them; ``additionalProperties`` absent or false allows no others (the compiler's
strict mode did the same). A schema using a keyword outside the supported subset raises
`Unsupported`, and the caller falls back to the compiler's own grammar. ``format`` is an annotation
(as JSON Schema 2020-12 has it) and is not enforced. ``$ref`` to ``#/...`` is followed, recursion included.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: Characters of a string whose schema sets no maxLength.
MAX_STRING = 4096
#: Items of an array (members of a free object) whose schema sets no maxItems.
MAX_ITEMS = 64
#: How deep a value left free by the schema may nest.
ANY_DEPTH = 3
#: Digits of an integer: enough for any 64-bit one.
INTEGER_DIGITS = 19

#: Assertions the grammar writes; any other assertion keyword makes a schema `Unsupported`.
SUPPORTED = frozenset({
    "type", "enum", "const", "anyOf", "oneOf", "$ref", "properties", "required", "additionalProperties",
    "items", "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum",
})  # fmt: skip
#: Assertion keywords of JSON Schema that the grammar does not write.
ASSERTIONS = frozenset({
    "pattern", "multipleOf", "allOf", "not", "if", "then", "else", "patternProperties", "propertyNames",
    "dependentRequired", "dependentSchemas", "dependencies", "unevaluatedProperties", "unevaluatedItems",
    "contains", "minContains", "maxContains", "prefixItems", "uniqueItems", "minProperties", "maxProperties",
    "$dynamicRef", "$recursiveRef",
})  # fmt: skip

CHAR = r'[^"\\\x00-\x1f] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
SCALAR_RULES = {
    "char": CHAR,
    "integer": f'"-"? ("0" | [1-9] [0-9]{{0,{INTEGER_DIGITS - 1}}})',
    "number": 'integer ("." [0-9]{1,16})? ([eE] [+-]? [0-9]{1,3})?',
    "boolean": '"true" | "false"',
    "null": '"null"',
}


class Unsupported(Exception):
    """The schema uses something the compact grammar does not write."""


def literal(text: str) -> str:
    """``text`` as an EBNF string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c >= " " else f"\\x{ord(c):02x}" for c in escaped) + '"'


def compact(value: Any) -> str:
    """``value`` as compact JSON text."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _digits_between(low: str, high: str) -> list[str]:
    """EBNF sequences for the digit strings of one length from ``low`` to ``high``."""
    if low == high:
        return [literal(low)]
    if len(low) == 1:
        return [f"[{low}-{high}]"]
    if low[0] == high[0]:
        return [f"{literal(low[0])} {rest}" for rest in _digits_between(low[1:], high[1:])]
    width = len(low) - 1
    parts, first, last = [], int(low[0]), int(high[0])
    if low[1:] != "0" * width:
        parts += [f"{literal(low[0])} {rest}" for rest in _digits_between(low[1:], "9" * width)]
        first += 1
    tail = []
    if high[1:] != "9" * width:
        tail = [f"{literal(high[0])} {rest}" for rest in _digits_between("0" * width, high[1:])]
        last -= 1
    if first <= last:
        parts.append(f"[{first}-{last}] [0-9]{{{width}}}")
    return parts + tail


def natural_range(low: int, high: int) -> list[str]:
    """EBNF sequences for the decimal texts of the integers ``low`` ≤ n ≤ ``high`` (both ≥ 0)."""
    parts: list[str] = []
    while low <= high:
        top = min(high, 10 ** len(str(low)) - 1)
        parts += _digits_between(str(low), str(top))
        low = top + 1
    return parts


def integer_range(low: int | None, high: int | None) -> str:
    """An EBNF expression for the integers from ``low`` to ``high`` (None: as far as 19 digits go)."""
    limit = 10**INTEGER_DIGITS - 1
    low, high = max(-limit, -limit if low is None else low), min(limit, limit if high is None else high)
    if low > high:
        raise Unsupported(f"no integer lies between {low} and {high}")
    parts = natural_range(max(low, 0), high) if high >= 0 else []
    if low < 0:
        parts += [f'"-" {part}' for part in natural_range(max(-high, 1), -low)]
    return " | ".join(f"({part})" for part in parts)


class GrammarWriter:
    """Writes the rules of one grammar; `value` returns the rule of a schema."""

    def __init__(self, root_schema: Any) -> None:
        self.root_schema = root_schema
        self.rules: dict[str, str] = {}
        self.refs: dict[str, str] = {}

    def rule(self, body: str, hint: str = "r") -> str:
        """A new rule named after ``hint`` with ``body``."""
        name = f"{hint}{len(self.rules)}"
        self.rules[name] = body
        return name

    def shared(self, name: str) -> str:
        """One of the scalar rules, written once."""
        if name not in self.rules:
            if name == "number":
                self.shared("integer")
            self.rules[name] = SCALAR_RULES[name]
        return name

    def text(self, root: str) -> str:
        """The grammar, with ``root`` as its start."""
        return "\n".join([f"root ::= {root}", *(f"{name} ::= {body}" for name, body in self.rules.items())]) + "\n"

    def string(self, schema: dict[str, Any]) -> str:
        low, high = schema.get("minLength", 0), schema.get("maxLength", max(MAX_STRING, schema.get("minLength", 0)))
        return self.rule(f'"\\"" ({self.shared("char")}){{{int(low)},{int(high)}}} "\\""', "string")

    def _resolve(self, ref: str) -> str:
        if ref not in self.refs:
            if not ref.startswith("#"):
                raise Unsupported(f"$ref {ref!r}: only references inside the schema are followed")
            target = self.root_schema
            for part in [p.replace("~1", "/").replace("~0", "~") for p in ref[1:].split("/") if p]:
                if not isinstance(target, dict) or part not in target:
                    raise Unsupported(f"$ref {ref!r} points to nothing")
                target = target[part]
            self.refs[ref] = name = f"ref{len(self.refs)}"
            self.rules[name] = ""  # reserved: a recursive reference finds the name
            self.rules[name] = self.value(target)
        return self.refs[ref]

    def value(self, schema: Any, depth: int = 0) -> str:
        """The rule (or expression) of the JSON texts ``schema`` accepts."""
        if schema is True or schema == {}:
            return self.any_value(depth)
        if not isinstance(schema, dict):
            raise Unsupported(f"schema {schema!r}")
        unsupported = sorted(ASSERTIONS & schema.keys())
        if unsupported:
            raise Unsupported(f"keywords {unsupported}")
        if "$ref" in schema:
            if SUPPORTED & (schema.keys() - {"$ref"}):
                raise Unsupported("$ref beside other assertions")
            return self._resolve(schema["$ref"])
        if "const" in schema:
            return literal(compact(schema["const"]))
        if "enum" in schema:
            if not schema["enum"]:
                raise Unsupported("an empty enum")
            return self.rule(" | ".join(literal(compact(v)) for v in schema["enum"]), "enum")
        for key in ("anyOf", "oneOf"):
            if key in schema:
                rest = {k: v for k, v in schema.items() if k != key}
                alternatives = [self.value({**rest, **branch} if isinstance(branch, dict) else branch, depth)
                                for branch in schema[key]]  # fmt: skip
                return self.rule(" | ".join(alternatives), "anyof")
        kinds = schema.get("type")
        if kinds is None:
            if "properties" in schema or "additionalProperties" in schema:
                kinds = "object"
            elif "items" in schema:
                kinds = "array"
            elif not SUPPORTED & schema.keys():
                return self.any_value(depth)
            else:
                raise Unsupported(f"a schema without a type: {sorted(schema)}")
        if isinstance(kinds, list):
            return self.rule(" | ".join(self.typed(kind, schema, depth) for kind in kinds), "types")
        return self.typed(kinds, schema, depth)

    def typed(self, kind: str, schema: dict[str, Any], depth: int) -> str:
        """The rule of the values of type ``kind`` that ``schema`` accepts."""
        if kind == "string":
            return self.string(schema)
        if kind == "integer":
            low, high = schema.get("minimum"), schema.get("maximum")
            low = _bound(low, schema.get("exclusiveMinimum"), up=True)
            high = _bound(high, schema.get("exclusiveMaximum"), up=False)
            if low is None and high is None:
                return self.shared("integer")
            return self.rule(integer_range(low, high), "integer")
        if kind == "number":
            if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & schema.keys():
                raise Unsupported("bounds of a number")
            return self.shared("number")
        if kind in ("boolean", "null"):
            return self.shared(kind)
        if kind == "array":
            return self.array(schema, depth)
        if kind == "object":
            return self.object(schema, depth)
        raise Unsupported(f"type {kind!r}")

    def array(self, schema: dict[str, Any], depth: int) -> str:
        item = self.value(schema.get("items", True), depth + 1)
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(MAX_ITEMS, low)))
        if high == 0:
            return literal("[]")
        more = f'("," {item}){{{max(low - 1, 0)},{high - 1}}}'
        items = f"{item} {more}" if low >= 1 else f"({item} {more})?"
        return self.rule(f'"[" {items} "]"', "array")

    def object(self, schema: dict[str, Any], depth: int) -> str:
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties", False)
        if not properties and extra is False and "additionalProperties" not in schema:
            extra = True  # {"type": "object"}: any object
        if extra is not False and properties:
            raise Unsupported("additionalProperties beside properties")
        if extra is not False:
            member = f'{self.string({"maxLength": 256})} ":" {self.value(extra, depth + 1)}'
            return self.rule(f'"{{" ({member} ("," {member}){{0,{MAX_ITEMS - 1}}})? "}}"', "object")
        required = set(schema.get("required") or ())
        names = list(properties)
        members = [f"{literal(compact(name) + ':')} {self.value(properties[name], depth + 1)}" for name in names]
        if not members:
            return literal("{}")

        def after(index: int) -> str:
            """The members from ``index`` on, each behind a comma (some written already)."""
            return " ".join(
                f'"," {m}' if names[i] in required else f'("," {m})?' for i, m in enumerate(members) if i >= index
            )

        # first[i]: the members from i on when none is written yet and at least one comes.
        first = ""
        for index in range(len(members) - 1, -1, -1):
            written = self.rule(f"{members[index]} {after(index + 1)}".strip(), "member")
            first = written if names[index] in required or not first else self.rule(f"{written} | {first}", "members")
        body = first if any(name in required for name in names) else f"({first})?"
        return self.rule(f'"{{" {body} "}}"', "object")

    def any_value(self, depth: int) -> str:
        """Any JSON value, nested at most `ANY_DEPTH` deep from ``depth``."""
        name = f"any{depth}"
        if name not in self.rules:
            self.rules[name] = ""
            kinds = [self.string({}), self.shared("number"), self.shared("boolean"), self.shared("null")]
            if depth < ANY_DEPTH:
                kinds += [self.array({}, depth), self.object({"type": "object"}, depth)]
            self.rules[name] = " | ".join(kinds)
        return name


def _bound(inclusive: Any, exclusive: Any, *, up: bool) -> int | None:
    """The tightest integer bound of an inclusive and an exclusive one (``up``: lower bounds)."""
    bounds = []
    if isinstance(inclusive, int | float):
        bounds.append(math.ceil(inclusive) if up else math.floor(inclusive))
    if isinstance(exclusive, int | float) and not isinstance(exclusive, bool):
        bounds.append(math.floor(exclusive) + 1 if up else math.ceil(exclusive) - 1)
    if not bounds:
        return None
    return max(bounds) if up else min(bounds)


def compact_grammar(schema: Any, *, prefix: str = "", suffix: str = "") -> str:
    """The EBNF grammar of ``prefix``, the compact JSON text of a value ``schema`` accepts, then
    ``suffix``; raises `Unsupported` when the schema needs what the grammar does not write."""
    writer = GrammarWriter(schema)
    value = writer.value(schema)
    return writer.text(
        " ".join([*([literal(prefix)] if prefix else []), value, *([literal(suffix)] if suffix else [])])
    )
