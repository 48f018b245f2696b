"""Run component tests on an asyncio loop in debug mode and fail if a callback blocks it.

A callback "blocks" when it holds the loop thread for longer than ``SLOW_CALLBACK_SECONDS`` of its
own: wall time minus the time the thread was runnable but waiting for a CPU (from the kernel's
``/proc/self/task/<tid>/schedstat``). On a loaded 2-core machine a cheap callback can be
descheduled for hundreds of milliseconds; that is the machine, not the code, and is not counted.
Time spent in a blocking call (a sleep, a blocking socket, inference on the loop) is counted.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: A callback holding the loop longer than this (not counting time descheduled) fails the test.
SLOW_CALLBACK_SECONDS = 0.25


class _SchedStat:
    """The calling thread's time spent waiting on a run queue, in seconds (0 where unsupported)."""

    def __init__(self) -> None:
        try:
            self._fd: int | None = os.open(f"/proc/self/task/{threading.get_native_id()}/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = None

    def waiting(self) -> float:
        if self._fd is None:
            return 0.0
        fields = os.pread(self._fd, 128, 0).split()
        return int(fields[1]) / 1e9

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


def _watch(records: list[str], loop_thread: int, stat: _SchedStat) -> Callable[[asyncio.Handle], None]:
    original = asyncio.Handle._run

    def timed_run(handle: asyncio.Handle) -> None:
        if threading.get_ident() != loop_thread:
            original(handle)
            return
        start, waited = time.perf_counter(), stat.waiting()
        try:
            original(handle)
        finally:
            wall = time.perf_counter() - start
            if wall >= SLOW_CALLBACK_SECONDS:
                held = wall - (stat.waiting() - waited)
                if held >= SLOW_CALLBACK_SECONDS:
                    records.append(f"{handle!r} held the loop {held:.3f} s ({wall:.3f} s wall)")

    return timed_run  # type: ignore[return-value]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in debug mode; raises if any callback blocked the loop."""
    records: list[str] = []
    original = asyncio.Handle._run
    stat = _SchedStat()

    async def main() -> T:
        asyncio.get_running_loop().slow_callback_duration = 3600.0  # measured by _watch instead
        return await coro

    asyncio.Handle._run = _watch(records, threading.get_ident(), stat)  # type: ignore[method-assign]
    try:
        result = asyncio.run(main(), debug=True)
    finally:
        asyncio.Handle._run = original  # type: ignore[method-assign]
        stat.close()
    assert not records, "the event loop was blocked:\n" + "\n".join(records)
    return result
