"""Model version policies: which of the versions found are served."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VersionPolicy:
    """OVMS ``model_version_policy``: ``all``, ``latest`` (``num_versions``) or ``specific`` (``versions``)."""

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: Sequence[int]) -> list[int]:
        ordered = sorted(available)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[-self.num_versions :]

    @classmethod
    def from_json(cls, value: Any) -> VersionPolicy:
        """Parse the OVMS JSON form; raises ValueError with what was expected."""
        if not isinstance(value, dict) or len(value) != 1:
            raise ValueError('expected exactly one of {"all": {}}, {"latest": {...}}, {"specific": {...}}')
        ((kind, body),) = value.items()
        if not isinstance(body, dict):
            raise ValueError(f"{kind}: expected an object")
        if kind == "all":
            if body:
                raise ValueError("all: expected an empty object")
            return cls("all")
        if kind == "latest":
            unknown = set(body) - {"num_versions"}
            num = body.get("num_versions", 1)
            if unknown or not isinstance(num, int) or isinstance(num, bool) or num < 1:
                raise ValueError('latest: expected {"num_versions": <integer >= 1>}')
            return cls("latest", num_versions=num)
        if kind == "specific":
            versions = body.get("versions")
            if (
                set(body) != {"versions"}
                or not isinstance(versions, list)
                or not versions
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in versions)
            ):
                raise ValueError('specific: expected {"versions": [<integers >= 1>]}')
            return cls("specific", versions=tuple(versions))
        raise ValueError(f"unknown policy {kind!r}; expected all, latest or specific")
