"""Sampling options of a generation request: validated once, for gRPC and the /v3 routes alike."""

from __future__ import annotations

from typing import Any

from ovms_grpc.errors import InvalidArgument
from ovms_grpc.genproto.ovms.generation.v1 import generation_pb2 as pb

MAX_STOP_WORDS = 4


def _range(name: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidArgument(f"{name} out of range({low}, {high}): {value}")


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
    if params.HasField("response_format") and params.response_format.type not in ("", "text"):
        raise InvalidArgument("response_format other than text is not supported by this server yet")
    options.update(stop=list(params.stop), ignore_eos=params.ignore_eos, n=n, logprobs=params.logprobs, echo=echo)
    return options
