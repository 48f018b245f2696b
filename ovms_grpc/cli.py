"""Command line with OVMS's flag names and meanings; builds one `ServerConfig`.

Bad arguments print one line and exit with 64 (EX_USAGE), as OVMS does; a
model that cannot be served at start-up prints one line and exits with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from ovms_grpc import __version__
from ovms_grpc.devices import parse_plugin_config, validate_target_device
from ovms_grpc.gateway_process import GatewaySettings
from ovms_grpc.genai.encoders import MAX_DOCUMENTS, POOLING, EncoderOptions
from ovms_grpc.genai.graph import GRAPH_FILE, read_graph
from ovms_grpc.genai.parsers import REASONING_PARSERS, TOOL_PARSERS
from ovms_grpc.genai.servable import TASKS, GenaiOptions
from ovms_grpc.metrics import DEFAULT_FAMILIES, validate_families
from ovms_grpc.models.loader import LoadOptions
from ovms_grpc.models.manager import ModelConfig
from ovms_grpc.models.policy import VersionPolicy
from ovms_grpc.settings import ServerConfig
from ovms_grpc.shapes import parse_batch_size, parse_layouts, parse_shapes

T = TypeVar("T")

EX_USAGE = 64
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR")

log = logging.getLogger("ovms_grpc")


class UsageError(Exception):
    """Invalid command line; the message is shown as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ovms-grpc",
        description="gRPC-first, OVMS-compatible model server for OpenVINO.",
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("--version", action="store_true", help="print the server, OpenVINO versions and exit")
    add("--demo", action="store_true", help="serve the built-in demo repository (dummy, resnet_like)")
    add("--export", metavar="DIR", help="with --demo: write the demo repository (and config.json) to DIR and exit")
    add("--model_path", help="model directory with numeric version folders (1/, 2/, ...)")
    add("--model_name", help="name the model is served under")
    add("--port", type=int, default=None, help="gRPC port (OVMS default 0 = off; --demo defaults to 9000)")
    add("--rest_port", type=int, default=0, help="REST port: starts the REST gateway as a child process")
    add("--rest_bind_address", default="0.0.0.0", help="address the REST gateway listens on")
    add(
        "--rest_workers",
        type=int,
        help="accepted for OVMS compatibility (2..10000); the gateway is one asyncio process",
    )
    add("--allowed_origins", default="*", help="CORS: allowed origins on the REST port")
    add("--allowed_methods", default="*", help="CORS: allowed methods on the REST port")
    add("--allowed_headers", default="*", help="CORS: allowed headers on the REST port")
    add("--allow_credentials", action="store_true", help="CORS: allow credentials on the REST port")
    add("--rest_max_request_bytes", type=int, default=1024**3, help="largest REST request body (413 past it)")
    add("--grpc_bind_address", default="0.0.0.0", help="comma-separated addresses for the gRPC server")
    add("--grpc_workers", type=int, default=1, help="gRPC workers, 1..CPU count")
    add(
        "--grpc_channel_arguments",
        default="",
        help="k=v[,k=v] gRPC server options, e.g. grpc.max_receive_message_length=N",
    )
    add("--config_path", help="OVMS config.json with model_config_list (exclusive with the model flags)")
    add("--file_system_poll_wait_seconds", type=int, default=1, help="config.json/version poll interval; 0 = off")
    add("--cache_dir", default="", help="OpenVINO compiled-model cache directory")
    add(
        "--metrics_enable", action="store_true", help="collect Prometheus metrics (served at /metrics on the REST port)"
    )
    add("--metrics_list", help="comma-separated metric families to enable (default: OVMS's default set)")
    add("--max_queued_requests", type=int, default=1024, help="requests that may wait per model version (429 past)")
    model = parser.add_argument_group("single model (exclusive with --config_path)")
    model.add_argument(
        "--target_device", help="CPU (default), GPU[.N], NPU, AUTO[:...], HETERO:..., MULTI:..., BATCH:D(N)"
    )
    model.add_argument(
        "--plugin_config", help='JSON object of OpenVINO properties, e.g. {"PERFORMANCE_HINT":"LATENCY"}'
    )
    model.add_argument("--nireq", type=int, help="infer requests per model version (0 = OpenVINO's optimal number)")
    model.add_argument("--model_version_policy", help='JSON, e.g. {"latest":{"num_versions":2}} or {"all":{}}')
    model.add_argument("--batch_size", help='batch size (first dimension of every input) or "auto"')
    model.add_argument("--shape", help='"auto", "(1,3,224,224)" with -1 or lo:hi dims, or {"input": "(...)"}')
    genai = parser.add_argument_group("generative models (with --model_path and --model_name)")
    genai.add_argument("--task", choices=TASKS, help="serve a generative model folder (OVMS's --task)")
    genai.add_argument("--enable_prefix_caching", choices=("true", "false"), default="true", help="reuse KV cache")
    genai.add_argument("--cache_size", type=int, default=1, help="KV-cache size in GB")
    genai.add_argument("--max_num_seqs", type=int, default=256, help="sequences batched together at most")
    genai.add_argument("--max_num_batched_tokens", type=int, default=0, help="tokens per step at most (0 = auto)")
    genai.add_argument("--max_prompt_len", type=int, default=0, help="longest prompt in tokens (0 = model context)")
    genai.add_argument("--normalize", choices=("true", "false"), default="true", help="embeddings: L2-normalize")
    genai.add_argument("--pooling", choices=POOLING, default="CLS", help="embeddings: pooling of token vectors")
    genai.add_argument("--max_allowed_chunks", type=int, default=MAX_DOCUMENTS, help="rerank: documents per request")
    genai.add_argument("--tool_parser", help=f"tool-call parser for chat output: {', '.join(TOOL_PARSERS)}")
    genai.add_argument("--reasoning_parser", help=f"reasoning parser for chat output: {', '.join(REASONING_PARSERS)}")
    model.add_argument("--layout", help='"NHWC:NCHW" (client:model, adds a transpose), "NHWC", or {"input": "..."}')
    add("--log_level", default="INFO", help="TRACE, DEBUG, INFO, WARNING or ERROR")
    sources = parser.add_argument_group(
        "model sources and config management (no server is started, but for --source_model)"
    )
    sources.add_argument("--pull", action="store_true", help="download --source_model into the repository and exit")
    sources.add_argument(
        "--source_model", help="Hugging Face repository ORG/NAME with OpenVINO IR (HF_ENDPOINT, HF_TOKEN)"
    )
    sources.add_argument(
        "--model_repository_path", help="where models are pulled to and listed from (env OVMS_MODEL_REPOSITORY_PATH)"
    )
    sources.add_argument("--overwrite_models", action="store_true", help="download again a model already pulled")
    sources.add_argument("--list_models", action="store_true", help="list the servables of --model_repository_path")
    sources.add_argument("--add_to_config", action="store_true", help="add --model_name to --config_path and exit")
    sources.add_argument(
        "--remove_from_config", action="store_true", help="remove --model_name from --config_path and exit"
    )
    return parser


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise UsageError(message)


