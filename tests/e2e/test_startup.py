"""Start-up failures: one line on stderr, a non-zero exit code, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
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
        (["--model_name", "x", "--model_path", "/tmp"], "port and rest_port cannot both be unset: give --port N"),
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


def only_line(result: subprocess.CompletedProcess) -> str:
    """The whole of stderr, which must be one line (nothing was listening or loading yet)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0] in error_lines(result)
    return lines[0]


def test_missing_model_path_is_one_line_before_listening(tmp_path: Path) -> None:
    port = free_port()
    result = start("--model_path", str(tmp_path / "nowhere"), "--model_name", "m", "--port", str(port))
    assert result.returncode == 1
    assert only_line(result) == f"ovms-grpc: error: --model_path {tmp_path / 'nowhere'}: no such directory"


def test_missing_config_path_is_one_line(tmp_path: Path) -> None:
    result = start("--config_path", str(tmp_path / "config.json"), "--port", str(free_port()))
    assert result.returncode == 1
    assert only_line(result) == f"ovms-grpc: error: --config_path {tmp_path / 'config.json'}: no such file"


def test_bare_command_says_what_to_run() -> None:
    result = start()
    assert result.returncode == 64
    line = only_line(result)
    assert "nothing to serve" in line
    assert all(hint in line for hint in ("--demo", "--model_path DIR --model_name NAME", "--config_path", "--help"))


def test_misspelt_flag_suggests_the_nearest_one() -> None:
    result = start("--verison")
    assert result.returncode == 64
    assert only_line(result).endswith("unrecognized arguments: --verison (did you mean --version?)")


def test_help_groups_flags_shows_defaults_and_examples() -> None:
    result = start("--help")
    assert result.returncode == 0
    text = result.stdout
    assert text.startswith("usage: ovms-grpc (--demo | --model_path DIR --model_name NAME | --config_path FILE)")
    for group in ("what to serve:", "gRPC:", "REST gateway", "model options", "generative models", "metrics",
                  "logging and information:"):  # fmt: skip
        assert f"\n{group}" in text, group
    assert "(dummy, resnet_like, llm, embed, rerank)" in text
    assert "--max_queued_requests N" in text and "(default: 1024)" in text
    examples = text.split("\nexamples:\n", 1)[1]
    assert sum(line.startswith("  ovms-grpc ") for line in examples.splitlines()) == 3


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another process listens on."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_grpc_port_in_use_is_one_line_naming_the_cause(dummy_repo: Path, held_port: int) -> None:
    result = start("--model_path", str(dummy_repo), "--model_name", "dummy", "--port", str(held_port))
    assert result.returncode == 1
    assert only_line(result) == f"ovms-grpc: error: cannot listen on 0.0.0.0:{held_port}: address already in use"


def test_rest_port_in_use_fails_the_start(dummy_repo: Path, held_port: int) -> None:
    result = start(
        "--model_path", str(dummy_repo), "--model_name", "dummy", "--port", str(free_port()),
        "--rest_port", str(held_port),
    )  # fmt: skip
    assert result.returncode == 1
    assert only_line(result) == f"ovms-grpc: error: cannot listen on 0.0.0.0:{held_port}: address already in use"


def test_gateway_alone_on_a_port_in_use_is_one_line(held_port: int) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--grpc_target", "127.0.0.1:1", "--port", str(held_port)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"ovms-gateway: error: cannot listen on 0.0.0.0:{held_port}: address already in use"]


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
