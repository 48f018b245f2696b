"""README's examples work as pasted (against a demo server), with the real grpcurl and grpc-health-probe."""

from __future__ import annotations

import base64
import json
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from tests.server_process import REPO, ServerProcess
from tests.tooling import tool_path


def readme_block(name: str) -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(rf"<!-- example: {name} -->\n```\w+\n(.*?)```", text, re.S)
    assert match, f"README has no example block {name!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def demo_server(server_factory) -> ServerProcess:
    return server_factory("--demo")


def test_readme_tritonclient_example(demo_server: ServerProcess) -> None:
    code = readme_block("tritonclient").replace("localhost:9000", demo_server.address)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "True ['1', '2']"
    assert lines[1] == "[[ 2.  3.  4.  5.  6.  7.  8.  9. 10. 11.]]"
    assert lines[2] == "[[ 1.  2.  3.  4.  5.  6.  7.  8.  9. 10.]]"


def run_readme_command(line: str, address: str) -> subprocess.CompletedProcess:
    argv = shlex.split(line.replace("localhost:9000", address))
    argv[0] = tool_path(argv[0].removeprefix(".tools/bin/"))
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_readme_grpcurl_examples(demo_server: ServerProcess) -> None:
    listing, infer, probe = readme_block("grpcurl").strip().splitlines()
    result = run_readme_command(listing, demo_server.address)
    assert result.returncode == 0, result.stderr
    services = result.stdout.split()
    assert "inference.GRPCInferenceService" in services and "grpc.health.v1.Health" in services

    result = run_readme_command(infer, demo_server.address)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["model_name"] == "dummy" and answer["model_version"] == "1"
    values = np.frombuffer(base64.b64decode(answer["raw_output_contents"][0]), np.float32)
    np.testing.assert_array_equal(values, np.arange(10) + 1)

    result = run_readme_command(probe, demo_server.address)
    assert result.returncode == 0 and "status: SERVING" in result.stderr, result.stdout + result.stderr


def test_grpcurl_reports_errors_with_ovms_codes(demo_server: ServerProcess) -> None:
    request = json.dumps({"model_name": "dummy", "model_version": "3", "inputs": []})
    argv = [tool_path("grpcurl"), "-plaintext", "-d", request, demo_server.address,
            "inference.GRPCInferenceService/ModelInfer"]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Code: NotFound" in result.stderr
    assert "version 3 not found (available versions: 1, 2)" in result.stderr


def test_health_probe_fails_for_unknown_service(demo_server: ServerProcess) -> None:
    argv = [tool_path("grpc-health-probe"), f"-addr={demo_server.address}", "-service=no.such.Service"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "NotFound" in result.stderr or "NOT_FOUND" in result.stderr.upper()


def test_readme_rest_example(server_factory) -> None:
    server = server_factory("--demo", rest=True)
    lines = readme_block("rest").replace("\\\n", " ").strip().splitlines()
    assert lines[0].startswith("ovms-grpc --demo --port 9000 --rest_port 8000")
    outputs = []
    for line in lines[1:]:
        argv = shlex.split(line.replace("localhost:8000", server.rest_url.removeprefix("http://")))
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0].strip() == "200"
    assert json.loads(outputs[1])["versions"] == ["1", "2"]
    assert json.loads(outputs[2])["outputs"][0]["data"] == [float(v + 1) for v in range(10)]
    assert set(json.loads(outputs[3])) == {"dummy", "resnet_like", "llm"}


def test_readme_openai_example(server_factory) -> None:
    server = server_factory("--demo", rest=True)
    code = readme_block("openai").replace("127.0.0.1:8000", server.rest_url.removeprefix("http://"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "length 16"
    assert lines[1] and lines[1].isascii()
