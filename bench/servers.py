"""Command lines for the servers the scenarios start, and the demo repository they read."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench import procs


def export_demo(directory: Path, log_dir: Path, root: Path) -> Path:
    """Write the built-in demo repository to ``directory`` (``python -m ovms_grpc --demo --export``)."""
    argv = procs.python_module("ovms_grpc", "--demo", "--export", str(directory))
    procs.run("export-demo", argv, log_dir, timeout=300, root=root)
    return directory


def ovms_grpc_argv(
    port: int,
    model_path: Path,
    model_name: str,
    *,
    target_device: str = "CPU",
    plugin_config: Mapping[str, str] | None = None,
    nireq: int = 0,
    extra: Sequence[str] = (),
    profile_to: Path | None = None,
) -> list[str]:
    """Our server on 127.0.0.1:port serving one model, optionally under cProfile (written at SIGTERM)."""
    args = [
        "--model_path", str(model_path),
        "--model_name", model_name,
        "--port", str(port),
        "--grpc_bind_address", "127.0.0.1",
        "--target_device", target_device,
    ]  # fmt: skip
    if plugin_config:
        args += ["--plugin_config", json.dumps(dict(plugin_config))]
    if nireq:
        args += ["--nireq", str(nireq)]
    args += list(extra)
    if profile_to is not None:
        return procs.python_module("cProfile", "-o", str(profile_to), "-m", "ovms_grpc", *args)
    return procs.python_module("ovms_grpc", *args)


def ovms_grpc_config_argv(
    port: int,
    config_path: Path,
    *,
    rest_port: int = 0,
    poll_seconds: int = 1,
    extra: Sequence[str] = (),
    profile_to: Path | None = None,
) -> list[str]:
    """Our server on 127.0.0.1:port serving a config.json, with its REST gateway on 127.0.0.1:rest_port if given."""
    args = [
        "--config_path", str(config_path),
        "--port", str(port),
        "--grpc_bind_address", "127.0.0.1",
        "--file_system_poll_wait_seconds", str(poll_seconds),
    ]  # fmt: skip
    if rest_port:
        args += ["--rest_port", str(rest_port), "--rest_bind_address", "127.0.0.1"]
    args += list(extra)
    if profile_to is not None:
        return procs.python_module("cProfile", "-o", str(profile_to), "-m", "ovms_grpc", *args)
    return procs.python_module("ovms_grpc", *args)


def write_config(path: Path, models: Mapping[str, Mapping[str, object]]) -> Path:
    """Write an OVMS config.json serving ``models`` (name -> config keys besides the name), atomically.

    The file is written next to ``path`` and renamed over it, so a server polling it
    never reads half a file.
    """
    document = {"model_config_list": [{"config": {"name": name, **config}} for name, config in models.items()]}
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(document, indent=2) + "\n")
    staging.replace(path)
    return path


def echo_argv(port: int, model_name: str, model_version: str, output: str, shape: Sequence[int]) -> list[str]:
    """The bare grpc.aio KServe server answering like ``model_name``."""
    return procs.python_module(
        "bench.echo_server",
        "--port", str(port),
        "--model_name", model_name,
        "--model_version", model_version,
        "--output", output,
        "--shape", ",".join(str(dim) for dim in shape),
    )  # fmt: skip
