"""TensorFlow Serving TensorProto <-> numpy, validated against a servable's specs."""

from __future__ import annotations

import numpy as np

from ovms_grpc.core.inference import DecodedInputs, ModelRef
from ovms_grpc.images import PendingImages, accepts_images, not_an_image_input
from ovms_grpc.models.servable import Servable
from ovms_grpc_client.errors import InvalidArgument, VersionNotFound
from ovms_grpc_client.genproto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from ovms_grpc_client.genproto.tensorflow.core.protobuf import meta_graph_pb2
from ovms_grpc_client.genproto.tensorflow_serving.apis import model_pb2, predict_pb2
from ovms_grpc_client.tensors import (
    TensorSpec,
    array_from_raw,
    array_from_values,
    datatype_of,
    to_raw,
    validate_tensor,
)

DT = types_pb2.DataType
DT_TO_KSERVE = {
    DT.DT_FLOAT: "FP32",
    DT.DT_DOUBLE: "FP64",
    DT.DT_HALF: "FP16",
    DT.DT_INT8: "INT8",
    DT.DT_INT16: "INT16",
    DT.DT_INT32: "INT32",
    DT.DT_INT64: "INT64",
    DT.DT_UINT8: "UINT8",
    DT.DT_UINT16: "UINT16",
    DT.DT_UINT32: "UINT32",
    DT.DT_UINT64: "UINT64",
    DT.DT_BOOL: "BOOL",
    DT.DT_STRING: "BYTES",
}
KSERVE_TO_DT = {datatype: dt for dt, datatype in DT_TO_KSERVE.items()}
DT_STRING = DT.DT_STRING

#: The typed value field of each datatype (FP16 travels as bit patterns in half_val).
VALUE_FIELD = {
    "FP32": "float_val",
    "FP64": "double_val",
    "INT8": "int_val",
    "INT16": "int_val",
    "INT32": "int_val",
    "UINT8": "int_val",
    "UINT16": "int_val",
    "INT64": "int64_val",
    "UINT32": "uint32_val",
    "UINT64": "uint64_val",
    "BOOL": "bool_val",
    "BYTES": "string_val",
}


def requested_version(spec: model_pb2.ModelSpec) -> int | None:
    """The version a ModelSpec asks for: ``version``, a numeric ``version_label``, or None (the default)."""
    if spec.HasField("version"):
        return spec.version.value or None
    if spec.HasField("version_label"):
        if spec.version_label.isdigit():
            return int(spec.version_label)
        raise VersionNotFound(f'model "{spec.name}" has no version label "{spec.version_label}"')
    return None


def model_ref(spec: model_pb2.ModelSpec) -> ModelRef:
    return ModelRef(spec.name, requested_version(spec))


class TfsPredict:
    """A ``PredictRequest`` as the core reads it (`ovms_grpc.core.inference.InferRequest`)."""

    __slots__ = ("message", "model")

    def __init__(self, message: predict_pb2.PredictRequest) -> None:
        self.message = message
        self.model = model_ref(message.model_spec)

    @property
    def input_names(self) -> list[str]:
        return list(self.message.inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self.message.output_filter)

    def input_shapes(self) -> dict[str, list[int]]:
        return {
            name: [d.size for d in t.tensor_shape.dim]
            for name, t in self.message.inputs.items()
            if t.dtype != DT_STRING
        }

    def decode(self, servable: Servable) -> DecodedInputs:
        arrays, images = {}, []
        for name, tensor in self.message.inputs.items():
            decoded = decode_input(servable.input_by_name[name], tensor)
            if isinstance(decoded, tuple):
                images.append(decoded)
            else:
                arrays[name] = decoded
        return DecodedInputs(arrays, images)


def dtype_name(dtype: int) -> str:
    try:
        return DT.Name(dtype)  # type: ignore[arg-type]
    except ValueError:
        return f"DataType {dtype}"


def decode_input(spec: TensorSpec, tensor: tensor_pb2.TensorProto) -> np.ndarray | PendingImages:
    """One Predict input as an array; DT_STRING into a 4-D numeric input is a batch of encoded images."""
    datatype = DT_TO_KSERVE.get(tensor.dtype)
    if tensor.tensor_shape.unknown_rank:
        raise InvalidArgument(f"tensor_shape has an unknown rank; input name: {spec.name}")
    shape = [dim.size for dim in tensor.tensor_shape.dim]
    if datatype == "BYTES" and spec.datatype != "BYTES":
        if not accepts_images(spec):
            raise not_an_image_input(spec, "DT_STRING")
        return spec, list(tensor.string_val), shape
    if datatype is None or datatype != spec.datatype:  # named with the TF types a TFS client knows
        raise InvalidArgument(
            f"Expected: {tf_type_name(spec.datatype)}; Actual: {dtype_name(tensor.dtype)}; input name: {spec.name}",
            kind_name="INVALID_PRECISION",
        )
    validate_tensor(spec, datatype, shape)
    if tensor.tensor_content:
        if datatype == "BYTES":
            raise InvalidArgument(f"DT_STRING values go in string_val, not tensor_content; input name: {spec.name}")
        return array_from_raw(spec, shape, tensor.tensor_content)
    if datatype == "FP16":
        bits = array_from_values(TensorSpec(spec.name, "UINT16", spec.dims), shape, tensor.half_val)
        return bits.view(np.float16)
    return array_from_values(spec, shape, getattr(tensor, VALUE_FIELD[datatype]))


def tf_type_name(datatype: str) -> str:
    """``FP32`` -> ``DT_FLOAT``."""
    return DT.Name(KSERVE_TO_DT[datatype])


def encode_output(array: np.ndarray) -> tensor_pb2.TensorProto:
    """Numbers in tensor_content, strings in string_val, as OVMS answers."""
    datatype = datatype_of(array)
    tensor = tensor_pb2.TensorProto(dtype=KSERVE_TO_DT[datatype], tensor_shape=shape_proto(list(array.shape)))
    if datatype == "BYTES":
        tensor.string_val.extend(item if isinstance(item, bytes) else str(item).encode() for item in array.reshape(-1))
    else:
        tensor.tensor_content = to_raw(array)
    return tensor


def shape_proto(shape: list[int]) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape])


def tensor_info(spec: TensorSpec) -> meta_graph_pb2.TensorInfo:
    shape = tensor_shape_pb2.TensorShapeProto(unknown_rank=True) if spec.dynamic_rank else shape_proto(spec.shape)
    return meta_graph_pb2.TensorInfo(name=spec.name, dtype=KSERVE_TO_DT[spec.datatype], tensor_shape=shape)
