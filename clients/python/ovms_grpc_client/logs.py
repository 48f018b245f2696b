"""One log format for the server, its gateway child and the engine children, so one log reads as one."""

from __future__ import annotations

import logging
import sys

FORMAT = "[%(asctime)s][%(process)d][%(name)s][%(levelname)s] %(message)s"
LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR")


def python_level(level: str) -> int:
    """OVMS's level names as logging levels (TRACE is DEBUG; unknown names are INFO)."""
    return getattr(logging, "DEBUG" if level == "TRACE" else level, logging.INFO)


def configure(level: str) -> None:
    logging.basicConfig(level=python_level(level), format=FORMAT, stream=sys.stderr)
    logging.getLogger("gguf").setLevel(logging.WARNING)  # the demo's LLM builder is chatty at INFO
