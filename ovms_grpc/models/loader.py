"""Read and compile one model version directory with OpenVINO (blocking: runs in the loader executor)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openvino as ov

from ovms_grpc.devices import normalize_plugin_config, requires_static_shapes
from ovms_grpc.models.config import LoadOptions
from ovms_grpc.shapes import apply_settings, is_auto
from ovms_grpc_client.errors import LoadFailed, last_line

log = logging.getLogger(__name__)

#: Compiled-model properties shown in status and logs, when the device reports them.
REPORTED_PROPERTIES = ("NUM_STREAMS", "OPTIMAL_NUMBER_OF_INFER_REQUESTS", "PERFORMANCE_HINT", "INFERENCE_NUM_THREADS")

MODEL_PATTERNS = ("*.xml", "*.onnx", "*.tflite", "*.pdmodel", "saved_model.pb")


@dataclass
class LoadedModel:
    """A compiled model and what is worth reporting about it."""

    compiled: ov.CompiledModel
    nireq: int
    properties: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    """OVMS's mapping_config.json: {"inputs": {tensor: alias}, "outputs": {tensor: alias}}."""


MAPPING_FILE = "mapping_config.json"


def read_mapping(version_dir: Path) -> dict[str, dict[str, str]]:
    """The tensor aliases of a version folder (empty without a mapping_config.json)."""
    path = version_dir / MAPPING_FILE
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LoadFailed(f"{path}: not a readable JSON file ({exc})") from exc
    if not isinstance(document, dict) or set(document) - {"inputs", "outputs"}:
        raise LoadFailed(f'{path}: expected {{"inputs": {{tensor: alias}}, "outputs": {{tensor: alias}}}}')
    mapping: dict[str, dict[str, str]] = {}
    for key in ("inputs", "outputs"):
        value = document.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise LoadFailed(f"{path}: {key} must map tensor names to alias strings")
        mapping[key] = value
    return mapping


def find_model_file(version_dir: Path) -> Path:
    """The file (or SavedModel folder) OpenVINO should read in a version directory."""
    for pattern in MODEL_PATTERNS:
        found = sorted(version_dir.glob(pattern))
        if found:
            return found[0] if found[0].name != "saved_model.pb" else version_dir
    raise LoadFailed(f"no model file ({', '.join(MODEL_PATTERNS)}) in {version_dir}")


def load_model(core: ov.Core, version_dir: Path, options: LoadOptions) -> LoadedModel:
    """Read, reshape, add layout conversions and compile one version."""
    model_file = find_model_file(version_dir)
    aliases = read_mapping(version_dir)
    try:
        model = core.read_model(str(model_file))
    except Exception as exc:
        raise LoadFailed(f"cannot read {model_file}: {last_line(exc)}") from exc
    try:
        model = apply_settings(model, options.shapes, options.batch_size, options.layouts)
    except ValueError as exc:
        raise LoadFailed(f"{model_file}: {exc}", kind_name="RESHAPE_ERROR") from exc
    if requires_static_shapes(options.target_device):
        dynamic = [port.any_name for port in model.inputs if port.get_partial_shape().is_dynamic]
        if dynamic or is_auto(options.shapes, options.batch_size):
            raise LoadFailed(
                f"{options.target_device} needs static shapes, but input(s) {', '.join(dynamic) or 'with auto shape'} "
                "are dynamic: set shape or batch_size for this model"
            )
    try:
        config, notes = normalize_plugin_config(dict(options.plugin_config or {}))
    except ValueError as exc:
        raise LoadFailed(f"plugin_config: {exc}") from exc
    config = {key: _property_value(value) for key, value in config.items()}
    try:
        compiled = core.compile_model(model, options.target_device, config)
    except Exception as exc:
        raise LoadFailed(f"cannot compile {model_file} for {options.target_device}: {last_line(exc)}") from exc
    properties = {}
    for name in REPORTED_PROPERTIES:
        try:
            properties[name] = str(compiled.get_property(name)).removeprefix("PerformanceMode.")
        except Exception:  # not every device reports every property
            continue
    optimal = int(properties.get("OPTIMAL_NUMBER_OF_INFER_REQUESTS", "1"))
    return LoadedModel(compiled, max(options.nireq or optimal, 1), properties, notes, aliases)


def _property_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "YES" if value else "NO"
    if isinstance(value, int | float):
        return str(value)
    return value
