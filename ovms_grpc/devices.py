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
        raise ValueError(f"{device!r} is not a valid device; expected {EXPECTED_DEVICES}")
    return device


def parse_plugin_config(text: str) -> dict[str, Any]:
    """``--plugin_config`` JSON: an object whose values are strings, numbers or booleans."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    return validate_plugin_config(value)


def validate_plugin_config(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(item, str | int | float | bool):
            raise ValueError(f"{key} must be a string, number or boolean, got {type(item).__name__}")
    return dict(value)


#: Property names the OVMS docs still show, mapped to current OpenVINO properties.
LEGACY_KEYS = {
    "CPU_THROUGHPUT_STREAMS": "NUM_STREAMS",
    "GPU_THROUGHPUT_STREAMS": "NUM_STREAMS",
    "CPU_THREADS_NUM": "INFERENCE_NUM_THREADS",
    "CPU_BIND_THREAD": "ENABLE_CPU_PINNING",
}
LEGACY_VALUES = {
    "CPU_THROUGHPUT_AUTO": "AUTO",
    "GPU_THROUGHPUT_AUTO": "AUTO",
    "CPU_THROUGHPUT_NUMA": "AUTO",
}


def normalize_plugin_config(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Map legacy names and values to current OpenVINO properties.

    Returns the properties to compile with and notes worth reporting (renames, and a
    stream count that overrides the one PERFORMANCE_HINT would choose, as OpenVINO does).
    """
    result: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in config.items():
        name = key.removeprefix("KEY_")
        name = LEGACY_KEYS.get(name, name)
        if isinstance(value, str):
            value = LEGACY_VALUES.get(value.removeprefix("KEY_"), value.removeprefix("KEY_"))
        if name != key:
            notes.append(f"{key} is read as {name}")
        if name in result and result[name] != value:
            raise ValueError(f"{name} is given twice with different values ({result[name]!r} and {value!r})")
        result[name] = value
    if "PERFORMANCE_HINT" in result and "NUM_STREAMS" in result:
        notes.append(
            f"NUM_STREAMS={result['NUM_STREAMS']} overrides the stream count of "
            f"PERFORMANCE_HINT={result['PERFORMANCE_HINT']} (OpenVINO applies the explicit value)"
        )
    return result, notes


def requires_static_shapes(device: str) -> bool:
    """NPU compiles static shapes only (also when it is one of several devices)."""
    return "NPU" in device
