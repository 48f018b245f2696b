"""Run the REST gateway as a supervised child process (``--rest_port``), as OVMS serves both ports.

The gateway is restarted when it dies (with a growing delay if it keeps dying) and stopped
with the server. It reaches the server over gRPC: the server's TCP port, or a private Unix
socket when the server has no gRPC port of its own (``--port 0``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: A gateway that lived this long before dying is restarted at once; sooner, after a growing delay.
STABLE_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 5.0


@dataclass(frozen=True)
class GatewaySettings:
    port: int
    """HTTP port (``--rest_port``)."""
    bind_address: str = "0.0.0.0"
    """``--rest_bind_address``."""
    log_level: str = "INFO"
    max_request_bytes: int = 1024 * 1024 * 1024
    """Largest REST body; larger ones get 413."""
    cors: tuple[str, str, str, bool] = ("*", "*", "*", False)
    """Allowed origins, methods, headers, and whether credentials are allowed (OVMS's CORS flags)."""


class GatewaySupervisor:
    def __init__(self, settings: GatewaySettings, grpc_target: str) -> None:
        self._settings = settings
        self._target = grpc_target
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.restarts = 0

    def command(self) -> list[str]:
        s = self._settings
        return [
            sys.executable, "-m", "gateway",
            "--grpc_target", self._target,
            "--port", str(s.port),
            "--bind_address", s.bind_address,
            "--log_level", s.log_level,
            "--max_request_bytes", str(s.max_request_bytes),
            "--allowed_origins", s.cors[0], "--allowed_methods", s.cors[1], "--allowed_headers", s.cors[2],
            *(["--allow_credentials"] if s.cors[3] else []),
        ]  # fmt: skip

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        backoff = 0.2
        while not self._stopping:
            started = time.monotonic()
            self._process = await asyncio.create_subprocess_exec(*self.command())
            log.info("REST gateway started on port %d (pid %d)", self._settings.port, self._process.pid)
            code = await self._process.wait()
            if self._stopping:
                return
            self.restarts += 1
            lived = time.monotonic() - started
            backoff = 0.2 if lived > STABLE_SECONDS else min(backoff * 2, MAX_BACKOFF_SECONDS)
            log.error("REST gateway exited with %s after %.1f s; restarting in %.1f s", code, lived, backoff)
            await asyncio.sleep(backoff)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.returncode is None else None

    async def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
