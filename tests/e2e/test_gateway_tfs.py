"""TensorFlow Serving REST through the gateway: httpx for the JSON formats, and ovmsclient's HTTP client."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from ovmsclient import make_http_client
from PIL import Image

from tests import models
from tests.server_process import ServerProcess

ROW = list(range(10))


@pytest.fixture(scope="module")
def server(server_factory, tmp_path_factory: pytest.TempPathFactory, dummy_repo: Path) -> ServerProcess:
    root = tmp_path_factory.mktemp("tfs_rest")
    models.save(models.build_two_outputs(), root / "two")
    models.save(models.build_image_echo([-1, 6, 8, 3]), root / "image")
    models.save(models.build_identity_all_types(["BYTES", "INT64"]), root / "strings")
    models.write_config(root / "config.json", [
        {"name": "dummy", "base_path": str(dummy_repo), "model_version_policy": {"all": {}}},
        {"name": "two", "base_path": "two"},
        {"name": "image", "base_path": "image"},
        {"name": "strings", "base_path": "strings"},
    ])  # fmt: skip
    return server_factory("--config_path", str(root / "config.json"), rest=True)


@pytest.fixture()
def http(server: ServerProcess):
    with httpx.Client(base_url=server.rest_url, timeout=30) as client:
        yield client


def test_status_and_metadata(http: httpx.Client) -> None:
    assert http.get("/v1/models/dummy").json() == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        ]
    }
    assert [v["version"] for v in http.get("/v1/models/dummy/versions/1").json()["model_version_status"]] == ["1"]
    meta = http.get("/v1/models/dummy/versions/1/metadata").json()
    assert meta["modelSpec"]["name"] == "dummy" and meta["modelSpec"]["version"] == "1"
    signature = meta["metadata"]["signature_def"]["signatureDef"]["serving_default"]
    assert signature["inputs"]["b"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in signature["inputs"]["b"]["tensorShape"]["dim"]] == ["1", "10"]
    assert http.get("/v1/models/nope").status_code == 404


def test_row_and_column_formats(http: httpx.Client) -> None:
    plus_two = [float(v + 2) for v in ROW]
    assert http.post("/v1/models/dummy:predict", json={"instances": [ROW]}).json() == {"predictions": [plus_two]}
    assert http.post("/v1/models/dummy:predict", json={"instances": [{"b": ROW}]}).json() == {"predictions": [plus_two]}
    assert http.post("/v1/models/dummy:predict", json={"inputs": [ROW]}).json() == {"outputs": [plus_two]}
    answer = http.post("/v1/models/dummy/versions/1:predict", json={"inputs": {"b": [ROW]}, "signature_name": "x"})
    assert answer.json() == {"outputs": [[float(v + 1) for v in ROW]]}


def test_several_outputs_are_keyed_by_name(http: httpx.Client) -> None:
    x = [1.0, 2.0, 3.0, 4.0]
    rows = http.post("/v1/models/two:predict", json={"instances": [x]}).json()
    assert rows == {"predictions": [{"double": [2.0, 4.0, 6.0, 8.0], "square": [1.0, 4.0, 9.0, 16.0]}]}
    columns = http.post("/v1/models/two:predict", json={"inputs": {"x": [x]}}).json()
    assert columns == {"outputs": {"double": [[2.0, 4.0, 6.0, 8.0]], "square": [[1.0, 4.0, 9.0, 16.0]]}}


def test_b64_images_and_strings(http: httpx.Client) -> None:
    pixels = np.random.default_rng(9).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    answer = http.post("/v1/models/image:predict", json={"instances": [{"b64": encoded}, {"b64": encoded}]}).json()
    got = np.array(answer["predictions"])
    assert got.shape == (2, 6, 8, 3)
    np.testing.assert_array_equal(got[1], pixels[:, :, ::-1])  # BGR, as OVMS feeds models
    body = {"inputs": {"in_BYTES": [["abc", "", "żółw"]], "in_INT64": [[1, 2, 3]]}}
    outputs = http.post("/v1/models/strings:predict", json=body).json()["outputs"]
    assert outputs == {"out_BYTES": [["abc", "", "żółw"]], "out_INT64": [[1, 2, 3]]}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"instances": [ROW], "inputs": [ROW]}, 400, "Could not detect row or column format"),
        ({"signature_name": "x"}, 400, "Could not detect row or column format"),
        ({"instances": []}, 400, "Missing instances in row format"),
        ({"instances": [[0, 1], [2]]}, 400, "have different shapes"),
        ({"inputs": {"b": [["x"] * 10]}}, 400, "Input b takes numbers"),
        ({"inputs": {"b": [{"b64": "%%%"}]}}, 400, "Invalid base64 in input b"),
        ({"inputs": {"b": [ROW[:5]]}}, 400, "Invalid input shape - Expected: (1,10); Actual: (1,5); input name: b"),
        ([1, 2], 400, "Request body should be JSON object"),
    ],
)
def test_predict_errors(http: httpx.Client, body, status: int, message: str) -> None:
    answer = http.post("/v1/models/dummy:predict", json=body)
    assert answer.status_code == status
    assert message in answer.json()["error"]


def test_classify_is_not_served(http: httpx.Client) -> None:
    answer = http.post("/v1/models/dummy:classify", json={"examples": []})
    assert answer.status_code == 404 and "Requested REST resource not found" in answer.json()["error"]


def test_ovmsclient_http(server: ServerProcess) -> None:
    client = make_http_client(server.rest_url.removeprefix("http://"))
    data = np.arange(10, dtype=np.float32).reshape(1, 10)
    np.testing.assert_array_equal(client.predict({"b": data}, "dummy"), data + 2)
    np.testing.assert_array_equal(client.predict({"b": data}, "dummy", model_version=1), data + 1)
    assert client.get_model_status("dummy", 1) == {1: {"state": "AVAILABLE", "error_code": 0, "error_message": ""}}
    assert client.get_model_metadata("dummy")["inputs"] == {"b": {"dtype": "DT_FLOAT", "shape": [1, 10]}}
    from ovmsclient.tfs_compat.base.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError):
        client.predict({"b": data}, "dummy", model_version=9)
