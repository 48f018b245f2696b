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
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def health_status(address: str, service: str = "", timeout: float = 2.0) -> int | None:
    """The health status of ``service``, or None when the server does not answer."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout).status
        except grpc.RpcError:
            return None


class ServerProcess:
    """``python -m ovms_grpc ARGS --port <free>`` with its log captured to a file."""

    def __init__(self, *args: str, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.args = [
            sys.executable,
            "-m",
            "ovms_grpc",
            *args,
            "--port",
            str(self.port),
            "--grpc_bind_address",
            "127.0.0.1",
        ]
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
            if health_status(self.address, timeout=1.0) == health_pb2.HealthCheckResponse.SERVING:
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
