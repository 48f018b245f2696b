"""Command line with OVMS's flag names and meanings; builds one `ServerConfig`.

Bad arguments print one line and exit with 64 (EX_USAGE), as OVMS does; a
model that cannot be served at start-up prints one line and exits with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from ovms_grpc import __version__
from ovms_grpc.devices import parse_plugin_config, validate_target_device
from ovms_grpc.gateway_process import GatewaySettings
from ovms_grpc.genai.graph import GRAPH_FILE, read_graph
from ovms_grpc.genai.parsers import REASONING_PARSERS, TOOL_PARSERS
from ovms_grpc.metrics import DEFAULT_FAMILIES, validate_families
from ovms_grpc.models.config import (
    MAX_DOCUMENTS,
    POOLING,
    TASKS,
    EncoderOptions,
    GenaiOptions,
    LoadOptions,
    ModelConfig,
)
from ovms_grpc.models.policy import VersionPolicy
from ovms_grpc.settings import ServerConfig
from ovms_grpc.shapes import parse_batch_size, parse_layouts, parse_shapes
from ovms_grpc_client import logs

T = TypeVar("T")

EX_USAGE = 64
LOG_LEVELS = logs.LEVELS


class UsageError(Exception):
    """Invalid command line; the message is shown as one line (exit 64)."""


class CannotServe(Exception):
    """The command line is valid but names something that is not there; one line, exit 1."""


EXAMPLES = """examples:
  ovms-grpc --demo --port 9000 --rest_port 8000
      the built-in demo (dummy, resnet_like, llm, embed, rerank): gRPC on 9000, REST and OpenAI /v3 on 8000
  ovms-grpc --model_path /models/resnet --model_name resnet --port 9000 --target_device CPU
      one model folder with numeric version folders (1/, 2/, ...)
  ovms-grpc --config_path /models/config.json --port 9000 --rest_port 8000
      every model of an OVMS config.json, reloaded when the file changes
"""

NOTHING_TO_SERVE = (  # OVMS's message, then what to run instead
    "Use either config_path or model_path with model_name - "
    "nothing to serve: run `ovms-grpc --demo` for the built-in demo, "
    "`ovms-grpc --model_path DIR --model_name NAME --port 9000` for one model, "
    "`ovms-grpc --config_path config.json --port 9000` for many, or `ovms-grpc --help`"
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default where it has a meaningful one; keeps the examples' layout."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34, width=110)

    def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
        return "N" if action.type is int else "VALUE"

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, "", argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            known = [option for action in self._actions for option in action.option_strings]
            for word in message.split(":", 1)[1].split():
                flag = word.split("=", 1)[0]
                close = difflib.get_close_matches(flag, known, n=1) if flag.startswith("-") else []
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ovms-grpc",
        usage="ovms-grpc (--demo | --model_path DIR --model_name NAME | --config_path FILE) [options]",
        description="gRPC-first, OVMS-compatible model server for OpenVINO.",
        epilog=EXAMPLES,
        formatter_class=_Formatter,
        allow_abbrev=False,
    )
    serve = parser.add_argument_group("what to serve")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="serve the built-in demo repository (dummy, resnet_like, llm, embed, rerank)",
    )
    serve.add_argument(
        "--export", metavar="DIR", help="with --demo: write the demo repository and its config.json to DIR"
    )
    serve.add_argument("--model_path", metavar="DIR", help="model folder with numeric version folders (1/, 2/, ...)")
    serve.add_argument("--model_name", metavar="NAME", help="name the model is served under")
    serve.add_argument("--config_path", metavar="FILE", help="OVMS config.json (exclusive with the model flags)")
    serve.add_argument(
        "--file_system_poll_wait_seconds", type=int, default=1, help="config.json and version folders recheck; 0 = off"
    )

    grpc_group = parser.add_argument_group("gRPC")
    grpc_group.add_argument(
        "--port", type=int, default=None, help="gRPC port (0 = off, as in OVMS; --demo defaults to 9000)"
    )
    grpc_group.add_argument(
        "--grpc_bind_address", default="0.0.0.0", metavar="ADDR[,ADDR]", help="comma-separated addresses to listen on"
    )
    grpc_group.add_argument("--grpc_workers", type=int, default=1, help="gRPC workers, 1..CPU count")
    grpc_group.add_argument(
        "--grpc_channel_arguments", default="", metavar="K=V,...",
        help="gRPC server options, e.g. grpc.max_receive_message_length=N",
    )  # fmt: skip
    grpc_group.add_argument(
        "--grpc_max_concurrent_rpcs", type=int, default=0,
        help="RPCs handled at once; RESOURCE_EXHAUSTED past it (0 = unbounded)",
    )  # fmt: skip
    grpc_group.add_argument(
        "--max_queued_requests", type=int, default=1024, help="requests that may wait per model version; 429 past it"
    )

    rest = parser.add_argument_group("REST gateway (KServe /v2, TFS /v1, OpenAI /v3)")
    rest.add_argument("--rest_port", type=int, default=0, help="REST port: starts the REST gateway (0 = off)")
    rest.add_argument(
        "--rest_bind_address", default="0.0.0.0", metavar="ADDR", help="address the REST gateway listens on"
    )
    rest.add_argument(
        "--rest_workers", type=int, help="accepted for OVMS compatibility (2..10000); the gateway is one process"
    )
    rest.add_argument("--rest_max_request_bytes", type=int, default=1024**3, help="largest body; 413 past it")
    rest.add_argument("--allowed_origins", default="*", help="CORS: allowed origins")
    rest.add_argument("--allowed_methods", default="*", help="CORS: allowed methods")
    rest.add_argument("--allowed_headers", default="*", help="CORS: allowed headers")
    rest.add_argument("--allow_credentials", action="store_true", help="CORS: allow credentials")

    model = parser.add_argument_group("model options (single model; config.json has them per model)")
    model.add_argument(
        "--target_device", help="CPU (the default), GPU[.N], NPU, AUTO[:...], HETERO:..., MULTI:..., BATCH:D(N)"
    )
    model.add_argument("--plugin_config", help='OpenVINO properties as JSON, e.g. {"PERFORMANCE_HINT":"LATENCY"}')
    model.add_argument("--nireq", type=int, help="infer requests per model version (0 = OpenVINO's optimal number)")
    model.add_argument(
        "--model_version_policy", help='JSON, e.g. {"latest":{"num_versions":2}} or {"all":{}} (default: latest 1)'
    )
    model.add_argument("--batch_size", help='first dimension of every input, or "auto"')
    model.add_argument("--shape", help='"auto", "(1,3,224,224)" with -1 or lo:hi dims, or {"input": "(...)"}')
    model.add_argument("--layout", help='"NHWC:NCHW" (client:model, adds a transpose), "NHWC", or {"input": "..."}')
    model.add_argument("--cache_dir", default="", help="OpenVINO compiled-model cache directory")

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

    metrics = parser.add_argument_group("metrics (Prometheus, at /metrics on the REST port)")
    metrics.add_argument("--metrics_enable", action="store_true", help="collect Prometheus metrics")
    metrics.add_argument("--metrics_list", help="comma-separated metric families (default: OVMS's default set)")

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

    other = parser.add_argument_group("logging and information")
    other.add_argument("--log_level", default="INFO", help="TRACE, DEBUG, INFO, WARNING or ERROR")
    other.add_argument("--version", action="store_true", help="print the server and OpenVINO versions and exit")
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


def graph_model(name: str, folder: Path) -> ModelConfig:
    """A generative model folder with OVMS's graph.pbtxt, configured as the graph says."""
    graph = validated("model_path", read_graph, folder)
    return ModelConfig(
        name, graph.model_dir, LoadOptions(target_device=graph.device), VersionPolicy(),
        task=graph.task, genai=graph.genai, encoder=graph.encoder,
    )  # fmt: skip


