"""KServe v2 gRPC messages <-> numpy arrays, validated against a servable."""

from __future__ import annotations

import numpy as np

from ovms_grpc.core.inference import DecodedInputs, InferResult, ModelRef
from ovms_grpc.images import PendingImages, accepts_images, not_an_image_input
from ovms_grpc.models.manager import parse_version
from ovms_grpc.models.servable import Servable
from ovms_grpc_client.errors import InvalidArgument
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb
from ovms_grpc_client.tensors import (
    TensorSpec,
    array_from_raw,
    array_from_values,
    datatype_of,
    deserialize_bytes,
    to_raw,
    validate_tensor,
)

#: Which InferTensorContents field carries each datatype (FP16 travels only as raw bytes).
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


class KServeInfer:
    """A ``ModelInferRequest`` as the core reads it (`ovms_grpc.core.inference.InferRequest`)."""

    __slots__ = ("message", "model")

    def __init__(self, message: pb.ModelInferRequest) -> None:
        self.message = message
        self.model = ModelRef(message.model_name, parse_version(message.model_version))

    @property
    def input_names(self) -> list[str]:
        return [tensor.name for tensor in self.message.inputs]

    @property
    def output_names(self) -> list[str]:
        return [output.name for output in self.message.outputs]

    def input_shapes(self) -> dict[str, list[int]]:
        return {t.name: list(t.shape) for t in self.message.inputs if t.datatype != "BYTES"}

    def decode(self, servable: Servable) -> DecodedInputs:
        return decode_inputs(self.message, servable)


def decode_inputs(request: pb.ModelInferRequest, servable: Servable) -> DecodedInputs:
    """The request's inputs (names already checked) as arrays shaped as declared, after every
    check; encoded images are returned apart, to be decoded off the event loop."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidArgument(
            f"raw_input_contents has {len(raw)} buffers for {len(request.inputs)} inputs",
            kind_name="INVALID_MESSAGE_STRUCTURE",
        )
    arrays = {}
    images: list[PendingImages] = []
    for index, tensor in enumerate(request.inputs):
        spec = servable.input_by_name[tensor.name]
        shape = list(tensor.shape)
        if raw and tensor.HasField("contents"):
            raise InvalidArgument(
                "Passing buffers both in InferInputTensor contents and in raw_input_contents is not allowed. "
                f"Detected buffer in InferInputTensor contents for input: {tensor.name}",
                kind_name="INVALID_MESSAGE_STRUCTURE",
            )
        if tensor.datatype == "BYTES" and spec.datatype != "BYTES":
            if not accepts_images(spec):
                raise not_an_image_input(spec, "BYTES")
            items = deserialize_bytes(raw[index], spec.name) if raw else list(tensor.contents.bytes_contents)
            images.append((spec, items, shape))
            continue
        validate_tensor(spec, tensor.datatype, shape)
        if raw:
            arrays[tensor.name] = array_from_raw(spec, shape, raw[index])
        else:
            arrays[tensor.name] = _from_contents(spec, shape, tensor.contents)
    return DecodedInputs(arrays, images)


def _from_contents(spec: TensorSpec, shape: list[int], contents: pb.InferTensorContents) -> np.ndarray:
    field = CONTENTS_FIELD.get(spec.datatype)
    if field is None:
        raise InvalidArgument(
            f"{spec.datatype} data must be sent in raw_input_contents; input name: {spec.name}",
            kind_name="INVALID_MESSAGE_STRUCTURE",
        )
    return array_from_values(spec, shape, getattr(contents, field))


def encode_response(result: InferResult, request_id: str) -> pb.ModelInferResponse:
    """Every output goes to raw_output_contents, as OVMS and tritonclient expect."""
    response = pb.ModelInferResponse(model_name=result.name, model_version=str(result.version), id=request_id)
    for name, array in result.outputs.items():
        response.outputs.add(name=name, datatype=datatype_of(array), shape=array.shape)
        response.raw_output_contents.append(to_raw(array))
    return response


def tensor_metadata(specs: list[TensorSpec]) -> list[pb.ModelMetadataResponse.TensorMetadata]:
    return [
        pb.ModelMetadataResponse.TensorMetadata(name=spec.name, datatype=spec.datatype, shape=spec.shape)
        for spec in specs
    ]
