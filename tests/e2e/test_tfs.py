"""TensorFlow Serving API over gRPC: the real ovmsclient, and raw stubs generated from our protos."""

from __future__ import annotations

import io
import json
from pathlib import Path

import grpc
import numpy as np
import pytest
from ovmsclient import make_grpc_client
from PIL import Image

from ovms_grpc_client.genproto.tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from ovms_grpc_client.genproto.tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tests import models

DT = types_pb2.DataType


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, dummy_repo: Path, demo_repo: Path) -> Path:
    root = tmp_path_factory.mktemp("tfs")
    models.save(models.build_identity_all_types(), root / "identity")
    models.save(models.build_image_echo([1, 6, 8, 3]), root / "image")
    models.save(models.build_two_outputs(), root / "two")
    models.save(models.build_add([1, 10], 1.0), root / "gpu")
    models.write_config(root / "config.json", [
        {"name": "dummy", "base_path": str(dummy_repo), "model_version_policy": {"all": {}}},
        {"name": "resnet_like", "base_path": str(demo_repo / "resnet_like")},
        {"name": "identity", "base_path": "identity"},
        {"name": "image", "base_path": "image"},
        {"name": "two", "base_path": "two"},
        {"name": "gpu", "base_path": "gpu", "target_device": "GPU"},
    ])  # fmt: skip
    return root


@pytest.fixture(scope="module")
def server(server_factory, repo: Path):
    return server_factory("--config_path", str(repo / "config.json"), "--file_system_poll_wait_seconds", "0")


@pytest.fixture(scope="module")
def stubs(server):
    with grpc.insecure_channel(server.address) as channel:
        yield (
            prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel),
        )


@pytest.fixture(scope="module")
def client(server):
    return make_grpc_client(server.address)


ROW = np.arange(10, dtype=np.float32).reshape(1, 10)


def test_ovmsclient_predict_metadata_status(client) -> None:
    np.testing.assert_array_equal(client.predict({"b": ROW}, "dummy"), ROW + 2)
    np.testing.assert_array_equal(client.predict({"b": ROW}, "dummy", model_version=1), ROW + 1)
    assert client.get_model_metadata("dummy", 1) == {
        "model_version": 1,
        "inputs": {"b": {"shape": [1, 10], "dtype": "DT_FLOAT"}},
        "outputs": {"a": {"shape": [1, 10], "dtype": "DT_FLOAT"}},
    }
    assert client.get_model_status("dummy") == {
        1: {"state": "AVAILABLE", "error_code": 0, "error_message": ""},
        2: {"state": "AVAILABLE", "error_code": 0, "error_message": ""},
    }
    image = np.random.default_rng(2).random((1, 3, 224, 224), dtype=np.float32)
    scores = client.predict({"input": image}, "resnet_like")
    assert scores.shape == (1, 1000) and abs(float(scores.sum()) - 1) < 1e-3


def test_ovmsclient_errors(client) -> None:
    from ovmsclient.tfs_compat.base.errors import InvalidInputError, ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="version 7 not found \\(available versions: 1, 2\\)"):
        client.predict({"b": ROW}, "dummy", model_version=7)
    with pytest.raises(ModelNotFoundError, match='model "nope" not found'):
        client.get_model_status("nope")
    with pytest.raises(InvalidInputError, match="Expected: DT_FLOAT; Actual: DT_INT32; input name: b"):
        client.predict({"b": ROW.astype(np.int32)}, "dummy")
    with pytest.raises(InvalidInputError, match="Missing input with specific name - Required input: b"):
        client.predict({"x": ROW}, "dummy")
    with pytest.raises(InvalidInputError, match="Invalid input shape - Expected: \\(1,10\\); Actual: \\(1,9\\)"):
        client.predict({"b": ROW[:, :9]}, "dummy")


def test_ovmsclient_jpeg_matches_the_decoded_tensor(client) -> None:
    pixels = np.random.default_rng(4).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    from_jpeg = client.predict({"image": buffer.getvalue()}, "image")
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))[:, :, ::-1][None]
    from_tensor = client.predict({"image": decoded.astype(np.float32)}, "image")
    assert from_jpeg.shape == from_tensor.shape == (1, 6, 8, 3)
    assert np.abs(from_jpeg - from_tensor).mean() < 3.0


def tensor(dtype: int, shape: list[int], **values) -> tensor_pb2.TensorProto:
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in shape]
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims), **values)


TYPED = {
    "FP32": (DT.DT_FLOAT, "float_val", [1.5, -2, 3]),
    "FP64": (DT.DT_DOUBLE, "double_val", [1.25, 0, -3]),
    "INT8": (DT.DT_INT8, "int_val", [-128, 0, 127]),
    "INT16": (DT.DT_INT16, "int_val", [-300, 0, 300]),
    "INT32": (DT.DT_INT32, "int_val", [-70000, 0, 70000]),
    "INT64": (DT.DT_INT64, "int64_val", [-5, 0, 5]),
    "UINT8": (DT.DT_UINT8, "int_val", [0, 1, 255]),
    "UINT16": (DT.DT_UINT16, "int_val", [0, 1, 65535]),
    "UINT32": (DT.DT_UINT32, "uint32_val", [0, 1, 4000000000]),
    "UINT64": (DT.DT_UINT64, "uint64_val", [0, 1, 5]),
    "BOOL": (DT.DT_BOOL, "bool_val", [True, False, True]),
    "BYTES": (DT.DT_STRING, "string_val", [b"a", b"", b"xyz"]),
    "FP16": (DT.DT_HALF, "half_val", list(np.array([1.5, -2, 0.25], np.float16).view(np.uint16).astype(int))),
}