def build_config(args: argparse.Namespace) -> ServerConfig:
    """Validate the parsed flags the way OVMS does and build the server settings."""
    _check(args.log_level in LOG_LEVELS, "log_level should be one of: " + ", ".join(LOG_LEVELS))
    cores = os.cpu_count() or 1
    _check(1 <= args.grpc_workers <= cores, f"grpc_workers count should be from 1 to CPU core count : {cores}")
    _check(bool(args.demo or args.config_path or args.model_path or args.model_name), NOTHING_TO_SERVE)
    port = args.port if args.port is not None else (9000 if args.demo else 0)
    _check(0 <= port <= 65535 and 0 <= args.rest_port <= 65535, "port numbers must be between 0 and 65535")
    _check(
        port != 0 or args.rest_port != 0,
        "port and rest_port cannot both be unset: give --port N for gRPC and/or --rest_port N for REST",
    )
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
    _check(args.grpc_max_concurrent_rpcs >= 0, "grpc_max_concurrent_rpcs must be a non-negative integer")
    _check(args.file_system_poll_wait_seconds >= 0, "file_system_poll_wait_seconds must be a non-negative integer")
    sources = [bool(args.demo), bool(args.config_path), bool(args.model_path or args.model_name)]
    _check(sum(sources) <= 1, "Use either config_path or model_path with model_name")
    models: tuple[ModelConfig, ...] = ()
    config_path = None
    if args.config_path:
        given = [f"--{flag}" for flag in MODEL_FLAGS if getattr(args, flag) is not None]
        _check(not given, "Model parameters in CLI are exclusive with the config file: " + ", ".join(given))
        config_path = Path(args.config_path).resolve()
        if not config_path.is_file():
            what = "not a regular file" if config_path.exists() else "no such file"
            raise CannotServe(f"--config_path {args.config_path}: {what}")
    elif args.demo:
        from ovms_grpc import demo

        repository = demo.ensure_repository()
        models = tuple(
            model_config_from_flags(args, name, repository / name, VersionPolicy.from_json(default_policy))
            for name, default_policy in demo.DEMO_MODELS.items()
        ) + tuple(graph_model(name, repository / name) for name in demo.DEMO_GENERATIVE)
    else:
        _check(
            bool(args.model_path) and bool(args.model_name),
            "Use either config_path or model_path with model_name",
        )
        if not Path(args.model_path).is_dir():
            what = "is a file, not a model folder" if Path(args.model_path).exists() else "no such directory"
            raise CannotServe(f"--model_path {args.model_path}: {what}")
        models = (model_config_from_flags(args, args.model_name, Path(args.model_path), VersionPolicy()),)
        if not args.task and (Path(args.model_path) / GRAPH_FILE).is_file():
            models = (graph_model(args.model_name, Path(args.model_path)),)
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
        max_concurrent_rpcs=args.grpc_max_concurrent_rpcs,
        gateway=gateway,
        metrics=metrics,
        exit_on_load_failure=config_path is None,
    )


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
        logs.configure(args.log_level)
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
    except CannotServe as exc:
        print(f"ovms-grpc: error: {exc}", file=sys.stderr)
        return 1
    from ovms_grpc.server import StartupError, serve

    try:
        asyncio.run(serve(config))
    except StartupError as exc:
        print(f"ovms-grpc: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
