"""Small models built in code for the tests (OpenVINO opset API and onnx helper)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as op

from ovms_grpc.demo import build_dummy

#: KServe datatype -> (OpenVINO type, numpy dtype or None for BYTES)
DATATYPES: dict[str, tuple[ov.Type, type | None]] = {
    "BOOL": (ov.Type.boolean, np.bool_),
    "UINT8": (ov.Type.u8, np.uint8),
    "UINT16": (ov.Type.u16, np.uint16),
    "UINT32": (ov.Type.u32, np.uint32),
    "UINT64": (ov.Type.u64, np.uint64),
    "INT8": (ov.Type.i8, np.int8),
    "INT16": (ov.Type.i16, np.int16),
    "INT32": (ov.Type.i32, np.int32),
    "INT64": (ov.Type.i64, np.int64),
    "FP16": (ov.Type.f16, np.float16),
    "FP32": (ov.Type.f32, np.float32),
    "FP64": (ov.Type.f64, np.float64),
    "BYTES": (ov.Type.string, None),
}


def build_identity_all_types(datatypes: list[str] | None = None) -> ov.Model:
    """One input ``in_<DT>`` [-1,3] per KServe datatype (or those given), echoed to ``out_<DT>``."""
    params, results = [], []
    for name in datatypes or list(DATATYPES):
        ov_type = DATATYPES[name][0]
        param = op.parameter([-1, 3], ov_type, name=f"in_{name}")
        node = op.concat([param], 0) if name == "BYTES" else op.convert(param, ov_type)
        node.output(0).get_tensor().set_names({f"out_{name}"})
        params.append(param)
        results.append(node)
    return ov.Model(results, params, "identity")


def build_add(shape: list, increment: float = 1.0, name: str = "add") -> ov.Model:
    """FP32 input ``b`` of ``shape`` (may hold -1 or (lo, hi) ranges) -> ``a`` = b + increment."""
    dims = [ov.Dimension(*d) if isinstance(d, tuple) else ov.Dimension(d) for d in shape]
    data = op.parameter(ov.PartialShape(dims), np.float32, name="b")
    result = op.add(data, op.constant(np.float32(increment)))
    result.output(0).get_tensor().set_names({"a"})
    return ov.Model([result], [data], name)


def build_two_outputs() -> ov.Model:
    """FP32 [1,4] ``x`` -> ``double`` = 2x and ``square`` = x*x."""
    x = op.parameter([1, 4], np.float32, name="x")
    double = op.multiply(x, op.constant(np.float32(2)))
    double.output(0).get_tensor().set_names({"double"})
    square = op.multiply(x, x)
    square.output(0).get_tensor().set_names({"square"})
    return ov.Model([double, square], [x], "two_outputs")


def save(model: ov.Model, base: Path, version: int = 1) -> Path:
    folder = base / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(folder / "model.xml"), compress_to_fp16=False)
    return base


def write_dummy_repository(base: Path) -> Path:
    """OVMS's dummy: version 1 adds 1, version 2 adds 2."""
    save(build_dummy(1.0), base, 1)
    save(build_dummy(2.0), base, 2)
    return base


def write_onnx_add(base: Path, version: int = 1, increment: float = 3.0) -> Path:
    """An ONNX model built with the onnx helper: ``b`` [1,10] FP32 -> ``a`` = b + increment."""
    import onnx
    from onnx import TensorProto, helper

    const = helper.make_tensor("inc", TensorProto.FLOAT, [1], [increment])
    node = helper.make_node("Add", ["b", "inc"], ["a"])
    graph = helper.make_graph(
        [node],
        "onnx_add",
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 10])],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 10])],
        initializer=[const],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    folder = base / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    return base


def build_channel_sum() -> ov.Model:
    """NCHW FP32 [1,3,4,4] ``image`` -> ``sums`` [1,3]: the sum of each channel (reveals the layout)."""
    image = op.parameter([1, 3, 4, 4], np.float32, name="image")
    sums = op.reduce_sum(image, op.constant(np.array([2, 3], np.int64)), False)
    sums.output(0).get_tensor().set_names({"sums"})
    return ov.Model([sums], [image], "channel_sum")


def write_config(path: Path, models: list[dict]) -> Path:
    """An OVMS config.json with one model_config_list entry per dict."""
    import json

    path.write_text(json.dumps({"model_config_list": [{"config": m} for m in models]}, indent=2))
    return path


def build_image_echo(shape: list) -> ov.Model:
    """FP32 NHWC input ``image`` of ``shape`` (may hold -1 or ranges) echoed to ``pixels``: shows what the
    server decoded, including channel order."""
    dims = [ov.Dimension(*d) if isinstance(d, tuple) else ov.Dimension(d) for d in shape]
    image = op.parameter(ov.PartialShape(dims), np.float32, name="image")
    pixels = op.convert(image, ov.Type.f32)
    pixels.output(0).get_tensor().set_names({"pixels"})
    return ov.Model([pixels], [image], "image_echo")
