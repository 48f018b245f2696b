"""What every served version is, whatever serves it: an OpenVINO model (``models.servable``), a
generation engine or an encoder (``genai``). The manager keeps one kind of version over this.

A request holds the version it was admitted to from lookup to its last byte (``hold``); retiring
a version waits for those holds to end (``release``), so an admitted request always finishes on
the version that admitted it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class BaseServable:
    """One served model version: its name, version, task and the in-flight count guarding its release."""

    #: "" for a model served through the inference APIs; text_generation, embeddings or rerank otherwise.
    task = ""

    def __init__(self, name: str, version: int) -> None:
        self.name = name
        self.version = version
        self._in_flight = 0
        self._drained: asyncio.Event | None = None

    @property
    def in_flight(self) -> int:
        """Requests holding this version now."""
        return self._in_flight

    @property
    def alive(self) -> bool:
        """Able to serve now (a generation engine that died and restarts is not)."""
        return True

    @property
    def properties(self) -> dict[str, str]:
        """What admin status shows about this version."""
        return {}

    def _enter(self) -> None:
        """Called as a hold begins (metrics)."""

    def _exit(self) -> None:
        """Called as a hold ends (metrics)."""

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep this version from being released while the block runs. Take it in the same step as
        the lookup (no ``await`` between), so a retirement cannot slip in between."""
        self._in_flight += 1
        self._enter()
        try:
            yield
        finally:
            self._in_flight -= 1
            self._exit()
            if self._in_flight == 0 and self._drained is not None:
                self._drained.set()

    async def drain(self) -> None:
        """Wait until the requests holding this version have finished."""
        while self._in_flight:
            self._drained = asyncio.Event()
            await self._drained.wait()

    async def close(self) -> None:
        """Free what the version holds (infer requests, an engine process); no request holds it now."""

    async def release(self) -> None:
        """Finish the requests holding this version, then free it."""
        await self.drain()
        await self.close()
