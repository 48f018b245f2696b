"""--pull / --source_model against a local stand-in of the Hugging Face hub, and config management
(--add_to_config, --remove_from_config, --list_models), then serving what they wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from openai import OpenAI

from tests.server_process import REPO

TOKEN = "secret"


class Hub:
    """The two hub endpoints a pull uses: ``GET /api/models/{repo}`` (siblings) and
    ``GET /{repo}/resolve/main/{file}``; ``OpenVINO/private-llm`` wants ``Authorization: Bearer secret``."""

    def __init__(self, repos: dict[str, dict[str, bytes]]) -> None:
        self.repos = repos
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                hub.requests.append(self.path)
                parts = self.path.strip("/").split("/")
                if parts[:2] == ["api", "models"]:
                    repo, file = "/".join(parts[2:4]), None
                else:
                    repo, file = "/".join(parts[:2]), "/".join(parts[4:])
                if repo not in hub.repos:
                    return self._answer(404, b'{"error": "Repository not found"}')
                if "private" in repo and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401, b'{"error": "Invalid credentials"}')
                files = hub.repos[repo]
                if file is None:
                    siblings = [{"rfilename": name} for name in sorted(files)]
                    return self._answer(200, json.dumps({"id": repo, "siblings": siblings}).encode())
                if file not in files:
                    return self._answer(404, b"Entry not found")
                return self._answer(200, files[file])

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def hub(llm_dir: Path) -> Iterator[Hub]:
    files = {p.relative_to(llm_dir).as_posix(): p.read_bytes() for p in llm_dir.rglob("*") if p.is_file()}
    files.pop("graph.pbtxt", None)
    stand_in = Hub(
        {
            "OpenVINO/tiny-llm": files,
            "OpenVINO/private-llm": files,
            "someone/pytorch-only": {"config.json": b"{}", "model.safetensors": b"\0"},
        }
    )
    yield stand_in
    stand_in.server.shutdown()


def ovms(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ovms_grpc", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def hub_env(hub: Hub, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "OVMS_MODEL_REPOSITORY_PATH")}
    return {**env, "HF_ENDPOINT": hub.url, **extra}


def test_pull_then_add_to_config_then_serve(hub: Hub, llm_dir: Path, tmp_path: Path, server_factory) -> None:
    repository = tmp_path / "models"
    done = ovms(
        "--pull", "--source_model", "OpenVINO/tiny-llm", "--model_repository_path", str(repository),
        "--task", "text_generation", "--tool_parser", "hermes3", "--cache_size", "1", env=hub_env(hub),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = repository / "OpenVINO" / "tiny-llm"
    for source in llm_dir.iterdir():
        if source.name != "graph.pbtxt":
            assert (folder / source.name).read_bytes() == source.read_bytes()
    graph = (folder / "graph.pbtxt").read_text()
    assert 'tool_parser: "hermes3"' in graph and "HttpLLMCalculator" in graph
    pulls = len(hub.requests)
    again = ovms("--pull", "--source_model", "OpenVINO/tiny-llm", "--model_repository_path", str(repository),
                 env=hub_env(hub))  # fmt: skip
    assert again.returncode == 0 and len(hub.requests) == pulls  # already there: nothing downloaded

    config = repository / "config.json"
    added = ovms("--add_to_config", "--config_path", str(config), "--model_name", "tiny", "--model_path", str(folder))
    assert added.returncode == 0, added.stderr
    assert json.loads(config.read_text())["model_config_list"] == [
        {"config": {"name": "tiny", "base_path": str(folder)}}
    ]
    listed = ovms("--list_models", "--model_repository_path", str(repository))
    assert listed.returncode == 0 and listed.stdout.split() == ["OpenVINO/tiny-llm"]

    server = server_factory("--config_path", str(config), rest=True)
    client = OpenAI(base_url=f"{server.rest_url}/v3", api_key="unused", max_retries=0)
    answer = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    assert answer.usage.completion_tokens == 3
    server.stop()

    removed = ovms("--remove_from_config", "--config_path", str(config), "--model_name", "tiny")
    assert removed.returncode == 0 and json.loads(config.read_text())["model_config_list"] == []
    missing = ovms("--remove_from_config", "--config_path", str(config), "--model_name", "tiny")
    assert missing.returncode == 1 and 'no model named "tiny"' in missing.stderr


def test_source_model_without_pull_downloads_and_serves(hub: Hub, tmp_path: Path, server_factory) -> None:
    server = server_factory(
        "--source_model", "OpenVINO/private-llm", "--model_repository_path", str(tmp_path),
        env={"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN}, rest=True,
    )  # fmt: skip
    client = OpenAI(base_url=f"{server.rest_url}/v3", api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list()] == ["OpenVINO/private-llm"]
    answer = client.completions.create(model="OpenVINO/private-llm", prompt="hello", max_tokens=2)
    assert answer.usage.completion_tokens == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--source_model", "someone/pytorch-only"], 1, "has no OpenVINO IR (openvino_model.xml)"),
        (["--source_model", "OpenVINO/private-llm"], 1, "HTTP 401 unauthorized (set HF_TOKEN)"),
        (["--source_model", "OpenVINO/nothing"], 1, "HTTP 404 not found"),
        (["--source_model", "not-a-repo-id"], 1, "source_model must be ORG/NAME"),
        ([], 64, "--pull needs --source_model"),
    ],
)
def test_pull_failures_say_why(hub: Hub, tmp_path: Path, args: list[str], code: int, message: str) -> None:
    done = ovms("--pull", "--model_repository_path", str(tmp_path), *args, env=hub_env(hub))
    assert done.returncode == code and message in done.stderr, done.stderr
    assert not any(path.is_file() for path in tmp_path.rglob("*"))  # nothing half-downloaded is left


def test_config_management_usage_errors(tmp_path: Path) -> None:
    config = str(tmp_path / "config.json")
    for args, message in (
        (["--add_to_config", "--config_path", config], "--add_to_config needs --config_path and --model_name"),
        (["--add_to_config", "--config_path", config, "--model_name", "m"], "needs --model_path or"),
        (["--remove_from_config", "--config_path", config, "--model_name", "m", "--model_path", "x"], "not allowed"),
        (["--list_models"], "--list_models needs --model_repository_path"),
        (["--add_to_config", "--pull", "--config_path", config], "cannot be used with --pull or --task"),
    ):
        done = ovms(*args)
        assert done.returncode == 64 and message in done.stderr, (args, done.stderr)
