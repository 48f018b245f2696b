"""Validated server settings, built once by the CLI and passed in by constructor."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ovms_grpc.gateway_process import GatewaySettings
from ovms_grpc.models.config import ModelConfig

#: OVMS's default maximum gRPC message size (1 GiB), both directions.
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server process needs to start."""

    models: tuple[ModelConfig, ...] = ()
    """Models to serve (single-model and demo modes)."""
    config_path: Path | None = None
    """OVMS config.json to serve and watch instead of ``models``."""
    poll_seconds: float = 1.0
    """``--file_system_poll_wait_seconds``: config.json and version folders are rechecked this often; 0 = never."""
    cache_dir: str = ""
    """OpenVINO compiled-model cache directory (``--cache_dir``); empty = no cache."""
    port: int = 0
    """gRPC port (0 picks a free one; used by tests)."""
    bind_addresses: tuple[str, ...] = ("0.0.0.0",)
    """Addresses the gRPC server listens on (OVMS ``--grpc_bind_address``)."""
    grpc_workers: int = 1
    """OVMS ``--grpc_workers``; validated, and one grpc.aio server polls its queue on the event loop."""
    channel_arguments: tuple[tuple[str, int | str], ...] = field(default_factory=tuple)
    """Extra gRPC server options from ``--grpc_channel_arguments`` (they override the defaults)."""
    gateway: GatewaySettings | None = None
    """The REST gateway to run as a child process (``--rest_port``), if any."""
    metrics: tuple[str, ...] = ()
    """Metric families enabled from the command line (``--metrics_enable``, ``--metrics_list``)."""
    max_concurrent_rpcs: int = 0
    """``--grpc_max_concurrent_rpcs``: RPCs handled at once; past it gRPC answers RESOURCE_EXHAUSTED. 0 = unbounded."""
    max_queued_requests: int = 1024
    """Requests that may wait for a free infer request, per servable; past it: RESOURCE_EXHAUSTED."""
    exit_on_load_failure: bool = True
    """Single-model and demo modes stop with an error when a model cannot be served at all."""
    shutdown_grace_seconds: float = 5.0
    """How long in-flight RPCs may finish after SIGTERM."""

    def grpc_options(self) -> list[tuple[str, int | str]]:
        options: dict[str, int | str] = {
            "grpc.max_receive_message_length": DEFAULT_MAX_MESSAGE_BYTES,
            "grpc.max_send_message_length": DEFAULT_MAX_MESSAGE_BYTES,
            "grpc.so_reuseport": 0,
        }
        options.update(dict(self.channel_arguments))
        return list(options.items())
