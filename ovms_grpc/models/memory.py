"""Giving the memory of an unloaded model back to the operating system."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _trim() -> Any:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


def return_freed_memory() -> None:
    """glibc keeps freed heap in the arena of the thread that freed or allocated it (models are
    compiled and their infer requests made in loader threads), so without this a process's RSS stays
    near its peak after an unload. A no-op where the C library has no ``malloc_trim``. Takes a few
    milliseconds: call it off the event loop."""
    trim = _trim()
    if trim is not None:
        trim(0)