def validated(flag: str, parse: Callable[[Any], T], text: Any) -> T:
    """Run a parser for one flag; its ValueError becomes a usage error naming the flag."""
    try:
        return parse(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from exc


def parse_version_policy(text: str) -> VersionPolicy:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    return VersionPolicy.from_json(value)


def parse_channel_arguments(text: str) -> tuple[tuple[str, int | str], ...]:
    """OVMS ``--grpc_channel_arguments``: ``k=v,k=v``; values that parse as integers become integers."""
    result: list[tuple[str, int | str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        _check(bool(sep) and bool(key), f"grpc_channel_arguments: expected key=value, got {item!r}")
        try:
            result.append((key.strip(), int(value)))
        except ValueError:
            result.append((key.strip(), value.strip()))
    return tuple(result)


MODEL_FLAGS = ("batch_size", "shape", "layout", "nireq", "model_version_policy", "target_device", "plugin_config")


def model_config_from_flags(args: argparse.Namespace, name: str, base_path: Path, policy: VersionPolicy) -> ModelConfig:
    nireq = args.nireq or 0
    _check(nireq >= 0, "nireq must be a non-negative integer")
    device = args.target_device or "CPU"
    validated("target_device", validate_target_device, device)
    if args.model_version_policy:
        policy = validated("model_version_policy", parse_version_policy, args.model_version_policy)
    load = LoadOptions(
        target_device=device,
        plugin_config=validated("plugin_config", parse_plugin_config, args.plugin_config) if args.plugin_config else {},
        nireq=nireq,
        batch_size=validated("batch_size", parse_batch_size, args.batch_size),
        shapes=validated("shape", parse_shapes, args.shape),
        layouts=validated("layout", parse_layouts, args.layout),
    )
    return ModelConfig(name, base_path, load, policy)


def task_options(args: argparse.Namespace, plugin_config: dict[str, Any]) -> tuple[GenaiOptions, EncoderOptions]:
    """The generative options of the task flags (OVMS's task options)."""
    for flag in ("cache_size", "max_num_seqs", "max_num_batched_tokens", "max_prompt_len"):
        _check(getattr(args, flag) >= 0, f"{flag} must be a non-negative integer")
    _check(args.max_allowed_chunks > 0, "max_allowed_chunks must be a positive integer")
    options = validated("task options", lambda _: GenaiOptions(
        enable_prefix_caching=args.enable_prefix_caching == "true",
        cache_size=args.cache_size,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        max_prompt_len=args.max_prompt_len,
        tool_parser=None if args.tool_parser in (None, "none") else args.tool_parser,
        reasoning_parser=None if args.reasoning_parser in (None, "none") else args.reasoning_parser,
        plugin_config=plugin_config,
    ), None)  # fmt: skip
    encoder = EncoderOptions(
        normalize=args.normalize == "true", pooling=args.pooling, max_documents=args.max_allowed_chunks
    )
    return options, encoder


def source_command(args: argparse.Namespace) -> int | None:
    """--list_models, --add_to_config, --remove_from_config, --pull: run it and return the exit code.

    ``--source_model`` without ``--pull`` downloads, then points --model_path/--model_name at the
    download (None: go on and serve). Anything else: None.
    """
    from ovms_grpc import sources

    managing = [flag for flag in ("list_models", "add_to_config", "remove_from_config") if getattr(args, flag)]
    if not managing and not args.source_model and not args.pull:
        return None
    _check(len(managing) <= 1, "Use only one of --list_models, --add_to_config, --remove_from_config")
    repository: str = args.model_repository_path or os.environ.get("OVMS_MODEL_REPOSITORY_PATH") or ""
    if managing:
        _check(not args.pull and not args.task, f"--{managing[0]} cannot be used with --pull or --task")
        if repository and not args.config_path:
            args.config_path = str(Path(repository) / "config.json")
    try:
        if args.list_models:
            _check(bool(repository), "--list_models needs --model_repository_path")
            print("\n".join(sources.list_models(Path(repository))))
            return 0
        if args.add_to_config:
            _check(
                bool(args.config_path) and bool(args.model_name), "--add_to_config needs --config_path and --model_name"
            )
            _check(bool(args.model_path or repository), "--add_to_config needs --model_path or --model_repository_path")
            base_path = args.model_path or str(Path(repository) / args.model_name)
            sources.add_to_config(Path(args.config_path), args.model_name, base_path)
            print(f'added "{args.model_name}" ({base_path}) to {args.config_path}')
            return 0
        if args.remove_from_config:
            _check(
                bool(args.config_path) and bool(args.model_name),
                "--remove_from_config needs --config_path and --model_name",
            )
            _check(not args.model_path, "--model_path is not allowed with --remove_from_config")
            sources.remove_from_config(Path(args.config_path), args.model_name)
            print(f'removed "{args.model_name}" from {args.config_path}')
            return 0
        _check(bool(args.source_model), "--pull needs --source_model")
        _check(bool(repository), "--source_model needs --model_repository_path")
        _check(not args.model_path, "--model_path cannot be used with --source_model")
        plugin_config = validated("plugin_config", json.loads, args.plugin_config) if args.plugin_config else {}
        genai, encoder = task_options(args, plugin_config)
        target = sources.pull(
            args.source_model, Path(repository), task=args.task, device=args.target_device or "CPU",
            genai=genai, encoder=encoder, overwrite=args.overwrite_models,
        )  # fmt: skip
    except sources.SourceError as exc:
        print(f"ovms-grpc: error: {exc}", file=sys.stderr)
        return 1
    if args.pull:
        print(f"pulled {args.source_model} into {target}")
        return 0
    args.model_path, args.model_name = str(target), args.model_name or args.source_model
    return None


def build_config(args: argparse.Namespace) -> ServerConfig:
    """Validate the parsed flags the way OVMS does and build the server settings."""
    _check(args.log_level in LOG_LEVELS, "log_level should be one of: " + ", ".join(LOG_LEVELS))
    cores = os.cpu_count() or 1
    _check(1 <= args.grpc_workers <= cores, f"grpc_workers count should be from 1 to CPU core count : {cores}")
    port = args.port if args.port is not None else (9000 if args.demo else 0)
    _check(0 <= port <= 65535 and 0 <= args.rest_port <= 65535, "port numbers must be between 0 and 65535")
    _check(port != 0 or args.rest_port != 0, "port and rest_port cannot both be unset")
    _check(port != args.rest_port, "port and rest_port cannot have the same values")
    if args.rest_workers is not None:
        _check(args.rest_port != 0, "rest_workers is set but rest_port is not")
        _check(2 <= args.rest_workers <= 10000, "rest_workers count should be from 2 to 10000")
    metrics: tuple[str, ...] = ()
    if args.metrics_list:
        _check(args.metrics_enable, "metrics_enable setting is missing, required when metrics_list is provided")
    if args.metrics_enable:
        _check(args.rest_port != 0, "rest_port setting is missing, metrics are enabled on rest port")
        names = [n.strip() for n in (args.metrics_list or "").split(",") if n.strip()]
        metrics = validated("metrics_list", validate_families, names) if names else DEFAULT_FAMILIES
    gateway = None
    if args.rest_port:
        gateway = GatewaySettings(
            port=args.rest_port,
            bind_address=args.rest_bind_address,
            log_level=args.log_level,
            max_request_bytes=args.rest_max_request_bytes,
            cors=(args.allowed_origins, args.allowed_methods, args.allowed_headers, args.allow_credentials),
        )
    _check(args.max_queued_requests >= 0, "max_queued_requests must be a non-negative integer")
    _check(args.file_system_poll_wait_seconds >= 0, "file_system_poll_wait_seconds must be a non-negative integer")
    sources = [bool(args.demo), bool(args.config_path), bool(args.model_path or args.model_name)]
    _check(sum(sources) <= 1, "Use either config_path or model_path with model_name")
    models: tuple[ModelConfig, ...] = ()
    config_path = None
    if args.config_path:
        given = [f"--{flag}" for flag in MODEL_FLAGS if getattr(args, flag) is not None]
        _check(not given, "Model parameters in CLI are exclusive with the config file: " + ", ".join(given))
        config_path = Path(args.config_path).resolve()
    elif args.demo:
        from ovms_grpc import demo

        repository = demo.ensure_repository()
        models = tuple(
            model_config_from_flags(args, name, repository / name, VersionPolicy.from_json(default_policy))
            for name, default_policy in demo.DEMO_MODELS.items()
        ) + (ModelConfig(demo.DEMO_LLM, repository / demo.DEMO_LLM, task="text_generation"),)
    else:
        _check(
            bool(args.model_path) and bool(args.model_name),
            "Use either config_path or model_path with model_name",
        )
        models = (model_config_from_flags(args, args.model_name, Path(args.model_path), VersionPolicy()),)
        if not args.task and (Path(args.model_path) / GRAPH_FILE).is_file():
            graph = validated("model_path", read_graph, Path(args.model_path))
            models = (
                ModelConfig(args.model_name, graph.model_dir, LoadOptions(target_device=graph.device), VersionPolicy(),
                            task=graph.task, genai=graph.genai, encoder=graph.encoder),
            )  # fmt: skip
        if args.task:
            options, encoder = task_options(args, dict(models[0].load.plugin_config or {}))
            models = (replace(models[0], task=args.task, genai=options, encoder=encoder),)
    return ServerConfig(
        models=models,
        config_path=config_path,
        poll_seconds=float(args.file_system_poll_wait_seconds),
        cache_dir=args.cache_dir,
        port=port,
        bind_addresses=tuple(a.strip() for a in args.grpc_bind_address.split(",") if a.strip()),
        grpc_workers=args.grpc_workers,
        channel_arguments=parse_channel_arguments(args.grpc_channel_arguments),
        max_queued_requests=args.max_queued_requests,
        gateway=gateway,
        metrics=metrics,
        exit_on_load_failure=config_path is None,
    )


def configure_logging(level: str) -> None:
    python_level = "DEBUG" if level == "TRACE" else level
    logging.basicConfig(
        level=getattr(logging, python_level, logging.INFO),
        format="[%(asctime)s][%(process)d][%(name)s][%(levelname)s] %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("gguf").setLevel(logging.WARNING)  # the demo's LLM builder is chatty at INFO


def print_version() -> None:
    import openvino

    print(f"ovms-grpc {__version__}")
    print(f"OpenVINO backend {openvino.__version__}")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.version:
            print_version()
            return 0
        _check(args.export is None or args.demo, "--export needs --demo")
        configure_logging(args.log_level if args.log_level in LOG_LEVELS else "INFO")
        if args.export:
            from ovms_grpc import demo

            print(demo.write_repository(Path(args.export)))
            return 0
        done = source_command(args)
        if done is not None:
            return done
        config = build_config(args)
    except UsageError as exc:
        print(f"ovms-grpc: error: {exc}", file=sys.stderr)
        return EX_USAGE
    from ovms_grpc.server import StartupError, serve

    try:
        asyncio.run(serve(config))
    except StartupError as exc:
        log.error("%s", exc)
        print(f"ovms-grpc: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
