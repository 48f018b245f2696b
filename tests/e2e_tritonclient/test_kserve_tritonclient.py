"""KServe v2 over gRPC with the real tritonclient, as a user of OVMS would call it."""

from __future__ import annotations

import queue
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as tc
from tritonclient.utils import InferenceServerException

from tests import models
from tests.server_process import ServerProcess

ALL_POLICY = '{"all": {}}'


def dummy_infer(client: tc.InferenceServerClient, version: str = "", data: np.ndarray | None = None) -> np.ndarray:
    data = np.arange(10, dtype=np.float32).reshape(1, 10) if data is None else data
    tensor = tc.InferInput("b", list(data.shape), "FP32")
    tensor.set_data_from_numpy(data)
    return client.infer("dummy", [tensor], model_version=version).as_numpy("a")


def error_of(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value


@pytest.fixture(scope="module")
def dummy_server(server_factory, dummy_repo: Path) -> ServerProcess:
    return server_factory(
        "--model_path", str(dummy_repo), "--model_name", "dummy", "--model_version_policy", ALL_POLICY
    )


@pytest.fixture()
def client(dummy_server: ServerProcess):
    with tc.InferenceServerClient(dummy_server.address) as client:
        yield client
        # whatever the test did, the server still answers correctly right after
        np.testing.assert_array_equal(dummy_infer(client), np.arange(10, dtype=np.float32).reshape(1, 10) + 2)


def test_single_version_repository_served_with_ovms_flags(server_factory, tmp_path: Path) -> None:
    repo = models.save(models.build_add([1, 10], 1.0, "dummy"), tmp_path / "dummy", 1)
    server = server_factory("--model_path", str(repo), "--model_name", "dummy")
    with tc.InferenceServerClient(server.address) as client:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("dummy")
        np.testing.assert_array_equal(dummy_infer(client), np.arange(10, dtype=np.float32).reshape(1, 10) + 1)


def test_versions_default_is_highest_and_each_is_addressable(client) -> None:
    base = np.arange(10, dtype=np.float32).reshape(1, 10)
    np.testing.assert_array_equal(dummy_infer(client, "1"), base + 1)
    np.testing.assert_array_equal(dummy_infer(client, "2"), base + 2)
    np.testing.assert_array_equal(dummy_infer(client), base + 2)
    assert client.is_model_ready("dummy", "1") and client.is_model_ready("dummy", "2")


def test_default_policy_serves_only_latest_version(server_factory, dummy_repo: Path) -> None:
    server = server_factory("--model_path", str(dummy_repo), "--model_name", "dummy")
    with tc.InferenceServerClient(server.address) as client:
        np.testing.assert_array_equal(dummy_infer(client), np.arange(10, dtype=np.float32).reshape(1, 10) + 2)
        error = error_of(lambda: dummy_infer(client, "1"))
        assert error.status() == "StatusCode.NOT_FOUND"
        assert "version 1 not found (available versions: 2)" in error.message()


def test_metadata(client) -> None:
    meta = client.get_model_metadata("dummy", as_json=True)
    assert meta["name"] == "dummy"
    assert meta["versions"] == ["1", "2"]
    assert meta["platform"] == "OpenVINO"
    assert meta["inputs"] == [{"name": "b", "datatype": "FP32", "shape": ["1", "10"]}]
    assert meta["outputs"] == [{"name": "a", "datatype": "FP32", "shape": ["1", "10"]}]
    server = client.get_server_metadata(as_json=True)
    assert server["name"] == "OpenVINO Model Server" and server["version"]


def test_request_id_is_echoed(client) -> None:
    tensor = tc.InferInput("b", [1, 10], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 10), np.float32))
    result = client.infer("dummy", [tensor], request_id="req-42", model_version="1")
    response = result.get_response()
    assert response.id == "req-42"
    assert response.model_name == "dummy" and response.model_version == "1"


def test_unknown_model_is_not_found_and_named(client) -> None:
    tensor = tc.InferInput("b", [1, 10], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 10), np.float32))
    error = error_of(lambda: client.infer("missing_model", [tensor]))
    assert error.status() == "StatusCode.NOT_FOUND"
    assert error.message().startswith("Model with requested name is not found")
    assert '"missing_model"' in error.message()
    assert error_of(lambda: client.is_model_ready("missing_model")).status() == "StatusCode.NOT_FOUND"


def test_unknown_version_lists_available_ones(client) -> None:
    error = error_of(lambda: dummy_infer(client, "7"))
    assert error.status() == "StatusCode.NOT_FOUND"
    assert error.message() == (
        'Model with requested version is not found - model "dummy" version 7 not found (available versions: 1, 2)'
    )
    assert error_of(lambda: client.get_model_metadata("dummy", "7")).status() == "StatusCode.NOT_FOUND"


