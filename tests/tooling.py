"""Find the external (non-Python) tools the tests drive: grpcurl, grpc-health-probe, buf, ...

``scripts/install_tools.sh`` installs them into ``<repo>/.tools/bin`` (``scripts/test`` runs it and
puts that folder on PATH). ``tool_path(name)`` looks there first, then on PATH.

A missing tool is an error (the test fails, it does not skip), so CI cannot pass while silently
running fewer tests. For quick local runs without the tools, set ``OVMS_GRPC_ALLOW_MISSING_TOOLS=1``:
tests that need a missing tool are then skipped instead. It is ignored when ``CI`` is set to a true
value, so CI always fails on a missing tool.

    from tests.tooling import tool_path
    subprocess.run([tool_path("grpcurl"), "-plaintext", address, "list"], check=True)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"
ALLOW_MISSING_ENV = "OVMS_GRPC_ALLOW_MISSING_TOOLS"


class ToolMissingError(RuntimeError):
    """An external tool that the tests need is not installed."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def missing_tools_allowed() -> bool:
    """True when OVMS_GRPC_ALLOW_MISSING_TOOLS=1 and not under CI."""
    return _truthy(os.environ.get(ALLOW_MISSING_ENV)) and not _truthy(os.environ.get("CI"))


def find_tool(name: str) -> str | None:
    """Absolute path of the tool ``name`` (``.tools/bin`` first, then PATH), or None."""
    local = TOOLS_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def tool_path(name: str) -> str:
    """Absolute path of the tool ``name``.

    Raises ToolMissingError if it is not installed, or skips the calling test when
    OVMS_GRPC_ALLOW_MISSING_TOOLS=1 (outside CI).
    """
    found = find_tool(name)
    if found is not None:
        return found
    message = (
        f"{name!r} not found in {TOOLS_BIN} or on PATH: run scripts/install_tools.sh "
        f"(scripts/test does), or set {ALLOW_MISSING_ENV}=1 to skip tests that need it locally"
    )
    if missing_tools_allowed():
        pytest.skip(message)
    raise ToolMissingError(message)


PACKAGES = REPO_ROOT / ".tools" / "packages"


def package_path(name: str) -> Path:
    """A package file that scripts/install_tools.sh downloads (``.tools/packages/<name>.whl``).

    Missing, it is an error like a missing tool (skipped only with OVMS_GRPC_ALLOW_MISSING_TOOLS=1
    outside CI).
    """
    path = PACKAGES / f"{name}.whl"
    if path.is_file():
        return path
    message = f"{path} not found: run scripts/install_tools.sh (scripts/test does)"
    if missing_tools_allowed():
        pytest.skip(message)
    raise ToolMissingError(message)
