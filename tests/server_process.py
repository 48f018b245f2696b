"""Start the real server as a subprocess on a free loopback port and wait for it through gRPC health.

Imports nothing from our generated KServe stubs, so tritonclient tests can use it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SERVING = health_pb2.HealthCheckResponse.SERVING


def rest_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1.0) as answer:
            return answer.status == 200
    except OSError:
        return False


def health_status(address: str, service: str = "", timeout: float = 2.0) -> int | None:
    """The health status of ``service``, or None when the server does not answer."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout).status
        except grpc.RpcError:
            return None


class ServerProcess:
    """``python -m ovms_grpc ARGS --port <free>`` with its log captured to a file.

    With ``rest=True`` the server also gets ``--rest_port <free>`` and ``wait_ready`` waits for
    the gateway's ``/v2/health/ready`` too.
    """

    def __init__(
        self, *args: str, port: int | None = None, env: dict[str, str] | None = None, rest: bool = False
    ) -> None:
        self.port = port if port is not None else free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.rest_port = free_port() if rest else 0
        self.rest_url = f"http://127.0.0.1:{self.rest_port}"
        extra = ["--rest_port", str(self.rest_port), "--rest_bind_address", "127.0.0.1"] if rest else []
        self.args = [
            sys.executable, "-m", "ovms_grpc", *args, *extra,
            "--port", str(self.port), "--grpc_bind_address", "127.0.0.1",
        ]  # fmt: skip
        self._log = tempfile.NamedTemporaryFile(prefix="ovms-grpc-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            self.args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )

    @property
    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def wait_ready(self, timeout: float = 120.0) -> ServerProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log}")
            grpc_ready = self.port == 0 or health_status(self.address, timeout=1.0) == SERVING
            if grpc_ready and (not self.rest_port or rest_ready(self.rest_url)):
                return self
            time.sleep(0.1)
        raise TimeoutError(f"server not SERVING after {timeout} s:\n{self.log}")

    def stop(self, timeout: float = 15.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
