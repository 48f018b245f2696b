"""Shared fixtures: model repositories built in code once per session, server processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import models
from tests.server_process import ServerProcess


@pytest.fixture(scope="session")
def dummy_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models.write_dummy_repository(tmp_path_factory.mktemp("repo") / "dummy")


@pytest.fixture(scope="session")
def demo_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ovms_grpc import demo

    return demo.write_repository(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def server_factory() -> Iterator[Callable[..., ServerProcess]]:
    """Start servers (ready, waited through gRPC health) and stop them all at the end of the session."""
    started: list[ServerProcess] = []

    def start(*args: str, wait: bool = True, **kwargs: object) -> ServerProcess:
        server = ServerProcess(*args, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server.wait_ready() if wait else server

    yield start
    for server in started:
        server.stop()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave tests/e2e_tritonclient out unless it is all this run collects.

    tritonclient and our generated KServe stubs cannot share a process (both
    register `inference.*` in protobuf's default pool); scripts/test runs that
    folder in a pytest process of its own.
    """
    if collection_path.name != "e2e_tritonclient":
        return None
    requested = [Path(arg.split("::")[0]).resolve() for arg in config.args]
    folder = collection_path.resolve()
    only_tritonclient = requested and all(folder == p or folder in p.parents for p in requested)
    return None if only_tritonclient else True


@pytest.fixture(scope="session")
def llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight LLM (OVMS-style folder), built in code."""
    from ovms_grpc.genai.fixtures import build_llm

    return build_llm(tmp_path_factory.mktemp("genai") / "llm")


@pytest.fixture(scope="session")
def encoder_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny embedding and cross-encoder rerank models, built in code."""
    from ovms_grpc.genai.fixtures import build_embedding, build_rerank

    root = tmp_path_factory.mktemp("encoders")
    return {"embedding": build_embedding(root / "embedding"), "rerank": build_rerank(root / "rerank")}
