"""Protocol-neutral tensor rules: datatypes, shapes and request validation.

Every API (KServe gRPC/REST, TFS) converts its wire tensors to numpy arrays
and then validates them here against the servable's `TensorSpec`s, so a rule
such as "wrong precision" is written once and reads the same everywhere.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ovms_grpc_client.errors import InvalidArgument

#: KServe datatype name -> numpy dtype. BYTES is an object array of ``bytes``.
KSERVE_TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}

NUMPY_TO_KSERVE: dict[np.dtype, str] = {dtype: name for name, dtype in KSERVE_TO_NUMPY.items()}

#: A dimension: (lower, upper) bounds; upper -1 means unbounded. Static dims have lower == upper.
Dim = tuple[int, int]


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as the APIs expose it."""

    name: str
    datatype: str
    """KServe datatype name (``FP32``, ``BYTES``...)."""
    dims: tuple[Dim, ...]
    """Bounds of each dimension; a fully dynamic dim is (0, -1)."""
    dynamic_rank: bool = False
    """True when even the number of dimensions is not fixed."""
    layout: str = ""
    """Layout clients use for this tensor, e.g. ``NHWC``; empty when the model does not say."""

    @property
    def shape(self) -> list[int]:
        """Metadata shape: the static size, or -1 for a dynamic or ranged dimension."""
        return [lo if lo == hi else -1 for lo, hi in self.dims]

    @property
    def numpy_dtype(self) -> np.dtype:
        return KSERVE_TO_NUMPY[self.datatype]


def format_dims(dims: Sequence[Dim]) -> str:
    parts = []
    for lo, hi in dims:
        if lo == hi:
            parts.append(str(lo))
        elif hi == -1 and lo <= 0:
            parts.append("-1")
        else:
            parts.append(f"{lo}:{hi}")
    return "(" + ",".join(parts) + ")"


def format_shape(shape: Sequence[int]) -> str:
    return "(" + ",".join(str(d) for d in shape) + ")"


