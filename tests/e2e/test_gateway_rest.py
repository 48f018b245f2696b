"""The REST gateway with httpx: KServe v2 REST (JSON and binary), /v1/config, errors, supervision."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests import models
from tests.server_process import REPO, ServerProcess, free_port, rest_ready

ROW = list(range(10))


@pytest.fixture(scope="module")
def server(server_factory, demo_repo: Path) -> ServerProcess:
    return server_factory("--config_path", str(demo_repo / "config.json"), rest=True)


@pytest.fixture()
def http(server: ServerProcess):
    with httpx.Client(base_url=server.rest_url, timeout=30) as client:
        yield client
        # the gateway and server still answer correctly after whatever the test sent
        answer = client.post("/v2/models/dummy/infer", json=infer_body([ROW]))
        assert answer.status_code == 200 and answer.json()["outputs"][0]["data"] == [v + 2.0 for v in ROW]


def infer_body(data, name: str = "b", shape=(1, 10), datatype: str = "FP32", **extra) -> dict:
    return {"inputs": [{"name": name, "shape": list(shape), "datatype": datatype, "data": data}], **extra}


def test_health_and_server_metadata(http: httpx.Client) -> None:
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200
    assert http.get("/v2").json() == {"name": "OpenVINO Model Server", "version": "0.1.0", "extensions": []}


def test_model_metadata_and_readiness(http: httpx.Client) -> None:
    meta = http.get("/v2/models/dummy").json()
    assert meta == {
        "name": "dummy",
        "versions": ["1", "2"],
        "platform": "OpenVINO",
        "inputs": [{"name": "b", "datatype": "FP32", "shape": [1, 10]}],
        "outputs": [{"name": "a", "datatype": "FP32", "shape": [1, 10]}],
    }
    assert http.get("/v2/models/dummy/versions/1").json()["name"] == "dummy"
    assert http.get("/v2/models/dummy/ready").status_code == 200
    assert http.get("/v2/models/dummy/versions/2/ready").status_code == 200
    answer = http.get("/v2/models/dummy/versions/9/ready")
    assert answer.status_code == 404 and "available versions: 1, 2" in answer.json()["error"]
    answer = http.get("/v2/models/nothing")
    assert answer.status_code == 404
    assert answer.json()["error"].startswith("Model with requested name is not found")


def test_json_infer_nested_and_flat(http: httpx.Client) -> None:
    nested = http.post("/v2/models/dummy/versions/1/infer", json=infer_body([ROW], id="r1")).json()
    assert nested == {
        "model_name": "dummy",
        "model_version": "1",
        "id": "r1",
        "outputs": [{"name": "a", "datatype": "FP32", "shape": [1, 10], "data": [v + 1.0 for v in ROW]}],
    }
    flat = http.post("/v2/models/dummy/infer", json=infer_body(ROW)).json()
    assert flat["model_version"] == "2" and flat["outputs"][0]["data"] == [v + 2.0 for v in ROW]


def test_binary_extension_both_ways(http: httpx.Client) -> None:
    data = np.arange(10, dtype=np.float32) * 1.5
    header = json.dumps({
        "inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "parameters": {"binary_data_size": 40}}],
        "outputs": [{"name": "a", "parameters": {"binary_data": True}}],
    }).encode()  # fmt: skip
    answer = http.post(
        "/v2/models/dummy/infer",
        content=header + data.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
    )
    assert answer.status_code == 200
    length = int(answer.headers["inference-header-content-length"])
    document = json.loads(answer.content[:length])
    assert document["outputs"][0]["parameters"] == {"binary_data_size": 40}
    np.testing.assert_array_equal(np.frombuffer(answer.content[length:], np.float32), data + 2)


def test_binary_output_for_all_outputs_with_request_parameter(http: httpx.Client) -> None:
    answer = http.post("/v2/models/dummy/infer", json=infer_body([ROW], parameters={"binary_data_output": True}))
    length = int(answer.headers["inference-header-content-length"])
    assert np.frombuffer(answer.content[length:], np.float32).tolist() == [v + 2.0 for v in ROW]


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"{not json", {}, 400, "The request is not valid JSON"),
        (b"[1, 2]", {}, 400, "Request body should be JSON object"),
        (b'{"inputs": []}', {}, 400, "Invalid JSON structure, missing inputs"),
        (b"{}", {"Inference-Header-Content-Length": "999"}, 400, "header exceeds actual payload length (999 > 2)"),
        (b"{}", {"Inference-Header-Content-Length": "-1"}, 400, "must be a non-negative integer"),
        (b"{}", {"Content-Type": "text/plain"}, 400, "Unsupported Content-Type 'text/plain'"),
    ],
)
def test_malformed_requests(http: httpx.Client, body: bytes, headers: dict, status: int, message: str) -> None:
    answer = http.post("/v2/models/dummy/infer", content=body, headers=headers)
    assert answer.status_code == status
    assert message in answer.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (infer_body(ROW[:3]), 400, "Expected: 10 values; Actual: 3 values; input name: b"),
        (infer_body([ROW], datatype="INT32"), 400, "Invalid input precision - Expected: FP32; Actual: INT32"),
        (infer_body(["x"] * 10), 400, "FP32 values expected; input: b"),
        (infer_body([ROW], name="c"), 400, "Missing input with specific name - Required input: b"),
        (infer_body([ROW], shape=(2, 5)), 400, "Invalid input batch size - Expected: 1; Actual: 2"),
    ],
)
def test_tensor_errors_match_grpc_messages(http: httpx.Client, body: dict, status: int, message: str) -> None:
    answer = http.post("/v2/models/dummy/infer", json=body)
    assert answer.status_code == status
    assert message in answer.json()["error"]


def test_binary_buffer_too_short(http: httpx.Client) -> None:
    header = json.dumps(
        {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "parameters": {"binary_data_size": 40}}]}
    ).encode()
    answer = http.post(
        "/v2/models/dummy/infer",
        content=header + b"\0" * 12,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert answer.status_code == 400
    assert "Received buffer size is smaller than binary_data_size parameter indicates" in answer.json()["error"]


def test_unknown_route_and_method(http: httpx.Client) -> None:
    answer = http.get("/v2/nowhere")
    assert answer.status_code == 400 and answer.json() == {"error": "Invalid request URL - /v2/nowhere"}
    answer = http.delete("/v2/models/dummy")
    assert answer.status_code == 406 and answer.json()["error"].startswith("Unsupported method")


def test_config_status_and_reload(http: httpx.Client) -> None:
    config = http.get("/v1/config").json()
    assert config["dummy"] == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        ]
    }
    assert config["resnet_like"]["model_version_status"][0]["state"] == "AVAILABLE"
    answer = http.post("/v1/config/reload")
    assert answer.status_code == 200 and answer.json() == config


def test_resnet_binary_infer_numbers(http: httpx.Client) -> None:
    image = np.random.default_rng(3).random((1, 3, 224, 224), dtype=np.float32)
    header = json.dumps({
        "inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32",
                    "parameters": {"binary_data_size": image.nbytes}}],
        "parameters": {"binary_data_output": True},
    }).encode()  # fmt: skip
    answer = http.post(
        "/v2/models/resnet_like/infer",
        content=header + image.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    length = int(answer.headers["inference-header-content-length"])
    scores = np.frombuffer(answer.content[length:], np.float32)
    assert scores.shape == (1000,) and abs(scores.sum() - 1) < 1e-3


def test_bytes_in_json(server_factory, tmp_path: Path) -> None:
    repo = models.save(models.build_identity_all_types(["BYTES", "INT64"]), tmp_path / "id")
    server = server_factory("--model_path", str(repo), "--model_name", "id", rest=True)
    body = {
        "inputs": [
            {"name": "in_BYTES", "shape": [1, 3], "datatype": "BYTES", "data": ["zażółć", "", "x"]},
            {"name": "in_INT64", "shape": [1, 3], "datatype": "INT64", "data": [1, -2, 3]},
        ]
    }
    outputs = httpx.post(f"{server.rest_url}/v2/models/id/infer", json=body, timeout=30).json()["outputs"]
    by_name = {o["name"]: o for o in outputs}
    assert by_name["out_BYTES"]["data"] == ["zażółć", "", "x"]
    assert by_name["out_INT64"]["data"] == [1, -2, 3]
    raw = b"".join(struct.pack("<I", len(v)) + v for v in (b"ab", b"c", b""))
    header = json.dumps({"inputs": [
        {"name": "in_BYTES", "shape": [1, 3], "datatype": "BYTES", "parameters": {"binary_data_size": len(raw)}},
        {"name": "in_INT64", "shape": [1, 3], "datatype": "INT64", "data": [0, 0, 0]},
    ]}).encode()  # fmt: skip
    answer = httpx.post(
        f"{server.rest_url}/v2/models/id/infer",
        content=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header))},
        timeout=30,
    )
    assert {o["name"]: o for o in answer.json()["outputs"]}["out_BYTES"]["data"] == ["ab", "c", ""]


def test_body_over_the_limit_is_413(server_factory, dummy_repo: Path) -> None:
    server = server_factory(
        "--model_path", str(dummy_repo), "--model_name", "dummy", "--rest_max_request_bytes", "300", rest=True
    )
    answer = httpx.post(
        f"{server.rest_url}/v2/models/dummy/infer", json=infer_body([[0.123456789] * 10] * 1), timeout=30
    )
    assert answer.status_code == 200
    answer = httpx.post(f"{server.rest_url}/v2/models/dummy/infer", content=b" " * 301, timeout=30)
    assert answer.status_code == 413 and "the limit is 300 bytes" in answer.json()["error"]


def test_gateway_alone_reports_503_while_server_is_down_and_recovers(dummy_repo: Path) -> None:
    grpc_port, http_port = free_port(), free_port()
    url = f"http://127.0.0.1:{http_port}"
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--grpc_target", f"127.0.0.1:{grpc_port}", "--port", str(http_port),
         "--bind_address", "127.0.0.1", "--log_level", "WARNING"], cwd=REPO,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"{url}/v2/health/live", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer.status_code == 503 and "unavailable" in answer.json()["error"]
        with ServerProcess("--model_path", str(dummy_repo), "--model_name", "dummy", port=grpc_port) as server:
            server.wait_ready()
            deadline = time.monotonic() + 30
            while not rest_ready(url) and time.monotonic() < deadline:
                time.sleep(0.1)
            answer = httpx.post(f"{url}/v2/models/dummy/infer", json=infer_body(ROW), timeout=10)
            assert answer.status_code == 200
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(10)


def test_supervised_gateway_is_restarted_and_stopped_with_the_server(server_factory, dummy_repo: Path) -> None:
    server = server_factory("--model_path", str(dummy_repo), "--model_name", "dummy", "--port", "0", rest=True, port=0)
    children = subprocess.run(["pgrep", "-P", str(server.process.pid), "-f", "gateway"], capture_output=True, text=True)
    (first,) = children.stdout.split()
    subprocess.run(["kill", "-9", first], check=True)
    deadline = time.monotonic() + 30
    second = ""
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["pgrep", "-P", str(server.process.pid), "-f", "gateway"], capture_output=True, text=True
        )
        second = found.stdout.strip()
        if second and second != first and rest_ready(server.rest_url):
            break
        time.sleep(0.1)
    assert second and second != first
    answer = httpx.post(f"{server.rest_url}/v2/models/dummy/infer", json=infer_body(ROW), timeout=10)
    assert answer.status_code == 200  # --port 0: the gateway reaches the server over its private socket
    assert server.stop() == 0
    assert subprocess.run(["ps", "-p", second], capture_output=True).returncode != 0


def test_metrics_count_rest_and_grpc_requests(server_factory, dummy_repo: Path) -> None:
    server = server_factory("--model_path", str(dummy_repo), "--model_name", "dummy", "--metrics_enable", rest=True)
    for body in (infer_body(ROW), infer_body(ROW), infer_body(ROW, name="x")):
        httpx.post(f"{server.rest_url}/v2/models/dummy/infer", json=body, timeout=10)
    text = httpx.get(f"{server.rest_url}/metrics", timeout=10).text
    labels = 'api="KServe",interface="REST",method="ModelInfer",name="dummy",version="2"'
    assert f"ovms_requests_success{{{labels}}} 2" in text
    assert f"ovms_requests_fail{{{labels}}} 1" in text
    assert 'ovms_request_time_us_count{interface="REST",name="dummy",version="2"} 3' in text
    assert 'ovms_gateway_requests{method="POST",route="/v2/models/{model}/infer",code="400"} 1' in text


def test_metrics_off_by_default(http: httpx.Client) -> None:
    answer = http.get("/metrics")
    assert answer.status_code == 400 and "Metrics are not enabled" in answer.json()["error"]


def test_cors_headers_and_preflight(server_factory, dummy_repo: Path) -> None:
    server = server_factory("--model_path", str(dummy_repo), "--model_name", "dummy", "--allowed_origins",
                            "https://app.example", "--allow_credentials", rest=True)  # fmt: skip
    preflight = httpx.options(f"{server.rest_url}/v2/models/dummy/infer", headers={"Origin": "https://app.example"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert preflight.headers["access-control-allow-credentials"] == "true"
    answer = httpx.post(f"{server.rest_url}/v2/models/dummy/infer", json=infer_body(ROW), timeout=10)
    assert answer.status_code == 200 and answer.headers["access-control-allow-methods"] == "*"


def test_full_queue_is_429(server_factory, demo_repo: Path) -> None:
    server = server_factory("--model_path", str(demo_repo / "resnet_like"), "--model_name", "resnet_like",
                            "--nireq", "1", "--max_queued_requests", "0", rest=True)  # fmt: skip
    image = np.ones((1, 3, 224, 224), np.float32)
    header = json.dumps({"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32",
                                     "parameters": {"binary_data_size": image.nbytes}}]}).encode()  # fmt: skip

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(*(
                client.post(f"{server.rest_url}/v2/models/resnet_like/infer", content=header + image.tobytes(),
                            headers={"Inference-Header-Content-Length": str(len(header))})
                for _ in range(8)
            ))  # fmt: skip

    codes = [answer.status_code for answer in asyncio.run(burst())]
    assert set(codes) <= {200, 429} and 200 in codes and 429 in codes, codes


def test_status_says_when_the_gateway_is_down_until_it_serves_again(server_factory, dummy_repo: Path) -> None:
    """A gateway that dies and cannot get its port back is reported down, then serving once it can."""
    from tests.e2e.kserve_client import Client

    server = server_factory("--model_path", str(dummy_repo), "--model_name", "dummy", rest=True)
    client = Client(server.address)
    assert client.status().rest_gateway == f"serving on port {server.rest_port}"
    holder = None
    for _ in range(5):  # the test races the restart (0.2 s later) for the freed port; retry if it loses
        (pid,) = subprocess.run(
            ["pgrep", "-P", str(server.process.pid), "-f", "gateway"], capture_output=True, text=True
        ).stdout.split()
        subprocess.run(["kill", "-9", pid], check=True)
        deadline = time.monotonic() + 5
        while holder is None and time.monotonic() < deadline:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the gateway: TIME_WAIT is no obstacle
            try:
                sock.bind(("0.0.0.0", server.rest_port))
                sock.listen()
                holder = sock
            except OSError:
                sock.close()
                time.sleep(0.01)
        if holder is not None and subprocess.run(["ps", "-p", pid], capture_output=True).returncode != 0:
            break
    assert holder is not None
    try:
        deadline = time.monotonic() + 30
        while "address already in use" not in client.status().rest_gateway and time.monotonic() < deadline:
            time.sleep(0.05)
        state = client.status().rest_gateway
        assert state.startswith("down: cannot listen on") and "address already in use; restart" in state, state
    finally:
        holder.close()
    deadline = time.monotonic() + 30
    while not rest_ready(server.rest_url) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.status().rest_gateway == f"serving on port {server.rest_port}"
    assert httpx.post(f"{server.rest_url}/v2/models/dummy/infer", json=infer_body(ROW), timeout=10).status_code == 200
