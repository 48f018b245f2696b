"""The Python client and the REST gateway install without OpenVINO, and work so installed: the client
against a live server, the gateway (``ovms-gateway --grpc_target``) in front of a server elsewhere.

Installs into a fresh virtual environment from the package registry (pip's cache makes it quick
after the first run).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.server_process import REPO, ServerProcess, free_port, rest_ready

HEAVY = ("openvino", "openvino-genai", "openvino-tokenizers", "opencv-python-headless", "opencv-python")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("standalone")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    # pip builds a local project in its folder (build/, *.egg-info): build copies, not the work tree
    for source in ("clients/python", "gateway"):
        shutil.copytree(REPO / source, root / source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    return root / "venv"


def pip(venv: Path, *args: str) -> None:
    command = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=venv.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def installed(venv: Path) -> set[str]:
    listing = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return {line.split("==")[0].lower() for line in listing.splitlines() if line}


@pytest.fixture(scope="module")
def server(server_factory) -> ServerProcess:
    return server_factory("--demo")


def test_client_alone_installs_without_openvino_and_infers(venv: Path, server: ServerProcess) -> None:
    pip(venv, "./clients/python[numpy]")
    packages = installed(venv)
    assert "ovms-grpc-client" in packages and not packages & set(HEAVY), packages
    assert not packages & {"starlette", "uvicorn"}, "the client needs no web framework"
    code = (
        "import numpy as np\n"
        "from ovms_grpc_client import Client\n"
        f"with Client({server.address!r}) as client:\n"
        "    print(client.infer('dummy', {'b': np.arange(10, dtype=np.float32).reshape(1, 10)}, version=1)['a'])\n"
    )
    result = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[[ 1.  2.  3.  4.  5.  6.  7.  8.  9. 10.]]"


def test_gateway_installs_without_openvino_and_serves_a_remote_server(venv: Path, server: ServerProcess) -> None:
    pip(venv, "./clients/python", "./gateway")
    packages = installed(venv)
    assert "ovms-grpc-gateway" in packages and not packages & set(HEAVY), packages
    port = free_port()
    gateway = subprocess.Popen(
        [str(venv / "bin" / "ovms-gateway"), "--grpc_target", server.address, "--port", str(port),
         "--bind_address", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not rest_ready(url):
            assert gateway.poll() is None, gateway.stderr.read() if gateway.stderr else ""
            assert time.monotonic() < deadline, "the standalone gateway did not become ready"
            time.sleep(0.1)
        body = {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "data": list(range(10))}]}
        answer = httpx.post(f"{url}/v2/models/dummy/versions/2/infer", json=body, timeout=30)
        assert answer.status_code == 200 and answer.json()["outputs"][0]["data"] == [v + 2.0 for v in range(10)]
        assert httpx.get(f"{url}/v2/models/nope", timeout=30).status_code == 404
        chat = OpenAI(base_url=f"{url}/v3", api_key="unused").chat.completions.create(
            model="llm", messages=[{"role": "user", "content": "hi"}], max_tokens=4, extra_body={"ignore_eos": True}
        )
        assert chat.usage is not None and chat.usage.completion_tokens == 4
    finally:
        gateway.terminate()
        gateway.wait(30)
