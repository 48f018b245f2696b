"""Request building and response decoding shared by the blocking and the asyncio client."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import grpc

from ovms_grpc_client.errors import ERROR_KIND_KEY, KINDS, ErrorKind
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as kserve_pb
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as generation_pb

if TYPE_CHECKING:
    import numpy as np

#: What ``chat`` and ``complete`` accept as messages: OpenAI-style dicts or ChatMessage protos.
Message = Mapping[str, Any] | generation_pb.ChatMessage


class RequestFailed(Exception):
    """A call the server refused or could not serve.

    ``code`` is the gRPC status, ``kind`` the server's error kind (``MODEL_NAME_MISSING``,
    ``INVALID_SHAPE``, ...) when it sent one, so callers can branch on either.
    """

    def __init__(self, code: grpc.StatusCode, message: str, kind: ErrorKind | None) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.kind = kind


def failure(error: grpc.RpcError) -> RequestFailed:
    """The RequestFailed for a failed call (its kind read from the trailing metadata)."""
    call: Any = error
    trailing = call.trailing_metadata() or ()
    kind = next((KINDS.get(value) for key, value in trailing if key == ERROR_KIND_KEY), None)
    return RequestFailed(call.code(), call.details() or "", kind)


def infer_request(
    model: str, inputs: Mapping[str, np.ndarray], version: str | int = "", outputs: Iterable[str] = ()
) -> kserve_pb.ModelInferRequest:
    """A KServe ModelInferRequest with every input in ``raw_input_contents`` (no per-value encoding)."""
    import numpy as np

    from ovms_grpc_client.tensors import datatype_of, to_raw

    request = kserve_pb.ModelInferRequest(model_name=model, model_version=str(version))
    for name, value in inputs.items():
        array = np.asarray(value)
        request.inputs.add(name=name, datatype=datatype_of(array), shape=array.shape)
        request.raw_input_contents.append(to_raw(array))
    for name in outputs:
        request.outputs.add(name=name)
    return request


def infer_outputs(response: kserve_pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """Each output as a numpy array (raw contents read without a copy; BYTES as object arrays)."""
    import numpy as np

    from ovms_grpc_client.tensors import KSERVE_TO_NUMPY, deserialize_bytes

    result = {}
    for index, output in enumerate(response.outputs):
        shape = list(output.shape)
        raw = response.raw_output_contents[index] if index < len(response.raw_output_contents) else b""
        if output.datatype == "BYTES":
            items = deserialize_bytes(raw, output.name)
            array = np.empty(len(items), dtype=object)
            array[:] = items
            result[output.name] = array.reshape(shape)
        else:
            result[output.name] = np.frombuffer(raw, dtype=KSERVE_TO_NUMPY[output.datatype]).reshape(shape)
    return result


def _message(message: Message) -> generation_pb.ChatMessage:
    if isinstance(message, generation_pb.ChatMessage):
        return message
    return generation_pb.ChatMessage(**dict(message))


def chat_request(
    model: str, messages: Iterable[Message], include_usage: bool, sampling: Mapping[str, Any]
) -> generation_pb.ChatRequest:
    """A ChatRequest; ``sampling`` holds SamplingParams fields (max_tokens, temperature, seed, stop, ...)."""
    return generation_pb.ChatRequest(
        model=model,
        messages=[_message(m) for m in messages],
        sampling=generation_pb.SamplingParams(**dict(sampling)),
        include_usage=include_usage,
    )


def complete_request(
    model: str, prompt: str, include_usage: bool, sampling: Mapping[str, Any]
) -> generation_pb.CompleteRequest:
    return generation_pb.CompleteRequest(
        model=model, prompt=prompt, sampling=generation_pb.SamplingParams(**dict(sampling)), include_usage=include_usage
    )