def test_missing_input_is_named(client) -> None:
    tensor = tc.InferInput("x", [1, 10], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 10), np.float32))
    error = error_of(lambda: client.infer("dummy", [tensor]))
    assert error.status() == "StatusCode.INVALID_ARGUMENT"
    assert error.message().startswith("Missing input with specific name - Required input: b")
    assert "unexpected: x" in error.message()


def test_extra_input_is_named(client) -> None:
    inputs = []
    for name in ("b", "extra"):
        tensor = tc.InferInput(name, [1, 10], "FP32")
        tensor.set_data_from_numpy(np.ones((1, 10), np.float32))
        inputs.append(tensor)
    error = error_of(lambda: client.infer("dummy", inputs))
    assert error.status() == "StatusCode.INVALID_ARGUMENT"
    assert error.message().startswith("Invalid number of inputs - Expected: 1; Actual: 2")
    assert "unexpected: extra" in error.message()


def test_wrong_datatype_says_expected_and_got(client) -> None:
    tensor = tc.InferInput("b", [1, 10], "INT32")
    tensor.set_data_from_numpy(np.ones((1, 10), np.int32))
    error = error_of(lambda: client.infer("dummy", [tensor]))
    assert error.status() == "StatusCode.INVALID_ARGUMENT"
    assert error.message() == "Invalid input precision - Expected: FP32; Actual: INT32; input name: b"


@pytest.mark.parametrize(
    ("shape", "kind", "detail"),
    [
        ([1, 10, 1], "Invalid number of shape dimensions", "Expected: (1,10); Actual: (1,10,1)"),
        ([2, 10], "Invalid input batch size", "Expected: 1; Actual: 2"),
        ([1, 5], "Invalid input shape", "Expected: (1,10); Actual: (1,5)"),
    ],
)
def test_wrong_shape_says_expected_and_got(client, shape: list[int], kind: str, detail: str) -> None:
    tensor = tc.InferInput("b", shape, "FP32")
    tensor.set_data_from_numpy(np.ones(shape, np.float32))
    error = error_of(lambda: client.infer("dummy", [tensor]))
    assert error.status() == "StatusCode.INVALID_ARGUMENT"
    assert error.message() == f"{kind} - {detail}; input name: b"


def test_every_datatype_round_trips(server_factory, tmp_path: Path) -> None:
    repo = models.save(models.build_identity_all_types(), tmp_path / "identity")
    server = server_factory("--model_path", str(repo), "--model_name", "identity")
    inputs, expected = [], {}
    for name, (_, dtype) in models.DATATYPES.items():
        if dtype is None:
            data = np.array([[b"alpha", b"", b"\x00\xffbin"], [b"x", b"yz", b"w"]], dtype=np.object_)
        elif dtype is np.bool_:
            data = np.array([[True, False, True], [False, False, True]])
        else:
            info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(np.float16)
            low, high = max(int(info.min), -(2**31)), min(int(info.max), 2**31 - 1)
            data = np.array([[low, high, 1], [0, 7, -1 if low < 0 else 3]], dtype=dtype)
        tensor = tc.InferInput(f"in_{name}", list(data.shape), name)
        tensor.set_data_from_numpy(data)
        inputs.append(tensor)
        expected[f"out_{name}"] = data
    with tc.InferenceServerClient(server.address) as client:
        result = client.infer("identity", inputs)
        for output, data in expected.items():
            got = result.as_numpy(output)
            assert got.dtype == data.dtype, output
            np.testing.assert_array_equal(got, data, err_msg=output)
        meta = client.get_model_metadata("identity", as_json=True)
        assert {i["name"]: i["datatype"] for i in meta["inputs"]}["in_BYTES"] == "BYTES"
        assert {i["name"]: i["shape"] for i in meta["inputs"]}["in_FP16"] == ["-1", "3"]


@pytest.mark.parametrize("shape", [[1, 1], [3, 7], [2, 33]])
def test_dynamic_shape_accepts_any_shape(server_factory, tmp_path_factory, shape: list[int]) -> None:
    repo = tmp_path_factory.getbasetemp() / "dynamic_add"
    if not repo.exists():
        models.save(models.build_add([-1, -1], 1.0), repo)
    server = server_factory("--model_path", str(repo), "--model_name", "add")
    data = np.random.default_rng(0).random(shape, dtype=np.float32)
    tensor = tc.InferInput("b", shape, "FP32")
    tensor.set_data_from_numpy(data)
    with tc.InferenceServerClient(server.address) as client:
        np.testing.assert_allclose(client.infer("add", [tensor]).as_numpy("a"), data + 1)


