"""TensorFlow Serving REST JSON (row ``instances`` / columnar ``inputs``, ``{"b64": ...}``) <-> TFS gRPC.

Value types come from the model's signature (fetched with GetModelMetadata), as TF Serving does;
``{"b64": ...}`` values are binary strings (for example encoded images).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeAlias

import numpy as np

from gateway.http_errors import HttpError
from ovms_grpc_client.genproto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from ovms_grpc_client.genproto.tensorflow_serving.apis import predict_pb2

DT = types_pb2.DataType
DType: TypeAlias = types_pb2.DataType.ValueType
NUMPY_BY_DT = {
    DT.DT_FLOAT: np.float32,
    DT.DT_DOUBLE: np.float64,
    DT.DT_HALF: np.float16,
    DT.DT_INT8: np.int8,
    DT.DT_INT16: np.int16,
    DT.DT_INT32: np.int32,
    DT.DT_INT64: np.int64,
    DT.DT_UINT8: np.uint8,
    DT.DT_UINT16: np.uint16,
    DT.DT_UINT32: np.uint32,
    DT.DT_UINT64: np.uint64,
    DT.DT_BOOL: np.bool_,
}


def _bad(message: str) -> HttpError:
    return HttpError("INVALID_ARGUMENT", message)


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _shape_of(value: Any) -> list[int]:
    """The shape of a nested JSON list (ragged lists are refused)."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def _flatten(value: Any, shape: list[int], depth: int = 0) -> list:
    if depth == len(shape):
        if isinstance(value, list):
            raise _bad("Could not parse input content. Not valid ndarray detected")
        return [value]
    if not isinstance(value, list) or len(value) != shape[depth]:
        raise _bad("Could not parse input content. Not valid ndarray detected")
    flat: list = []
    for item in value:
        flat.extend(_flatten(item, shape, depth + 1))
    return flat


def to_tensor(value: Any, dtype: DType, name: str, batch: list[Any] | None = None) -> tensor_pb2.TensorProto:
    """A TensorProto from a JSON value (or from a batch of per-instance values)."""
    if batch is not None:
        shapes = {tuple(_shape_of(item)) for item in batch}
        if len(shapes) != 1:
            raise _bad(f"Invalid JSON structure. Instances of input {name} have different shapes")
        shape = [len(batch), *shapes.pop()]
        flat = [v for item in batch for v in _flatten(item, shape[1:])]
    else:
        shape = _shape_of(value)
        flat = _flatten(value, shape)
    tensor = tensor_pb2.TensorProto(
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]
        )
    )
    if flat and all(_is_b64(v) for v in flat):
        try:
            tensor.string_val.extend(base64.b64decode(v["b64"], validate=True) for v in flat)
        except (binascii.Error, TypeError):
            raise _bad(f"Could not parse input content. Invalid base64 in input {name}") from None
        tensor.dtype = DT.DT_STRING
        return tensor
    tensor.dtype = dtype
    if dtype == DT.DT_STRING:
        if not all(isinstance(v, str) for v in flat):
            raise _bad(f"Could not parse input content. Input {name} takes strings or b64 objects")
        tensor.string_val.extend(v.encode() for v in flat)
        return tensor
    numpy_type = NUMPY_BY_DT.get(dtype)
    if numpy_type is None:
        raise _bad(f"Could not parse input content. Unsupported data precision detected - {DT.Name(dtype)}")
    if not all(isinstance(v, int | float | bool) for v in flat):
        raise _bad(f"Could not parse input content. Input {name} takes numbers")
    try:
        tensor.tensor_content = np.asarray(flat, dtype=numpy_type).tobytes()
    except (OverflowError, ValueError):
        raise _bad(f"Could not parse input content. A value of input {name} does not fit {DT.Name(dtype)}") from None
    return tensor


def parse_predict(document: Any, input_types: dict[str, DType]) -> tuple[predict_pb2.PredictRequest, bool]:
    """The Predict request for a REST body; also whether it was in row format."""
    if not isinstance(document, dict):
        raise _bad("Request body should be JSON object")
    rows, columns = "instances" in document, "inputs" in document
    if rows == columns:
        raise _bad("Invalid JSON structure. Could not detect row or column format")
    request = predict_pb2.PredictRequest()
    names = list(input_types)
    if rows:
        instances = document["instances"]
        if not isinstance(instances, list) or not instances:
            raise _bad("Invalid JSON structure. Missing instances in row format")
        if all(isinstance(i, dict) and not _is_b64(i) for i in instances):
            for name in {key for instance in instances for key in instance}:
                if any(name not in instance for instance in instances):
                    raise _bad(f"Invalid JSON structure. Input {name} is missing in some instances")
                dtype = input_types.get(name, DT.DT_FLOAT)
                request.inputs[name].CopyFrom(to_tensor(None, dtype, name, [i[name] for i in instances]))
        else:
            if len(names) != 1:
                raise _bad("Invalid JSON structure. Nonamed instance is not an array.")
            request.inputs[names[0]].CopyFrom(to_tensor(None, input_types[names[0]], names[0], instances))
        return request, True
    inputs = document["inputs"]
    if isinstance(inputs, dict) and not _is_b64(inputs):
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(to_tensor(value, input_types.get(name, DT.DT_FLOAT), name))
    else:
        if len(names) != 1:
            raise _bad("Invalid JSON structure. Inputs without names need a model with one input")
        request.inputs[names[0]].CopyFrom(to_tensor(inputs, input_types[names[0]], names[0]))
    return request, False


def _json_value(tensor: tensor_pb2.TensorProto) -> Any:
    shape = [d.size for d in tensor.tensor_shape.dim]
    if tensor.dtype == DT.DT_STRING:
        items: list = []
        for raw in tensor.string_val:
            try:
                items.append(raw.decode())
            except UnicodeDecodeError:
                items.append({"b64": base64.b64encode(raw).decode()})
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array.reshape(shape).tolist()
    numpy_type = NUMPY_BY_DT[tensor.dtype]
    return np.frombuffer(tensor.tensor_content, dtype=numpy_type).reshape(shape).tolist()


def encode_predict(response: predict_pb2.PredictResponse, rows: bool) -> dict:
    """``{"predictions": ...}`` for row requests, ``{"outputs": ...}`` for columnar ones; the output
    name is left out when there is a single output (TF Serving's convention)."""
    values = {name: _json_value(tensor) for name, tensor in sorted(response.outputs.items())}
    if not rows:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    batch = len(next(iter(values.values())))
    return {"predictions": [{name: value[i] for name, value in values.items()} for i in range(batch)]}
