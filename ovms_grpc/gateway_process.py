"""Run the REST gateway as a supervised child process (``--rest_port``), as OVMS serves both ports.

The first start is part of the server's start-up: the gateway reports over a pipe that it
listens (or why it cannot), and a gateway that cannot start fails the server's start. Later the
gateway is restarted when it dies (with a growing, bounded delay if it keeps dying; ``state``
says it is down meanwhile) and stopped with the server. It reaches the server over gRPC on a
private Unix socket.
"""

from __future__ import annotations

import asyncio
import logging
import os
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


class GatewayStartError(Exception):
    """The gateway could not start; the message is its reason, one line."""


class GatewaySupervisor:
    def __init__(self, settings: GatewaySettings, grpc_target: str) -> None:
        self._settings = settings
        self._target = grpc_target
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.restarts = 0
        self.state = "starting"
        """``serving on port N``, or why the REST side is down (shown in the server status)."""

    def command(self, ready_fd: int | None = None) -> list[str]:
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
            *(["--ready_fd", str(ready_fd)] if ready_fd is not None else []),
        ]  # fmt: skip

    async def _launch(self) -> str:
        """Start one gateway process; returns "" once it listens, else its reason for not starting."""
        read_fd, write_fd = os.pipe()
        try:
            self._process = await asyncio.create_subprocess_exec(*self.command(write_fd), pass_fds=(write_fd,))
        finally:
            os.close(write_fd)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        try:
            report = (await reader.read(4096)).decode(errors="replace").strip()  # the gateway closes it after one line
        finally:
            transport.close()
        if report == "ready":
            self.state = f"serving on port {self._settings.port}"
            log.info("REST gateway listening on port %d (pid %d)", self._settings.port, self._process.pid)
            return ""
        code = await self._process.wait()
        return report.removeprefix("error: ") or f"the REST gateway exited with {code} before listening"

    async def start(self) -> None:
        """Start the gateway and wait until it listens; GatewayStartError if it cannot."""
        reason = await self._launch()
        if reason:
            self.state = f"down: {reason}"
            raise GatewayStartError(reason)
        self._task = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        backoff = 0.2
        started = time.monotonic()
        while not self._stopping:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopping:
                return
            self.restarts += 1
            lived = time.monotonic() - started
            backoff = 0.2 if lived > STABLE_SECONDS else min(backoff * 2, MAX_BACKOFF_SECONDS)
            self.state = f"down: exited with {code}, restart {self.restarts} in {backoff:.1f} s"
            log.error("REST gateway exited with %s after %.1f s; restarting in %.1f s", code, lived, backoff)
            await asyncio.sleep(backoff)
            while not self._stopping:
                started = time.monotonic()
                reason = await self._launch()
                if not reason:
                    break
                self.restarts += 1
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                self.state = f"down: {reason}; restart {self.restarts} in {backoff:.1f} s"
                log.error("REST gateway cannot start: %s; retrying in %.1f s", reason, backoff)
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
