"""Run component tests on an asyncio loop in debug mode and fail if a callback blocks it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

#: A callback holding the loop longer than this is reported by asyncio debug mode.
SLOW_CALLBACK_SECONDS = 0.25


class _SlowCallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing") and "took" in message:
            self.records.append(message)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in debug mode; raises if any callback blocked the loop."""
    handler = _SlowCallbacks()
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.addHandler(handler)

    async def main() -> T:
        asyncio.get_running_loop().slow_callback_duration = SLOW_CALLBACK_SECONDS
        return await coro

    try:
        result = asyncio.run(main(), debug=True)
    finally:
        asyncio_log.removeHandler(handler)
    assert not handler.records, "the event loop was blocked:\n" + "\n".join(handler.records)
    return result
