"""Sampling options of a generation request: validated once, for gRPC and the /v3 routes alike."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from google.protobuf import json_format

from ovms_grpc_client.errors import InvalidArgument
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as pb

MAX_STOP_WORDS = 4


def _range(name: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidArgument(f"{name} out of range({low}, {high}): {value}")


def plain_json(value: Any) -> Any:
    """A protobuf Struct's dict with whole numbers as ints again (Struct keeps every number as a double)."""
    if isinstance(value, dict):
        return {key: plain_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_json(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: Bounds the grammar compiler requires in order (lower <= upper).
BOUNDS = (("minimum", "maximum"), ("minLength", "maxLength"), ("minItems", "maxItems"),
          ("minProperties", "maxProperties"))  # fmt: skip


def _compiler_problem(node: Any, root: Any, path: str) -> str | None:
    """What the grammar compiler would reject in a valid schema: unresolvable $ref, empty ranges."""
    if isinstance(node, list):
        return next((p for i, item in enumerate(node) if (p := _compiler_problem(item, root, f"{path}[{i}]"))), None)
    if not isinstance(node, dict):
        return None
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#"):
            return f"{path}['$ref'] {ref!r}: only references inside the schema (#/...) are supported"
        target = root
        for part in [p.replace("~1", "/").replace("~0", "~") for p in ref[1:].split("/") if p]:
            if not isinstance(target, dict) or part not in target:
                return f"{path}['$ref'] {ref!r} points to nothing"
            target = target[part]
    for low, high in BOUNDS:
        lower, upper = node.get(low), node.get(high)
        if isinstance(lower, int | float) and isinstance(upper, int | float) and lower > upper:
            return f"{path} {low} ({node[low]}) is greater than {high} ({node[high]})"
    return next((p for key, value in node.items() if (p := _compiler_problem(value, root, f"{path}[{key!r}]"))), None)


def checked_schema(schema: Any, where: str) -> Any:
    """``schema`` when it is a valid JSON schema the grammar compiler takes (a schema it rejects
    would otherwise fail a whole engine step)."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        path = "".join(f"[{p!r}]" for p in exc.absolute_path)
        raise InvalidArgument(f"{where} is not a valid JSON schema: {path} {exc.message}".replace("  ", " ")) from None
    problem = _compiler_problem(schema, schema, "")
    if problem:
        raise InvalidArgument(f"{where} is not supported: {problem.strip()}")
    return schema


def json_schema(response_format: pb.ResponseFormat) -> str | None:
    """The JSON schema text that constrains the output, or None for free text."""
    kind = response_format.type
    if kind in ("", "text"):
        return None
    if kind == "json_object":
        return json.dumps({"type": "object"})
    if kind == "json_schema":
        if not response_format.HasField("json_schema") or not response_format.json_schema.fields:
            raise InvalidArgument("response_format json_schema needs a schema")
        schema = plain_json(json_format.MessageToDict(response_format.json_schema))
        return json.dumps(checked_schema(schema, "response_format.json_schema"))
    raise InvalidArgument(f'response_format type must be "text", "json_object" or "json_schema", got "{kind}"')


def sampling_options(params: pb.SamplingParams, *, streaming: bool, echo: bool = False) -> dict[str, Any]:
    """The engine options of a request's SamplingParams; raises InvalidArgument naming the bad field.

    ``echo`` (completions) allows max_tokens 0: the prompt alone comes back, with its logprobs.
    """

    def optional(field: str) -> Any:
        return getattr(params, field) if params.HasField(field) else None  # type: ignore[arg-type]

    options: dict[str, Any] = {
        name: optional(name)
        for name in (
            "max_tokens", "temperature", "top_p", "top_k", "min_p", "repetition_penalty",
            "presence_penalty", "frequency_penalty", "length_penalty", "seed", "include_stop_str_in_output",
        )
    }  # fmt: skip
    _range("temperature", options["temperature"], 0.0, 2.0)
    _range("top_p", options["top_p"], 0.0, 1.0)
    _range("min_p", options["min_p"], 0.0, 1.0)
    _range("presence_penalty", options["presence_penalty"], -2.0, 2.0)
    _range("frequency_penalty", options["frequency_penalty"], -2.0, 2.0)
    if options["top_k"] is not None and options["top_k"] != -1 and options["top_k"] <= 0:
        raise InvalidArgument(f"top_k must be -1 (all tokens) or a positive integer: {options['top_k']}")
    if options["top_k"] == -1:
        options["top_k"] = None
    if options["max_tokens"] == 0 and not echo:
        raise InvalidArgument("max_tokens must be greater than 0 (0 is allowed with echo)")
    if options["repetition_penalty"] is not None and options["repetition_penalty"] <= 0:
        raise InvalidArgument(f"repetition_penalty must be greater than 0: {options['repetition_penalty']}")
    if len(params.stop) > MAX_STOP_WORDS:
        raise InvalidArgument(f"stop accepts at most {MAX_STOP_WORDS} strings, got {len(params.stop)}")
    n = params.n or 1
    best_of = params.best_of or n
    if best_of < n:
        raise InvalidArgument(f"best_of ({best_of}) must be greater than or equal to n ({n})")
    if streaming and params.best_of and params.best_of > 1:
        raise InvalidArgument("best_of is not supported in streaming mode")
    if params.top_logprobs > 1:
        raise InvalidArgument(
            f"top_logprobs accepts 0 or 1, got {params.top_logprobs}: openvino_genai gives the log probability"
            " of the chosen token only"
        )
    if params.top_logprobs and not params.logprobs:
        raise InvalidArgument("top_logprobs needs logprobs")
    options["json_schema"] = json_schema(params.response_format)
    options.update(stop=list(params.stop), ignore_eos=params.ignore_eos, n=n, logprobs=params.logprobs, echo=echo)
    return options