def test_every_dtype_from_typed_value_fields(stubs) -> None:
    predict, _ = stubs
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "identity"
    for name, (dtype, field, values) in TYPED.items():
        request.inputs[f"in_{name}"].CopyFrom(tensor(dtype, [1, 3], **{field: values}))
    response = predict.Predict(request)
    assert response.model_spec.name == "identity" and response.model_spec.version.value == 1
    for name, (dtype, _field, values) in TYPED.items():
        out = response.outputs[f"out_{name}"]
        assert out.dtype == dtype and [d.size for d in out.tensor_shape.dim] == [1, 3]
        if name == "BYTES":
            assert list(out.string_val) == values
        else:
            expected = np.array(values, models.DATATYPES[name][1]) if name != "FP16" else np.array([1.5, -2, 0.25])
            got = np.frombuffer(out.tensor_content, models.DATATYPES[name][1])
            np.testing.assert_array_equal(got, expected.astype(got.dtype), err_msg=name)


def test_output_filter_and_version_label(stubs) -> None:
    predict, _ = stubs
    request = predict_pb2.PredictRequest(output_filter=["square"])
    request.model_spec.name = "two"
    request.inputs["x"].CopyFrom(tensor(DT.DT_FLOAT, [1, 4], tensor_content=np.arange(4, dtype=np.float32).tobytes()))
    response = predict.Predict(request)
    assert list(response.outputs) == ["square"]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "dummy"
    request.model_spec.version_label = "1"
    request.inputs["b"].CopyFrom(tensor(DT.DT_FLOAT, [1, 10], tensor_content=ROW.tobytes()))
    assert np.frombuffer(predict.Predict(request).outputs["a"].tensor_content, np.float32)[0] == 1
    request.model_spec.version_label = "stable"
    with pytest.raises(grpc.RpcError) as info:
        predict.Predict(request)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and 'no version label "stable"' in info.value.details()


@pytest.mark.parametrize(
    ("input_tensor", "message"),
    [
        (
            tensor(DT.DT_FLOAT, [1, 10], tensor_content=b"\0" * 36),
            "Expected: 40 bytes; Actual: 36 bytes; input name: b",
        ),
        (tensor(DT.DT_FLOAT, [1, 10], float_val=[1, 2]), "Expected: 10 values; Actual: 2 values; input name: b"),
        (tensor(DT.DT_COMPLEX64, [1, 10]), "Expected: DT_FLOAT; Actual: DT_COMPLEX64; input name: b"),
        (tensor(DT.DT_FLOAT, [2, 10]), "Invalid input batch size - Expected: 1; Actual: 2; input name: b"),
    ],
)
def test_predict_errors_are_invalid_argument(stubs, input_tensor, message: str) -> None:
    predict, _ = stubs
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "dummy"
    request.inputs["b"].CopyFrom(input_tensor)
    with pytest.raises(grpc.RpcError) as info:
        predict.Predict(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()


def test_model_not_loaded_is_unavailable(stubs) -> None:
    predict, model = stubs
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "gpu"
    request.inputs["b"].CopyFrom(tensor(DT.DT_FLOAT, [1, 10], tensor_content=ROW.tobytes()))
    with pytest.raises(grpc.RpcError) as info:
        predict.Predict(request)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "gpu"
    (status,) = model.GetModelStatus(status_request).model_version_status
    assert status.state == get_model_status_pb2.ModelVersionStatus.LOADING
    assert status.status.error_code == 2 and "for GPU" in status.status.error_message


def test_metadata_needs_the_signature_def_field(stubs) -> None:
    predict, _ = stubs
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["inputs"])
    request.model_spec.name = "dummy"
    with pytest.raises(grpc.RpcError) as info:
        predict.GetModelMetadata(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("Invalid signature name")
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "identity"
    answer = predict.GetModelMetadata(request)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert answer.metadata["signature_def"].Unpack(signatures)
    signature = signatures.signature_def["serving_default"]
    assert signature.method_name == "tensorflow/serving/predict"
    assert signature.inputs["in_FP16"].dtype == DT.DT_HALF
    assert [d.size for d in signature.inputs["in_FP16"].tensor_shape.dim] == [-1, 3]


def test_unserved_rpcs_are_unimplemented(stubs) -> None:
    predict, _ = stubs
    with pytest.raises(grpc.RpcError) as info:
        predict.Classify(classification_pb2.ClassificationRequest())
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_reload_config_request_reloads_the_file(stubs, repo: Path) -> None:
    predict, model = stubs
    config = repo / "config.json"
    original = config.read_text()
    document = json.loads(original)
    document["model_config_list"].append({"config": {"name": "extra", "base_path": "two"}})
    config.write_text(json.dumps(document))
    try:
        answer = model.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest())
        assert answer.status.error_code == 0
        status_request = get_model_status_pb2.GetModelStatusRequest()
        status_request.model_spec.name = "extra"
        assert model.GetModelStatus(status_request).model_version_status[0].state == 30
        config.write_text("{broken")
        with pytest.raises(grpc.RpcError) as info:
            model.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest())
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        config.write_text(original)
        model.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest())
