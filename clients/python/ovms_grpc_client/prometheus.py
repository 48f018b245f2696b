"""Prometheus text exposition: counter, gauge and histogram families with OVMS's buckets.

Shared by the server's metrics and the REST gateway's own (no dependencies).
"""

from __future__ import annotations

import bisect
import math

#: OVMS's histogram buckets in microseconds: floor(10 * 1.8^i), i = 0..32.
BUCKETS_US = [math.floor(10 * 1.8**i) for i in range(33)]


class Value:
    """A counter or gauge series."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = value


class Distribution:
    """A histogram series over `BUCKETS_US`."""

    __slots__ = ("counts", "sum", "count")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS_US) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS_US, value)] += 1
        self.sum += value
        self.count += 1


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    # an empty value leaves the label out (graph rows of ovms_requests_success have no version)
    return ",".join(f'{n}="{escape(v)}"' for n, v in zip(names, values, strict=True) if v)


class Family:
    def __init__(self, name: str, kind: str, help_text: str, label_names: tuple[str, ...], enabled: bool) -> None:
        self.name = name
        self.kind = kind
        self.help = help_text
        self.label_names = label_names
        self.enabled = enabled
        self.series: dict[tuple[str, ...], Value | Distribution] = {}

    def _series(self, values: tuple[str, ...], make: type[Value] | type[Distribution]) -> Value | Distribution:
        """The series for ``values``; a disabled family hands out series that are never written out."""
        series = self.series.get(values)
        if series is None:
            series = make()
            if self.enabled:
                self.series[values] = series
        return series

    def value(self, *values: str) -> Value:
        series = self._series(values, Value)
        assert isinstance(series, Value)
        return series

    def distribution(self, *values: str) -> Distribution:
        series = self._series(values, Distribution)
        assert isinstance(series, Distribution)
        return series

    def render(self, lines: list[str]) -> None:
        if not self.enabled:
            return
        lines.append(f"# HELP {self.name} {self.help}")
        lines.append(f"# TYPE {self.name} {self.kind}")
        for values, series in sorted(self.series.items()):
            labels = _labels(self.label_names, values)
            if isinstance(series, Value):
                lines.append(f"{self.name}{{{labels}}} {_number(series.value)}")
                continue
            running = 0
            for bound, count in zip([*BUCKETS_US, "+Inf"], series.counts, strict=True):
                running += count
                lines.append(f'{self.name}_bucket{{{labels},le="{bound}"}} {running}')
            lines.append(f"{self.name}_sum{{{labels}}} {_number(series.sum)}")
            lines.append(f"{self.name}_count{{{labels}}} {series.count}")


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
