"""Server side of a generation engine: spawn and supervise the child, route its output per request.

The child's messages are read with ``loop.add_reader`` on the pipe (no thread, no polling);
commands go out through one sender thread, so a full pipe never blocks the event loop. Each
request has its own queue that its RPC drains. If the child dies, every running request fails
with UNAVAILABLE and the engine is started again, with a growing delay if it keeps dying.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from ovms_grpc.genai import engine_child
from ovms_grpc_client.errors import EngineDead, InvalidArgument, LoadFailed, Overloaded

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 300.0
MAX_RESTART_DELAY_SECONDS = 10.0


@dataclass(frozen=True)
class Delta:
    """New output of one choice of a request."""

    choice: int
    text: str
    tokens: int
    finish: str
    """"" while running, then "stop" or "length"."""
    logprobs: list[tuple[str, float | None]] | None = None
    """(token text, log probability) of this delta's tokens, when the request asked for them."""
    echo: bool = False
    """The echoed prompt (text and, when asked, logprobs), before the choice's first output."""


@dataclass(frozen=True)
class Admitted:
    """The engine took the request; its prompt has this many tokens."""

    prompt_tokens: int


class EngineProcess:
    def __init__(self, name: str, model_dir: str, device: str, options: dict[str, Any], max_queued: int = 1024) -> None:
        self.name = name
        self._model_dir = model_dir
        self._device = device
        self._options = options
        self._max_queued = max_queued
        self._ids = itertools.count(1)
        self._requests: dict[int, asyncio.Queue] = {}
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._alive = False
        self._stopping = False
        self.restarts = 0
        self._restart_task: asyncio.Task | None = None

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running_requests(self) -> int:
        return len(self._requests)

    async def start(self) -> None:
        """Spawn the child and wait until its pipeline is loaded."""
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=engine_child.main,
            args=(child, self._model_dir, self._device, self._options),
            name=f"engine-{self.name}",
            daemon=True,
        )
        process.start()
        child.close()
        ready = await loop.run_in_executor(None, parent.poll, START_TIMEOUT_SECONDS)
        if not ready:
            process.kill()
            raise LoadFailed(f"the generation engine did not start within {START_TIMEOUT_SECONDS:.0f} s")
        try:
            message = parent.recv()
        except EOFError:
            raise LoadFailed(f"the generation engine exited while loading (exit code {process.exitcode})") from None
        if message[0] != "ready":
            process.join(5)
            raise LoadFailed(f"the generation engine failed to load: {str(message[1]).splitlines()[0]}")
        self._conn, self._process, self._alive = parent, process, True
        self._outbox = queue.SimpleQueue()
        threading.Thread(target=self._send_loop, args=(parent, self._outbox), daemon=True).start()
        loop.add_reader(parent.fileno(), self._on_readable)
        log.info('engine of "%s" ready (pid %d)', self.name, process.pid)

    @staticmethod
    def _send_loop(conn: Connection, outbox: queue.SimpleQueue) -> None:
        while (message := outbox.get()) is not None:
            try:
                conn.send(message)
            except OSError:
                return

    def _on_readable(self) -> None:
        conn = self._conn
        assert conn is not None
        try:
            while conn.poll():
                message = conn.recv()
                if message[0] == "step":
                    for rid, choice, text, tokens, finish, logprobs in message[1]:
                        target = self._requests.get(rid)
                        if target is None:
                            continue
                        if finish == "prompt":
                            target.put_nowait(Admitted(tokens))
                        elif finish == "error":
                            target.put_nowait(InvalidArgument(text))
                        elif finish == "failed":
                            target.put_nowait(
                                EngineDead(f'the engine of model "{self.name}" failed ({text}); retry the request')
                            )
                        elif finish == "echo":
                            target.put_nowait(Delta(choice, text, 0, "", logprobs, echo=True))
                        else:
                            target.put_nowait(Delta(choice, text, tokens, finish, logprobs))
                elif message[0] == "fatal":
                    log.error('engine of "%s" failed: %s', self.name, message[1])
        except (EOFError, OSError):
            self._on_death()

    def _on_death(self) -> None:
        if not self._alive:
            return
        self._alive = False
        loop = asyncio.get_running_loop()
        if self._conn is not None:
            loop.remove_reader(self._conn.fileno())
            self._conn.close()
        self._outbox.put(None)
        code = self._process.exitcode if self._process is not None else None
        log.error('engine of "%s" died (exit code %s); %d requests fail', self.name, code, len(self._requests))
        for target in self._requests.values():
            target.put_nowait(EngineDead(f'the engine of model "{self.name}" stopped; retry the request'))
        if not self._stopping:
            self._restart_task = asyncio.create_task(self._restart())

    async def _restart(self) -> None:
        delay = 0.5
        while not self._stopping:
            started = time.monotonic()
            try:
                await self.start()
                self.restarts += 1
                return
            except Exception as exc:
                log.error('restarting the engine of "%s" failed: %s', self.name, exc)
            if time.monotonic() - started < 1:
                delay = min(delay * 2, MAX_RESTART_DELAY_SECONDS)
            await asyncio.sleep(delay)

    async def generate(self, kind: str, payload: Any, options: dict[str, Any]) -> AsyncIterator[Admitted | Delta]:
        """Run one request: yields Admitted, then Deltas until every choice finished.

        Leaving early (a cancelled RPC, a closed stream) aborts the request in the engine.
        """
        if not self._alive:
            raise EngineDead(f'the engine of model "{self.name}" is restarting; retry the request')
        if len(self._requests) >= self._max_queued:
            raise Overloaded(f'model "{self.name}": {len(self._requests)} requests are already generating or waiting')
        rid = next(self._ids)
        target: asyncio.Queue = asyncio.Queue()
        self._requests[rid] = target
        self._outbox.put(("add", rid, kind, payload, options))
        open_choices = max(options.get("n") or 1, 1)
        try:
            while open_choices:
                event = await target.get()
                if isinstance(event, Exception):
                    raise event
                if isinstance(event, Delta) and event.finish:
                    open_choices -= 1
                yield event
        finally:
            del self._requests[rid]
            if open_choices and self._alive:
                self._outbox.put(("abort", rid))

    async def stop(self) -> None:
        self._stopping = True
        if self._restart_task is not None:
            self._restart_task.cancel()
        if self._alive and self._conn is not None:
            asyncio.get_running_loop().remove_reader(self._conn.fileno())
            self._outbox.put(("stop",))
            self._outbox.put(None)
        self._alive = False
        process = self._process
        if process is not None:
            await asyncio.get_running_loop().run_in_executor(None, process.join, 5)
            if process.is_alive():
                process.kill()
