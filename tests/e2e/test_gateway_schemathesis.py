"""Property-based run of schemathesis against the live gateway's own OpenAPI document."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.server_process import ServerProcess

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_openapi_document_lists_the_routes(server_factory, demo_repo: Path) -> None:
    server: ServerProcess = server_factory("--config_path", str(demo_repo / "config.json"), rest=True)
    document = httpx.get(f"{server.rest_url}/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.")
    for path in ("/v2/health/ready", "/v2/models/{model}/versions/{version}/infer", "/v1/config", "/metrics"):
        assert path in document["paths"]


def test_schemathesis_finds_no_server_error_or_schema_violation(
    server_factory, demo_repo: Path, tmp_path: Path
) -> None:
    server: ServerProcess = server_factory("--config_path", str(demo_repo / "config.json"), "--metrics_enable",
                                           rest=True)  # fmt: skip
    st = shutil.which("st") or str(Path(sys.executable).parent / "st")
    result = subprocess.run(
        [st, "run", f"{server.rest_url}/openapi.json", "--checks", CHECKS, "--max-examples", "15",
         "--seed", "20261123", "--request-timeout", "30"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "generated" in result.stdout
