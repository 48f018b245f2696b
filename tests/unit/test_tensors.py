import struct

import numpy as np
import pytest

from ovms_grpc_client.errors import InvalidArgument
from ovms_grpc_client.tensors import (
    TensorSpec,
    array_from_raw,
    array_from_values,
    deserialize_bytes,
    format_dims,
    serialize_bytes,
    validate_input_names,
    validate_output_names,
    validate_tensor,
)

STATIC = TensorSpec("b", "FP32", ((1, 1), (10, 10)))
RANGED = TensorSpec("x", "INT64", ((1, 4), (0, -1), (3, 3)))


def error(call) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        call()
    return info.value


def test_metadata_shape_marks_dynamic_and_ranged_dims() -> None:
    assert STATIC.shape == [1, 10]
    assert RANGED.shape == [-1, -1, 3]
    assert format_dims(RANGED.dims) == "(1:4,-1,3)"


def test_input_names() -> None:
    validate_input_names("m", 1, [STATIC], ["b"])
    assert error(lambda: validate_input_names("m", 1, [STATIC], ["c"])).kind.name == "INVALID_MISSING_INPUT"
    e = error(lambda: validate_input_names("m", 1, [STATIC], ["b", "b"]))
    assert e.kind.name == "INVALID_NO_OF_INPUTS" and "duplicated: b" in e.details
    e = error(lambda: validate_input_names("m", 1, [STATIC], []))
    assert e.details.startswith("Expected: 1; Actual: 0; missing: b")


def test_output_names() -> None:
    validate_output_names("m", 1, [STATIC], [])
    e = error(lambda: validate_output_names("m", 2, [STATIC], ["zz"]))
    assert e.details == 'Required output: zz; model "m" version 2 outputs: b'


@pytest.mark.parametrize(
    ("datatype", "shape", "kind"),
    [
        ("FP16", [1, 10], "INVALID_PRECISION"),
        ("FP32", [10], "INVALID_NO_OF_SHAPE_DIMENSIONS"),
        ("FP32", [3, 10], "INVALID_BATCH_SIZE"),
        ("FP32", [1, 11], "INVALID_SHAPE"),
        ("FP32", [1, -1], "INVALID_SHAPE"),
    ],
)
def test_tensor_checks(datatype: str, shape: list[int], kind: str) -> None:
    assert error(lambda: validate_tensor(STATIC, datatype, shape)).kind.name == kind


def test_ranges_accept_values_inside() -> None:
    validate_tensor(RANGED, "INT64", [4, 1000, 3])
    assert error(lambda: validate_tensor(RANGED, "INT64", [5, 1, 3])).details.startswith("Expected: 1:4; Actual: 5")


def test_dynamic_rank_accepts_any_rank() -> None:
    spec = TensorSpec("any", "FP32", (), dynamic_rank=True)
    validate_tensor(spec, "FP32", [2, 3, 4, 5])
    assert spec.shape == []


def test_raw_is_a_view_without_copy() -> None:
    raw = np.arange(10, dtype=np.float32).tobytes()
    array = array_from_raw(STATIC, [1, 10], raw)
    assert array.base is not None and not array.flags.owndata
    np.testing.assert_array_equal(array, np.arange(10, dtype=np.float32).reshape(1, 10))
    e = error(lambda: array_from_raw(STATIC, [1, 10], raw[:-4]))
    assert e.details == "Expected: 40 bytes; Actual: 36 bytes; input name: b"


def test_values_count_and_range() -> None:
    spec = TensorSpec("u", "UINT8", ((2, 2),))
    np.testing.assert_array_equal(array_from_values(spec, [2], [1, 255]), np.array([1, 255], np.uint8))
    assert error(lambda: array_from_values(spec, [2], [1])).kind.name == "INVALID_VALUE_COUNT"
    assert "out of range for UINT8" in error(lambda: array_from_values(spec, [2], [1, 256])).details


def test_bytes_round_trip_and_truncation() -> None:
    items = [b"", b"abc", "żółw".encode()]
    raw = serialize_bytes(np.array(items, dtype=object))
    assert raw[:4] == struct.pack("<I", 0)
    assert deserialize_bytes(raw, "s") == items
    assert "truncated length prefix" in error(lambda: deserialize_bytes(b"\x01\x00", "s")).details