def element_count(shape: Sequence[int]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def validate_input_names(model: str, version: int, specs: Sequence[TensorSpec], names: Sequence[str]) -> None:
    """Check that the request carries exactly the model's inputs."""
    if len(names) == len(specs) and all(spec.name == name for spec, name in zip(specs, names, strict=True)):
        return  # the usual case: every input, in the model's order
    expected = [spec.name for spec in specs]
    missing = [name for name in expected if name not in names]
    unexpected = [name for name in names if name not in expected]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if not missing and not unexpected and not duplicated:
        return
    where = f'model "{model}" version {version} expects inputs: {", ".join(expected)}'
    problems = []
    if missing:
        problems.append("missing: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected: " + ", ".join(unexpected))
    if duplicated:
        problems.append("duplicated: " + ", ".join(duplicated))
    if len(names) != len(expected):
        detail = f"Expected: {len(expected)}; Actual: {len(names)}; " + "; ".join(problems) + f"; {where}"
        raise InvalidArgument(detail, kind_name="INVALID_NO_OF_INPUTS")
    first_missing = missing[0] if missing else duplicated[0]
    detail = f"Required input: {first_missing}; " + "; ".join(problems) + f"; {where}"
    raise InvalidArgument(detail, kind_name="INVALID_MISSING_INPUT")


def validate_tensor(spec: TensorSpec, datatype: str, shape: Sequence[int]) -> None:
    """Check the datatype and shape a request declares for one input."""
    suffix = f"input name: {spec.name}"
    if datatype != spec.datatype:
        raise InvalidArgument(f"Expected: {spec.datatype}; Actual: {datatype}; {suffix}", kind_name="INVALID_PRECISION")
    if any(d <= 0 for d in shape):
        raise InvalidArgument(
            f"Negative or zero dimension size is not acceptable: {format_shape(shape)}; {suffix}",
            kind_name="INVALID_SHAPE",
        )
    if spec.dynamic_rank:
        return
    if len(shape) != len(spec.dims):
        raise InvalidArgument(
            f"Expected: {format_dims(spec.dims)}; Actual: {format_shape(shape)}; {suffix}",
            kind_name="INVALID_NO_OF_SHAPE_DIMENSIONS",
        )
    for index, (size, (lo, hi)) in enumerate(zip(shape, spec.dims, strict=True)):
        if size < lo or (hi != -1 and size > hi):
            if index == 0 and len(shape) > 1:
                expected = format_dims(spec.dims[:1])[1:-1]
                raise InvalidArgument(f"Expected: {expected}; Actual: {size}; {suffix}", kind_name="INVALID_BATCH_SIZE")
            raise InvalidArgument(
                f"Expected: {format_dims(spec.dims)}; Actual: {format_shape(shape)}; {suffix}",
                kind_name="INVALID_SHAPE",
            )


def fits(spec: TensorSpec, shape: Sequence[int]) -> bool:
    """Whether ``shape`` is within the spec's dimension bounds."""
    if spec.dynamic_rank:
        return True
    if len(shape) != len(spec.dims):
        return False
    return all(lo <= size and (hi == -1 or size <= hi) for size, (lo, hi) in zip(shape, spec.dims, strict=True))


def array_from_raw(spec: TensorSpec, shape: Sequence[int], raw: bytes) -> np.ndarray:
    """View a raw buffer as an array of ``shape`` (no copy), checking its byte size."""
    if spec.datatype == "BYTES":
        return _bytes_array(deserialize_bytes(raw, spec.name), shape, spec.name)
    dtype = spec.numpy_dtype
    expected = element_count(shape) * dtype.itemsize
    if len(raw) != expected:
        raise InvalidArgument(
            f"Expected: {expected} bytes; Actual: {len(raw)} bytes; input name: {spec.name}",
            kind_name="INVALID_CONTENT_SIZE",
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def array_from_values(spec: TensorSpec, shape: Sequence[int], values: Sequence) -> np.ndarray:
    """Build an array from a typed value list (KServe ``contents``, TFS ``*_val``)."""
    expected = element_count(shape)
    if len(values) != expected:
        raise InvalidArgument(
            f"Expected: {expected} values; Actual: {len(values)} values; input name: {spec.name}",
            kind_name="INVALID_VALUE_COUNT",
        )
    if spec.datatype == "BYTES":
        return _bytes_array(list(values), shape, spec.name)
    try:
        return np.asarray(values, dtype=spec.numpy_dtype).reshape(shape)
    except OverflowError as exc:
        raise InvalidArgument(f"value out of range for {spec.datatype}; input name: {spec.name}") from exc


def _bytes_array(items: list[bytes], shape: Sequence[int], name: str) -> np.ndarray:
    if len(items) != element_count(shape):
        raise InvalidArgument(
            f"Expected: {element_count(shape)} values; Actual: {len(items)} values; input name: {name}",
            kind_name="INVALID_VALUE_COUNT",
        )
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array.reshape(shape)


def deserialize_bytes(raw: bytes, name: str) -> list[bytes]:
    """Split a raw BYTES buffer: each element is a 4-byte little-endian length, then the bytes."""
    items = []
    offset = 0
    view = memoryview(raw)
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidArgument(
                f"truncated length prefix at byte {offset} of {len(raw)}; input name: {name}",
                kind_name="INVALID_CONTENT_SIZE",
            )
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InvalidArgument(
                f"element of {length} bytes exceeds the buffer ({len(raw) - offset} left); input name: {name}",
                kind_name="INVALID_CONTENT_SIZE",
            )
        items.append(bytes(view[offset : offset + length]))
        offset += length
    return items


def serialize_bytes(array: np.ndarray) -> bytes:
    """The raw KServe form of a BYTES tensor (length-prefixed elements, row-major)."""
    parts = []
    for item in array.reshape(-1):
        data = item if isinstance(item, bytes) else str(item).encode()
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return b"".join(parts)


def to_raw(array: np.ndarray) -> bytes:
    """The raw KServe form of an array (row-major bytes, or length-prefixed BYTES)."""
    if array.dtype == object or array.dtype.kind in "SU":
        return serialize_bytes(array)
    base = array.base
    if isinstance(base, bytes) and array.flags.c_contiguous and len(base) == array.nbytes:
        return base  # already the exact bytes (an output read from OpenVINO): no second copy
    return np.ascontiguousarray(array).tobytes()


def datatype_of(array: np.ndarray) -> str:
    if array.dtype.kind in "SUO":
        return "BYTES"
    return NUMPY_TO_KSERVE[array.dtype]


def validate_output_names(model: str, version: int, specs: Sequence[TensorSpec], requested: Sequence[str]) -> None:
    """Check that every requested output exists."""
    known = [spec.name for spec in specs]
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise InvalidArgument(
            f'Required output: {unknown[0]}; model "{model}" version {version} outputs: {", ".join(known)}',
            kind_name="INVALID_MISSING_OUTPUT",
        )
