"""Printing tables and ratios, and writing a scenario's JSON result."""

from __future__ import annotations

import io
import json
import math
import os
import platform
import pstats
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import RESULTS_DIR
from bench.load import DISTURBED_CORES


def environment() -> dict[str, Any]:
    """What the figures depend on: CPU, core count, versions."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for package in ("openvino", "openvino-genai", "grpcio", "protobuf", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **versions,
    }


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, right-aligned numbers."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(header), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
    lines = ["  ".join(header.rjust(width) for header, width in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def server_args_note(server_args: Sequence[str]) -> str:
    """Tells, next to a table, that our server ran with extra arguments (which override the scenario's)."""
    return f"; our server with {' '.join(server_args)}" if server_args else ""


def ratio_line(label: str, value: float, target: float | None, rounds: Sequence[float], clean: Sequence[bool]) -> str:
    """The ratio against its target (if any), each round's (``*``: disturbed round) and the undisturbed ones'."""
    if target is None:
        line = f"{label}: {value:.3f}  (no target)"
    else:
        verdict = "ok" if value >= target else "BELOW TARGET"
        line = f"{label}: {value:.3f}  (target >= {target:.2f}: {verdict})"
    line += "  rounds: " + ", ".join(f"{r:.3f}" + ("" if ok else "*") for r, ok in zip(rounds, clean, strict=True))
    if not all(clean):
        undisturbed = clean_mean(rounds, clean)
        line += "  undisturbed: " + (f"{undisturbed:.3f}" if undisturbed is not None else "none")
    return line


def clean_mean(values: Sequence[float], clean: Sequence[bool]) -> float | None:
    """The mean of the values whose window was undisturbed, or None when none was."""
    kept = [value for value, ok in zip(values, clean, strict=True) if ok]
    return sum(kept) / len(kept) if kept else None


def warn_if_disturbed(other_cores: Sequence[float], steal_cores: Sequence[float]) -> None:
    """Say so when other processes or other guests took CPU during a measurement."""
    other, steal = max(other_cores, default=0.0), max(steal_cores, default=0.0)
    if other > DISTURBED_CORES:
        print(f"WARNING: other processes used up to {other:.2f} cores during a measurement; figures are disturbed")
    if steal > DISTURBED_CORES:
        print(f"WARNING: the hypervisor took up to {steal:.2f} cores (steal) during a measurement; figures are noisy")


def write_json(scenario: str, result: dict[str, Any], path: Path | None = None) -> Path:
    """Write ``result`` with the environment and a timestamp; returns the path."""
    path = path or RESULTS_DIR / f"{scenario}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "scenario": scenario,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": environment(),
        **result,
    }
    path.write_text(json.dumps(_finite(document), indent=2, default=str) + "\n")
    return path


def _finite(value: Any) -> Any:
    """NaN is not JSON: write null instead."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def print_profile(path: Path, limit: int = 30, process: str = "ovms-grpc") -> None:
    """The functions with the most own time in a cProfile output file of our server (or ``process``)."""
    stream = io.StringIO()
    stats = pstats.Stats(str(path), stream=stream)
    stats.sort_stats("tottime").print_stats(limit)
    print(f"\nprofile of {process}'s main thread, last run ({path}); the profiler slows the server,")
    print("so figures measured with --profile are not comparable:")
    print(stream.getvalue())
