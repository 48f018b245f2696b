"""The blocked-loop detector used by the component tests catches a real block."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.component.loop import SLOW_CALLBACK_SECONDS, run


def test_a_blocking_call_on_the_loop_fails_the_run() -> None:
    async def blocks() -> None:
        await asyncio.sleep(0)
        time.sleep(SLOW_CALLBACK_SECONDS + 0.1)  # the mistake the detector exists for

    with pytest.raises(AssertionError, match="the event loop was blocked"):
        run(blocks())


def test_waiting_off_the_loop_does_not() -> None:
    async def waits() -> int:
        await asyncio.to_thread(time.sleep, SLOW_CALLBACK_SECONDS + 0.1)
        await asyncio.sleep(SLOW_CALLBACK_SECONDS + 0.1)
        return 7

    assert run(waits()) == 7
