"""``target_device`` syntax and ``plugin_config`` parsing.

Whether a device exists is OpenVINO's call at compile time; this module
only rejects what can never be valid, with a message saying what was expected.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PLAIN = r"(?:CPU|GPU(?:\.\d+)?|NPU(?:\.\d+)?)"
_LIST = rf"{_PLAIN}(?:,{_PLAIN})*"
_PATTERNS = [
    re.compile(rf"^{_PLAIN}$"),
    re.compile(rf"^AUTO(?::{_LIST})?$"),
    re.compile(rf"^(?:HETERO|MULTI):{_LIST}$"),
    re.compile(rf"^BATCH:{_PLAIN}(?:\(\d+\))?$"),
]

EXPECTED_DEVICES = "CPU, GPU, GPU.N, NPU, AUTO, AUTO:d1,d2, HETERO:d1,d2, MULTI:d1,d2 or BATCH:DEVICE(N)"


def validate_target_device(device: str) -> str:
    """Return ``device`` if its syntax is valid; raise ValueError naming what is accepted."""
    if not any(pattern.match(device) for pattern in _PATTERNS):
        raise ValueError(f"target_device: {device!r} is not a valid device; expected {EXPECTED_DEVICES}")
    return device


def parse_plugin_config(text: str) -> dict[str, Any]:
    """``--plugin_config`` JSON: an object whose values are strings, numbers or booleans."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"plugin_config: not valid JSON ({exc.msg} at column {exc.colno})") from exc
    return validate_plugin_config(value)


def validate_plugin_config(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"plugin_config: expected a JSON object, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool):
            raise ValueError(f"plugin_config: {key} must be a string, number or boolean, got {type(item).__name__}")
    return dict(value)
