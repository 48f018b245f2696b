"""Model sources and config management, as OVMS's command line does them (no server is started).

- ``--pull --source_model ORG/NAME --model_repository_path DIR [--task T ...]`` downloads a
  Hugging Face repository holding OpenVINO IR into ``DIR/ORG/NAME`` (the hub's HTTP API at
  ``HF_ENDPOINT``, ``HF_TOKEN`` as a bearer token) and writes its ``graph.pbtxt`` with the task
  options given, so OVMS and this server both serve the folder. ``--source_model`` without
  ``--pull`` downloads and then serves. Repositories without IR would need optimum-cli
  conversion, which this server does not run: they are refused with that reason.
- ``--add_to_config`` / ``--remove_from_config`` edit a config.json's ``model_config_list``;
  ``--list_models`` lists the servables of a repository.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ovms_grpc.genai.graph import GRAPH_FILE, graph_text
from ovms_grpc.models.config import EncoderOptions, GenaiOptions

DEFAULT_ENDPOINT = "https://huggingface.co"
CHUNK = 1 << 20


class SourceError(Exception):
    """A pull or config edit that cannot be done; the message says why."""


def _request(url: str, token: str | None) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "ovms-grpc"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        return urllib.request.urlopen(request, timeout=60)  # noqa: S310 (the hub's URL, http or https)
    except urllib.error.HTTPError as exc:
        reason = {401: "unauthorized (set HF_TOKEN)", 403: "forbidden", 404: "not found"}.get(exc.code, exc.reason)
        raise SourceError(f"{url}: HTTP {exc.code} {reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SourceError(f"{url}: {getattr(exc, 'reason', exc)}") from None


def repository_files(endpoint: str, repo: str, token: str | None) -> list[str]:
    """The file names of a hub repository (``GET /api/models/{repo}``, its ``siblings``)."""
    with _request(f"{endpoint}/api/models/{urllib.parse.quote(repo)}", token) as answer:
        info = json.load(answer)
    return [entry["rfilename"] for entry in info.get("siblings", []) if isinstance(entry.get("rfilename"), str)]


def infer_task(folder: Path) -> str:
    """OVMS's task inference from the model's own files: rerank, embeddings, else text generation."""
    config_file = folder / "config.json"
    architectures: list[str] = []
    if config_file.is_file():
        architectures = json.loads(config_file.read_text()).get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return "rerank"
    if (folder / "modules.json").is_file() or any(a in ("BertModel", "XLMRobertaModel") for a in architectures):
        return "embeddings"
    return "text_generation"


def pull(
    source_model: str,
    repository: Path,
    *,
    task: str | None,
    device: str,
    genai: GenaiOptions,
    encoder: EncoderOptions,
    overwrite: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
) -> Path:
    """Download ``source_model`` into ``repository/source_model`` and write its graph.pbtxt; returns the folder."""
    if source_model.count("/") != 1 or any(part in ("", ".", "..") for part in source_model.split("/")):
        raise SourceError(f"source_model must be ORG/NAME, got {source_model!r}")
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    token = token if token is not None else os.environ.get("HF_TOKEN")
    target = repository / source_model
    if target.exists() and not overwrite:
        if not (target / GRAPH_FILE).is_file():
            (target / GRAPH_FILE).write_text(graph_text(task or infer_task(target), device, genai, encoder))
        return target
    files = repository_files(endpoint, source_model, token)
    if "openvino_model.xml" not in files:
        raise SourceError(
            f"{source_model} has no OpenVINO IR (openvino_model.xml); other formats need conversion with "
            "optimum-cli, which this server does not run"
        )
    repository.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=repository))
    try:
        for name in files:
            path = (staging / name).resolve()
            if staging.resolve() not in path.parents:
                raise SourceError(f"{source_model}: file name {name!r} leaves the model folder")
            path.parent.mkdir(parents=True, exist_ok=True)
            url = f"{endpoint}/{source_model}/resolve/main/{urllib.parse.quote(name)}"
            with _request(url, token) as answer, path.open("wb") as out:
                shutil.copyfileobj(answer, out, CHUNK)
        (staging / GRAPH_FILE).write_text(graph_text(task or infer_task(staging), device, genai, encoder))
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _read_config(config_path: Path) -> dict[str, Any]:
    if not config_path.exists():
        return {"model_config_list": []}
    try:
        document = json.loads(config_path.read_text())
    except ValueError as exc:
        raise SourceError(f"{config_path}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.setdefault("model_config_list", []), list):
        raise SourceError(f"{config_path}: model_config_list must be an array")
    return document


def _write_config(config_path: Path, document: dict[str, Any]) -> None:
    config_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = config_path.with_name(config_path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=4) + "\n")
    temporary.replace(config_path)  # a polling server never reads half a file


def add_to_config(config_path: Path, name: str, base_path: str) -> None:
    """Add (or repoint) model ``name`` in config.json's model_config_list."""
    document = _read_config(config_path)
    entries = document["model_config_list"]
    for entry in entries:
        if isinstance(entry, dict) and entry.get("config", {}).get("name") == name:
            entry["config"]["base_path"] = base_path
            break
    else:
        entries.append({"config": {"name": name, "base_path": base_path}})
    _write_config(config_path, document)


def remove_from_config(config_path: Path, name: str) -> None:
    document = _read_config(config_path)
    entries = document["model_config_list"]
    kept = [e for e in entries if not (isinstance(e, dict) and e.get("config", {}).get("name") == name)]
    if len(kept) == len(entries):
        raise SourceError(f'{config_path}: no model named "{name}" to remove')
    document["model_config_list"] = kept
    _write_config(config_path, document)


def list_models(repository: Path) -> list[str]:
    """Servables under ``repository``: folders with a graph.pbtxt, or with numeric version folders."""
    found = []
    for folder in sorted(p for p in repository.rglob("*") if p.is_dir()):
        versioned = any(child.is_dir() and child.name.isdigit() for child in folder.iterdir())
        if (folder / GRAPH_FILE).is_file() or versioned:
            found.append(folder.relative_to(repository).as_posix())
    return [name for name in found if not any(name.startswith(other + "/") for other in found)]
