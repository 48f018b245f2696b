"""KServe v2 REST through the gateway with the real tritonclient.http, JSON and binary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.server_process import ServerProcess


@pytest.fixture(scope="module")
def server(server_factory, demo_repo: Path) -> ServerProcess:
    return server_factory("--config_path", str(demo_repo / "config.json"), rest=True)


@pytest.fixture()
def client(server: ServerProcess):
    client = httpclient.InferenceServerClient(server.rest_url.removeprefix("http://"))
    yield client
    client.close()


def test_health_and_metadata(client) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("dummy") and client.is_model_ready("dummy", "1")
    assert client.get_model_metadata("dummy")["versions"] == ["1", "2"]
    assert client.get_server_metadata()["name"] == "OpenVINO Model Server"


@pytest.mark.parametrize("binary", [False, True])
def test_dummy_versions(client, binary: bool) -> None:
    data = np.arange(10, dtype=np.float32).reshape(1, 10)
    tensor = httpclient.InferInput("b", [1, 10], "FP32")
    tensor.set_data_from_numpy(data, binary_data=binary)
    wanted = [httpclient.InferRequestedOutput("a", binary_data=binary)]
    np.testing.assert_array_equal(client.infer("dummy", [tensor], outputs=wanted).as_numpy("a"), data + 2)
    result = client.infer("dummy", [tensor], model_version="1", outputs=wanted, request_id="abc")
    np.testing.assert_array_equal(result.as_numpy("a"), data + 1)
    assert result.get_response()["id"] == "abc"


def test_resnet_like_binary(client) -> None:
    image = np.random.default_rng(7).random((1, 3, 224, 224), dtype=np.float32)
    tensor = httpclient.InferInput("input", [1, 3, 224, 224], "FP32")
    tensor.set_data_from_numpy(image, binary_data=True)
    scores = client.infer("resnet_like", [tensor]).as_numpy("output")
    assert scores.shape == (1, 1000) and scores.sum() == pytest.approx(1.0, abs=1e-3)


def test_errors_keep_their_codes(client) -> None:
    tensor = httpclient.InferInput("b", [1, 10], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 10), np.float32))
    with pytest.raises(InferenceServerException) as info:
        client.infer("dummy", [tensor], model_version="5")
    assert info.value.status() == "404" or "version 5 not found" in info.value.message()
    assert "available versions: 1, 2" in info.value.message()
    wrong = httpclient.InferInput("b", [1, 10], "INT32")
    wrong.set_data_from_numpy(np.ones((1, 10), np.int32))
    with pytest.raises(InferenceServerException) as info:
        client.infer("dummy", [wrong])
    assert "Invalid input precision - Expected: FP32; Actual: INT32; input name: b" in info.value.message()