def test_ranged_shape_enforces_bounds(server_factory, tmp_path: Path) -> None:
    repo = models.save(models.build_add([(1, 4), 10], 5.0), tmp_path / "ranged")
    server = server_factory("--model_path", str(repo), "--model_name", "ranged")
    with tc.InferenceServerClient(server.address) as client:
        good = tc.InferInput("b", [3, 10], "FP32")
        good.set_data_from_numpy(np.zeros((3, 10), np.float32))
        np.testing.assert_array_equal(client.infer("ranged", [good]).as_numpy("a"), np.full((3, 10), 5.0))
        bad = tc.InferInput("b", [5, 10], "FP32")
        bad.set_data_from_numpy(np.zeros((5, 10), np.float32))
        error = error_of(lambda: client.infer("ranged", [bad]))
        assert error.status() == "StatusCode.INVALID_ARGUMENT"
        assert error.message() == "Invalid input batch size - Expected: 1:4; Actual: 5; input name: b"
        assert client.get_model_metadata("ranged", as_json=True)["inputs"][0]["shape"] == ["-1", "10"]


def test_outputs_filter_is_honoured(server_factory, tmp_path: Path) -> None:
    repo = models.save(models.build_two_outputs(), tmp_path / "two")
    server = server_factory("--model_path", str(repo), "--model_name", "two")
    x = np.array([[1, 2, 3, 4]], np.float32)
    tensor = tc.InferInput("x", [1, 4], "FP32")
    tensor.set_data_from_numpy(x)
    with tc.InferenceServerClient(server.address) as client:
        both = client.infer("two", [tensor])
        np.testing.assert_array_equal(both.as_numpy("double"), 2 * x)
        np.testing.assert_array_equal(both.as_numpy("square"), x * x)
        only = client.infer("two", [tensor], outputs=[tc.InferRequestedOutput("square")])
        assert [o.name for o in only.get_response().outputs] == ["square"]
        np.testing.assert_array_equal(only.as_numpy("square"), x * x)
        error = error_of(lambda: client.infer("two", [tensor], outputs=[tc.InferRequestedOutput("nope")]))
        assert error.status() == "StatusCode.INVALID_ARGUMENT" and "Required output: nope" in error.message()


def test_onnx_model_is_served(server_factory, tmp_path: Path) -> None:
    repo = models.write_onnx_add(tmp_path / "onnx_add", increment=3.0)
    server = server_factory("--model_path", str(repo), "--model_name", "dummy")
    with tc.InferenceServerClient(server.address) as client:
        np.testing.assert_array_equal(dummy_infer(client), np.arange(10, dtype=np.float32).reshape(1, 10) + 3)


def test_message_above_size_limit_is_resource_exhausted(server_factory, dummy_repo: Path) -> None:
    server = server_factory(
        "--model_path", str(dummy_repo), "--model_name", "dummy",
        "--grpc_channel_arguments", "grpc.max_receive_message_length=2000",
    )  # fmt: skip
    with tc.InferenceServerClient(server.address) as client:
        big = tc.InferInput("b", [1, 10], "FP32")
        big.set_data_from_numpy(np.ones((1, 10), np.float32))
        big._raw_content = b"\0" * 4000  # a payload past the limit
        error = error_of(lambda: client.infer("dummy", [big]))
        assert error.status() == "StatusCode.RESOURCE_EXHAUSTED"
        np.testing.assert_array_equal(dummy_infer(client), np.arange(10, dtype=np.float32).reshape(1, 10) + 2)


def test_stream_infer_answers_each_request_in_order(client) -> None:
    results: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        for index in range(5):
            data = np.full((1, 10), index, np.float32)
            tensor = tc.InferInput("b" if index != 2 else "wrong", [1, 10], "FP32")
            tensor.set_data_from_numpy(data)
            client.async_stream_infer("dummy", [tensor], request_id=str(index), model_version="1")
        received = [results.get(timeout=30) for _ in range(5)]
    finally:
        client.stop_stream()
    for index, (result, error) in enumerate(received):
        if index == 2:
            assert result is None and "Missing input with specific name" in str(error)
            continue
        assert error is None
        assert result.get_response().id == str(index)
        np.testing.assert_array_equal(result.as_numpy("a"), np.full((1, 10), index + 1, np.float32))


def test_demo_serves_dummy_and_resnet_like(server_factory) -> None:
    server = server_factory("--demo")
    with tc.InferenceServerClient(server.address) as client:
        np.testing.assert_array_equal(dummy_infer(client, "1"), np.arange(10, dtype=np.float32).reshape(1, 10) + 1)
        np.testing.assert_array_equal(dummy_infer(client, "2"), np.arange(10, dtype=np.float32).reshape(1, 10) + 2)
        image = np.random.default_rng(1).random((1, 3, 224, 224), dtype=np.float32)
        tensor = tc.InferInput("input", [1, 3, 224, 224], "FP32")
        tensor.set_data_from_numpy(image)
        scores = client.infer("resnet_like", [tensor]).as_numpy("output")
        assert scores.shape == (1, 1000)
        assert scores.sum() == pytest.approx(1.0, abs=1e-3) and (scores >= 0).all()
        meta = client.get_model_metadata("resnet_like", as_json=True)
        assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": ["1", "3", "224", "224"]}]
