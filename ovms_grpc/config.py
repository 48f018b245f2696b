"""OVMS ``config.json``: read, validate with precise messages, turn into `ModelConfig`s.

Every object is closed (an unknown key rejects the file, as OVMS's schema
does), and every message names the file, the JSON path and what was expected:
``config.json: model_config_list[1].config.nireq: expected a non-negative integer, got "4"``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovms_grpc.devices import validate_plugin_config, validate_target_device
from ovms_grpc.genai.graph import GRAPH_FILE, read_graph
from ovms_grpc.metrics import validate_families
from ovms_grpc.models.config import LoadOptions, ModelConfig
from ovms_grpc.models.policy import VersionPolicy
from ovms_grpc.shapes import parse_batch_size, parse_layouts, parse_shapes

TOP_LEVEL_KEYS = {
    "model_config_list",
    "pipeline_config_list",
    "mediapipe_config_list",
    "custom_node_library_config_list",
    "custom_loader_config_list",
    "monitoring",
}
MODEL_KEYS = {
    "name",
    "base_path",
    "batch_size",
    "shape",
    "layout",
    "model_version_policy",
    "nireq",
    "target_device",
    "plugin_config",
    "allow_cache",
    "custom_loader_options",
    "graph_path",
    "subconfig",
    "stateful",
    "idle_sequence_cleanup",
    "low_latency_transformation",
    "max_sequence_number",
}
#: Keys OVMS accepts that this server does not implement yet: a config using them is refused, not half-served.
NOT_YET_SUPPORTED = {
    "pipeline_config_list": "DAG pipelines",
    "mediapipe_config_list": "MediaPipe graphs",
    "custom_node_library_config_list": "custom node libraries",
    "custom_loader_config_list": "custom loaders",
}


class ConfigError(ValueError):
    """An invalid config file; the message names file, JSON path and what was expected."""


@dataclass(frozen=True)
class MetricsConfig:
    """The ``monitoring.metrics`` block."""

    enable: bool = False
    metrics_list: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServingConfig:
    """What one config.json asks for."""

    models: tuple[ModelConfig, ...]
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    digest: str = ""
    """MD5 of the file's bytes, so polling reloads only on a real change (as OVMS)."""


def _describe(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else f'"{value}"'


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, expected: str, value: Any = None, *, got: bool = True) -> ConfigError:
        suffix = f", got {_describe(value)}" if got else ""
        return ConfigError(f"{self.source}: {path}: expected {expected}{suffix}")

    def obj(self, value: Any, path: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, "an object", value)
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ConfigError(
                f"{self.source}: {path}: unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(allowed))}"
            )
        for key in required:
            if key not in value:
                raise ConfigError(f"{self.source}: {path}: missing required key {key!r}")
        return value

    def typed(self, value: Any, path: str, check: Callable[[Any], bool], expected: str) -> Any:
        if not check(value):
            raise self.fail(path, expected, value)
        return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_config(text: str, source: str, base_dir: Path) -> ServingConfig:
    """Validate a config.json document; relative ``base_path``s resolve against ``base_dir``."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    reader = _Reader(source)
    top = reader.obj(document, "(top level)", TOP_LEVEL_KEYS, ("model_config_list",))
    for key, what in NOT_YET_SUPPORTED.items():
        if top.get(key):
            raise ConfigError(f"{source}: {key}: {what} are not supported by this server yet")
    entries = reader.typed(top["model_config_list"], "model_config_list", lambda v: isinstance(v, list), "an array")
    models = []
    names: set[str] = set()
    for index, entry in enumerate(entries):
        path = f"model_config_list[{index}]"
        wrapper = reader.obj(entry, path, {"config"}, ("config",))
        model = _parse_model(reader, wrapper["config"], f"{path}.config", base_dir)
        if model.name in names:
            raise ConfigError(f'{source}: {path}.config.name: model name "{model.name}" is used twice')
        names.add(model.name)
        models.append(model)
    metrics = _parse_monitoring(reader, top.get("monitoring"))
    return ServingConfig(tuple(models), metrics, hashlib.md5(text.encode()).hexdigest())


def _parse_model(reader: _Reader, value: Any, path: str, base_dir: Path) -> ModelConfig:
    config = reader.obj(value, path, MODEL_KEYS, ("name", "base_path"))

    def check(key: str, test: Callable[[Any], bool], expected: str, default: Any = None) -> Any:
        return reader.typed(config.get(key, default), f"{path}.{key}", test, expected)

    def parse(key: str, parser: Callable[[Any], Any], default: Any = None) -> Any:
        try:
            return parser(config.get(key, default))
        except ValueError as exc:
            raise ConfigError(f"{reader.source}: {path}.{key}: {exc}") from exc

    name = check("name", lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string")
    base = check("base_path", lambda v: isinstance(v, str) and bool(v), "a path string")
    for key in ("custom_loader_options", "graph_path", "subconfig"):
        if key in config:
            raise ConfigError(f"{reader.source}: {path}.{key}: not supported by this server yet")
    if config.get("stateful"):
        raise ConfigError(f"{reader.source}: {path}.stateful: stateful models are not supported by this server yet")
    if "allow_cache" in config:
        check("allow_cache", lambda v: isinstance(v, bool), "true or false")
    nireq = check("nireq", lambda v: _is_int(v) and v >= 0, "a non-negative integer", 0)
    device = check("target_device", lambda v: isinstance(v, str), "a string", "CPU")
    parse("target_device", validate_target_device, "CPU")
    policy = parse("model_version_policy", lambda v: VersionPolicy() if v is None else VersionPolicy.from_json(v))
    base_path = Path(base)
    if not base_path.is_absolute():
        base_path = (base_dir / base_path).resolve()
    if (base_path / GRAPH_FILE).is_file():  # a generative model folder, as OVMS configures them
        try:
            graph = read_graph(base_path)
        except ValueError as exc:
            raise ConfigError(f"{reader.source}: {path}.base_path: {exc}") from exc
        return ModelConfig(
            name, graph.model_dir, LoadOptions(target_device=graph.device), VersionPolicy(),
            task=graph.task, genai=graph.genai, encoder=graph.encoder,
        )  # fmt: skip
    load = LoadOptions(
        target_device=device,
        plugin_config=parse("plugin_config", validate_plugin_config, {}),
        nireq=nireq,
        batch_size=parse("batch_size", parse_batch_size),
        shapes=parse("shape", parse_shapes),
        layouts=parse("layout", parse_layouts),
    )
    return ModelConfig(name, base_path, load, policy)


def _parse_monitoring(reader: _Reader, value: Any) -> MetricsConfig:
    if value is None:
        return MetricsConfig()
    monitoring = reader.obj(value, "monitoring", {"metrics"}, ("metrics",))
    metrics = reader.obj(monitoring["metrics"], "monitoring.metrics", {"enable", "metrics_list"}, ("enable",))
    enable = reader.typed(
        metrics["enable"], "monitoring.metrics.enable", lambda v: isinstance(v, bool), "true or false"
    )
    names = reader.typed(
        metrics.get("metrics_list", []),
        "monitoring.metrics.metrics_list",
        lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v),
        "an array of metric family names",
    )
    try:
        validate_families(names)
    except ValueError as exc:
        raise ConfigError(f"{reader.source}: monitoring.metrics.metrics_list: {exc}") from exc
    return MetricsConfig(enable, tuple(names))


def read_config(path: Path) -> ServingConfig:
    """Read and validate a config file (blocking: call it from the loader executor)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from exc
    return parse_config(text, str(path), path.parent)
