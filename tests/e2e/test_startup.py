"""Start-up failures: one line on stderr, a non-zero exit code, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.server_process import REPO, free_port


def start(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ovms_grpc", *args], capture_output=True, text=True, timeout=120, cwd=REPO
    )


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("ovms-grpc: error:")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "9000"], "Use either config_path or model_path with model_name"),
        (["--model_name", "x", "--model_path", "/tmp"], "port and rest_port cannot both be unset"),
        (["--demo", "--port", "70000"], "port numbers must be between 0 and 65535"),
        (["--demo", "--grpc_workers", "999"], "grpc_workers count should be from 1 to CPU core count"),
        (["--demo", "--log_level", "LOUD"], "log_level should be one of: TRACE, DEBUG, INFO, WARNING, ERROR"),
        (["--demo", "--target_device", "TPU"], "target_device: 'TPU' is not a valid device"),
        (["--demo", "--plugin_config", "{bad"], "plugin_config: not valid JSON"),
        (["--demo", "--plugin_config", "[1]"], "plugin_config: expected a JSON object"),
        (["--demo", "--model_version_policy", '{"newest": {}}'], "unknown policy 'newest'"),
        (["--demo", "--nireq", "abc"], "argument --nireq: invalid int value"),
        (["--demo", "--no_such_flag"], "unrecognized arguments: --no_such_flag"),
    ],
)
def test_bad_arguments_exit_64_with_one_line(args: list[str], message: str) -> None:
    result = start(*args)
    assert result.returncode == 64
    lines = error_lines(result)
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_missing_model_path_exits_1(tmp_path: Path) -> None:
    result = start("--model_path", str(tmp_path / "nowhere"), "--model_name", "m", "--port", str(free_port()))
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert f'model "m": model path {tmp_path / "nowhere"} is not a readable directory' in line


def test_unreadable_model_exits_1(tmp_path: Path) -> None:
    version = tmp_path / "broken" / "1"
    version.mkdir(parents=True)
    (version / "model.xml").write_text("<net>not really</net>")
    result = start("--model_path", str(tmp_path / "broken"), "--model_name", "broken", "--port", str(free_port()))
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert 'model "broken": version 1: cannot read' in line and "model.xml" in line


def test_absent_device_exits_1_with_openvino_reason(dummy_repo: Path) -> None:
    result = start(
        "--model_path", str(dummy_repo), "--model_name", "dummy", "--target_device", "NPU", "--port", str(free_port())
    )
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "cannot compile" in line and "for NPU" in line


def test_version_flag() -> None:
    result = start("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("ovms-grpc ") and "OpenVINO" in result.stdout
