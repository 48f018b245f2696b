"""Model repositories: which numeric version folders a base path holds."""

from __future__ import annotations

from pathlib import Path

from ovms_grpc_client.errors import LoadFailed


def list_versions(base_path: Path) -> list[int]:
    """Positive integer sub-folders of ``base_path``, ascending; others are ignored (as OVMS does)."""
    if not base_path.is_dir():
        raise LoadFailed(f"model path {base_path} is not a readable directory")
    versions = [int(p.name) for p in base_path.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) > 0]
    return sorted(versions)


def version_dir(base_path: Path, version: int) -> Path:
    return base_path / str(version)
