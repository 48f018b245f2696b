"""config.json: many models, devices, plugin configs, shapes and layouts, status and errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from tests import models
from tests.e2e.kserve_client import Client
from tests.server_process import REPO, free_port

ONES = np.ones((1, 10), np.float32)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, dummy_repo: Path) -> Path:
    root = tmp_path_factory.mktemp("config_repo")
    models.save(models.build_add([1, 10], 1.0), root / "add")
    models.save(models.build_add([-1, -1], 1.0), root / "dynamic")
    models.save(models.build_channel_sum(), root / "channel_sum")
    models.write_onnx_add(root / "onnx", increment=3.0)
    entries = [
        {"name": "dummy", "base_path": str(dummy_repo), "model_version_policy": {"all": {}}},
        {"name": "onnx", "base_path": "onnx"},
        {"name": "auto", "base_path": "add", "target_device": "AUTO:CPU"},
        {"name": "hetero", "base_path": "add", "target_device": "HETERO:CPU"},
        {"name": "multi", "base_path": "add", "target_device": "MULTI:CPU"},
        {"name": "batch", "base_path": "add", "target_device": "BATCH:CPU(4)", "plugin_config": {"AUTO_BATCH_TIMEOUT": 50}},  # noqa: E501
        {"name": "gpu", "base_path": "add", "target_device": "GPU"},
        {"name": "npu", "base_path": "dynamic", "target_device": "NPU"},
        {"name": "legacy", "base_path": "add", "plugin_config": {"KEY_CPU_THROUGHPUT_STREAMS": "CPU_THROUGHPUT_AUTO"}},
        {"name": "hint_and_streams", "base_path": "add", "plugin_config": {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 1}},  # noqa: E501
        {"name": "bad_property", "base_path": "add", "plugin_config": {"NOT_A_PROPERTY": "1"}},
        {"name": "bad_value", "base_path": "add", "plugin_config": {"NUM_STREAMS": "many"}},
        {"name": "shaped", "base_path": "dynamic", "shape": "(2,10)"},
        {"name": "batched", "base_path": "add", "batch_size": 4, "nireq": 3},
        {"name": "ranged", "base_path": "dynamic", "shape": {"b": "(1:3,10)"}},
        {"name": "nhwc", "base_path": "channel_sum", "layout": "NHWC:NCHW"},
        {"name": "auto_shape", "base_path": "add", "shape": "auto"},
        {"name": "auto_batch", "base_path": "add", "batch_size": "auto"},
        {"name": "auto_sum", "base_path": "channel_sum", "shape": "auto"},
    ]  # fmt: skip
    models.write_config(root / "config.json", entries)
    return root


@pytest.fixture(scope="module")
def client(server_factory, repo: Path):
    server = server_factory("--config_path", str(repo / "config.json"), "--file_system_poll_wait_seconds", "0")
    client = Client(server.address)
    yield client
    client.close()


@pytest.mark.parametrize("model", ["auto", "hetero", "multi", "batch", "legacy", "hint_and_streams"])
def test_virtual_devices_and_plugin_configs_serve_correct_results(client: Client, model: str) -> None:
    np.testing.assert_array_equal(client.infer(model, {"b": ONES})["a"], ONES + 1)


def test_versions_and_formats(client: Client) -> None:
    assert client.infer("dummy", {"b": ONES}, "1")["a"][0, 0] == 2
    assert client.infer("dummy", {"b": ONES})["a"][0, 0] == 3
    np.testing.assert_array_equal(client.infer("onnx", {"b": ONES})["a"], ONES + 3)


def test_absent_devices_fail_only_their_model(client: Client) -> None:
    status = client.status()
    (gpu,) = status.models["gpu"].model_version_status
    assert gpu.state == 20 and gpu.error_code == "UNKNOWN"
    assert "cannot compile" in gpu.error_message and "for GPU" in gpu.error_message
    assert "libOpenCL" in gpu.error_message  # OpenVINO's own reason
    (npu,) = status.models["npu"].model_version_status
    assert npu.error_code == "UNKNOWN"
    assert "NPU needs static shapes, but input(s) b are dynamic: set shape or batch_size" in npu.error_message
    with pytest.raises(grpc.RpcError) as info:
        client.infer("gpu", {"b": ONES})
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert 'model "gpu" has no version available: version 1: cannot compile' in info.value.details()


def test_rejected_plugin_config_is_reported_in_status(client: Client) -> None:
    (bad,) = client.status("bad_property").models["bad_property"].model_version_status
    assert bad.error_code == "UNKNOWN" and "Unsupported property NOT_A_PROPERTY by CPU plugin" in bad.error_message
    (value,) = client.status("bad_value").models["bad_value"].model_version_status
    assert value.error_code == "UNKNOWN" and "many" in value.error_message


def test_effective_properties_are_reported(client: Client) -> None:
    (legacy,) = client.status("legacy").models["legacy"].model_version_status
    assert legacy.state == 30 and legacy.properties["NUM_STREAMS"] == "2" and legacy.nireq == 2
    (both,) = client.status("hint_and_streams").models["hint_and_streams"].model_version_status
    assert both.properties["PERFORMANCE_HINT"] == "THROUGHPUT" and both.properties["NUM_STREAMS"] == "1"
    assert list(both.notes) == [
        "NUM_STREAMS=1 overrides the stream count of PERFORMANCE_HINT=THROUGHPUT (OpenVINO applies the explicit value)"
    ]
    assert list(legacy.notes) == ["KEY_CPU_THROUGHPUT_STREAMS is read as NUM_STREAMS"]
    (batched,) = client.status("batched").models["batched"].model_version_status
    assert batched.nireq == 3


def test_shape_and_batch_size_reshape_the_model(client: Client) -> None:
    assert list(client.metadata("shaped").inputs[0].shape) == [2, 10]
    assert list(client.metadata("batched").inputs[0].shape) == [4, 10]
    assert list(client.metadata("ranged").inputs[0].shape) == [-1, 10]
    np.testing.assert_array_equal(client.infer("batched", {"b": np.ones((4, 10), np.float32)})["a"], 2)
    with pytest.raises(grpc.RpcError) as info:
        client.infer("ranged", {"b": np.ones((4, 10), np.float32)})
    assert info.value.details() == "Invalid input batch size - Expected: 1:3; Actual: 4; input name: b"


def test_layout_conversion_accepts_nhwc_for_an_nchw_model(client: Client) -> None:
    assert list(client.metadata("nhwc").inputs[0].shape) == [1, 4, 4, 3]
    nhwc = np.random.default_rng(0).random((1, 4, 4, 3), dtype=np.float32)
    np.testing.assert_allclose(client.infer("nhwc", {"image": nhwc})["sums"], nhwc.sum(axis=(1, 2)), rtol=1e-5)


def test_server_is_ready_although_some_models_failed(client: Client) -> None:
    from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb

    assert client.kserve.ServerReady(pb.ServerReadyRequest()).ready
    assert client.states("dummy") == {1: "AVAILABLE", 2: "AVAILABLE"}
    assert not client.kserve.ModelReady(pb.ModelReadyRequest(name="gpu")).ready


def test_invalid_config_at_start_is_one_line_and_exit_1(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"model_config_list": [{"config": {"name": "m", "base_path": "m", "nireq": "2"}}]}')
    result = subprocess.run(
        [sys.executable, "-m", "ovms_grpc", "--config_path", str(config), "--port", str(free_port())],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("ovms-grpc: error:")]
    assert lines == [
        f'ovms-grpc: error: {config}: model_config_list[0].config.nireq: expected a non-negative integer, got "2"'
    ]


def test_config_path_excludes_model_flags(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ovms_grpc", "--config_path", str(tmp_path / "c.json"), "--nireq", "2", "--port", "9"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 64
    assert "Model parameters in CLI are exclusive with the config file: --nireq" in result.stderr


def test_auto_shape_reloads_the_version_for_the_request_shape(client: Client) -> None:
    assert list(client.metadata("auto_shape").inputs[0].shape) == [1, 10]
    for shape in ([3, 10], [2, 7], [1, 10]):
        data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
        np.testing.assert_array_equal(client.infer("auto_shape", {"b": data})["a"], data + 1)
        assert list(client.metadata("auto_shape").inputs[0].shape) == shape


def test_auto_batch_changes_only_the_batch_dimension(client: Client) -> None:
    np.testing.assert_array_equal(client.infer("auto_batch", {"b": np.ones((5, 10), np.float32)})["a"], 2)
    assert list(client.metadata("auto_batch").inputs[0].shape) == [5, 10]
    with pytest.raises(grpc.RpcError) as info:
        client.infer("auto_batch", {"b": np.ones((5, 11), np.float32)})
    assert info.value.details() == "Invalid input shape - Expected: (5,10); Actual: (5,11); input name: b"


def test_auto_shape_that_cannot_fit_is_a_reshape_error(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as info:
        client.infer("auto_sum", {"image": np.ones((1, 3, 4), np.float32)})
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details().startswith("Model could not be reshaped with requested shape - ")
    assert "image" in info.value.details()
    sums = client.infer("auto_sum", {"image": np.ones((1, 3, 4, 4), np.float32)})["sums"]
    np.testing.assert_array_equal(sums, np.full((1, 3), 16.0))


def test_cache_dir_receives_compiled_blobs(server_factory, dummy_repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    server_factory("--model_path", str(dummy_repo), "--model_name", "dummy", "--cache_dir", str(cache))
    assert cache.is_dir() and any(cache.rglob("*.blob"))
