"""The model manager: configured models, their versions and version states.

Desired state comes from the CLI (or config.json); versions are read and
compiled in a small named executor so the event loop never blocks, then
swapped in as AVAILABLE. Requests look servables up here, which is where
"unknown model", "unknown version" and "not loaded yet" are decided once for
every API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import openvino as ov

from ovms_grpc.errors import (
    InvalidArgument,
    LoadFailed,
    ModelNotFound,
    ModelNotReady,
    ServingError,
    VersionNotFound,
)
from ovms_grpc.models.policy import VersionPolicy
from ovms_grpc.models.repository import list_versions, version_dir
from ovms_grpc.models.servable import LoadOptions, Servable

log = logging.getLogger(__name__)

#: How long a request waits for a version that is still loading (as OVMS).
LOAD_WAIT_SECONDS = 10.0


class VersionState(IntEnum):
    """Version states with TFS ``ModelVersionStatus.State`` numbers."""

    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


@dataclass(frozen=True)
class ModelConfig:
    """One served model as configured."""

    name: str
    base_path: Path
    load: LoadOptions = field(default_factory=LoadOptions)
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)


class ModelVersion:
    """State of one version of a model, and its servable once AVAILABLE."""

    def __init__(self, model: str, version: int) -> None:
        self.model = model
        self.version = version
        self.state = VersionState.START
        self.error_code = "OK"
        self.error_message = ""
        self.servable: Servable | None = None
        self.settled = asyncio.Event()

    def set_state(self, state: VersionState, error_code: str = "OK", error_message: str = "") -> None:
        self.state = state
        self.error_code = error_code
        self.error_message = error_message
        log.info(
            'STATUS CHANGE: Version %d of model %s status change. New status: ( "state": "%s", "error_code": "%s" )',
            self.version,
            self.model,
            state.name,
            error_code,
        )
        if state != VersionState.LOADING or error_code != "OK":
            self.settled.set()

    @property
    def failed(self) -> bool:
        return self.error_code != "OK"


class ModelEntry:
    """A configured model and the versions it has (retired ones stay, in state END)."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.versions: dict[int, ModelVersion] = {}
        self.error = ""
        """Why the model itself (not one version) cannot be served, e.g. an unreadable base path."""

    @property
    def name(self) -> str:
        return self.config.name

    def available(self) -> list[int]:
        return sorted(v for v, mv in self.versions.items() if mv.state == VersionState.AVAILABLE)

    def default_version(self) -> ModelVersion | None:
        """The highest AVAILABLE version, or else the highest one still loading."""
        ready = self.available()
        if ready:
            return self.versions[ready[-1]]
        pending = [v for v, mv in self.versions.items() if mv.state <= VersionState.LOADING and not mv.failed]
        return self.versions[max(pending)] if pending else None


class ModelManager:
    """Owns every model entry and loads their versions off the event loop."""

    def __init__(
        self, core: ov.Core, configs: Iterable[ModelConfig], max_queued_requests: int = 1024, loader_threads: int = 2
    ) -> None:
        self._core = core
        self._max_queued = max_queued_requests
        self._entries = {config.name: ModelEntry(config) for config in configs}
        self._executor = ThreadPoolExecutor(max_workers=loader_threads, thread_name_prefix="model-loader")
        self.ready = asyncio.Event()
        """Set once the first load attempt of every configured model has finished."""

    @property
    def entries(self) -> dict[str, ModelEntry]:
        return self._entries

    async def load_all(self) -> None:
        """First load of every model; failures are recorded in the version states."""
        await asyncio.gather(*(self._load_entry(entry) for entry in self._entries.values()))
        self.ready.set()

    def load_errors(self) -> list[str]:
        """One line per model that has no AVAILABLE version after loading."""
        errors = []
        for entry in self._entries.values():
            if entry.available():
                continue
            errors.append(f'model "{entry.name}": {self._why(entry)}')
        return errors

    async def _load_entry(self, entry: ModelEntry) -> None:
        loop = asyncio.get_running_loop()
        try:
            found = await loop.run_in_executor(self._executor, list_versions, entry.config.base_path)
        except ServingError as exc:
            entry.error = exc.details
            log.error('model "%s": %s', entry.name, entry.error)
            return
        selected = entry.config.version_policy.select(found)
        if not selected:
            entry.error = f"no version folder in {entry.config.base_path} matches the version policy"
            log.error('model "%s": %s', entry.name, entry.error)
        for number in selected:
            entry.versions[number] = ModelVersion(entry.name, number)
        await asyncio.gather(*(self._load_version(entry, entry.versions[n]) for n in selected))

    async def _load_version(self, entry: ModelEntry, version: ModelVersion) -> None:
        loop = asyncio.get_running_loop()
        version.set_state(VersionState.LOADING)
        path = version_dir(entry.config.base_path, version.version)
        try:
            compiled, nireq = await loop.run_in_executor(
                self._executor, Servable.compile, self._core, path, entry.config.load
            )
            servable = Servable(entry.name, version.version, compiled, nireq, self._max_queued)
        except ServingError as exc:
            log.error('model "%s" version %d failed to load: %s', entry.name, version.version, exc.details)
            version.set_state(VersionState.LOADING, "UNKNOWN", exc.details)
            return
        except Exception as exc:  # a model OpenVINO cannot describe must not stop the others
            log.exception('model "%s" version %d failed to load', entry.name, version.version)
            version.set_state(VersionState.LOADING, "UNKNOWN", str(LoadFailed(str(exc)).details))
            return
        log.info(
            'model "%s" version %d loaded on %s with %d infer requests',
            entry.name,
            version.version,
            entry.config.load.target_device,
            nireq,
        )
        version.servable = servable
        version.set_state(VersionState.AVAILABLE)

    def entry(self, name: str) -> ModelEntry:
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(sorted(self._entries)) or "none"
            raise ModelNotFound(f'model "{name}" not found (available models: {known})')
        return entry

    def version(self, name: str, version: int | None) -> ModelVersion:
        """The requested (or default) version record, whatever its state."""
        entry = self.entry(name)
        if version is None:
            chosen = entry.default_version()
            if chosen is None:
                raise ModelNotReady(f'model "{name}" has no version available: {self._why(entry)}')
            return chosen
        record = entry.versions.get(version)
        if record is None:
            known = ", ".join(str(v) for v in sorted(entry.versions)) or "none"
            raise VersionNotFound(f'model "{name}" version {version} not found (available versions: {known})')
        return record

    async def servable(self, name: str, version: int | None = None) -> Servable:
        """The servable for a request, waiting up to 10 s for a version that is loading."""
        record = self.version(name, version)
        if record.state < VersionState.AVAILABLE and not record.failed:
            try:
                await asyncio.wait_for(record.settled.wait(), LOAD_WAIT_SECONDS)
            except TimeoutError:
                pass
        if record.state == VersionState.AVAILABLE and record.servable is not None:
            return record.servable
        if record.state >= VersionState.UNLOADING:
            raise ServingError(
                f'model "{name}" version {record.version} is retired', kind_name="MODEL_VERSION_NOT_LOADED_ANYMORE"
            )
        reason = f": {record.error_message}" if record.failed else ""
        raise ModelNotReady(f'model "{name}" version {record.version} is not loaded{reason}')

    @staticmethod
    def _why(entry: ModelEntry) -> str:
        reasons = [entry.error] if entry.error else []
        reasons += [f"version {v}: {mv.error_message}" for v, mv in sorted(entry.versions.items()) if mv.failed]
        return "; ".join(reasons) or "no version is loaded"

    async def close(self) -> None:
        for entry in self._entries.values():
            for record in entry.versions.values():
                if record.state == VersionState.AVAILABLE:
                    record.set_state(VersionState.UNLOADING)
                    record.servable = None
                    record.set_state(VersionState.END)
        self._executor.shutdown(wait=False, cancel_futures=True)


def parse_version(text: str) -> int | None:
    """A request's version string: empty or "0" means the default version."""
    if text in ("", "0"):
        return None
    if not text.isdigit():
        raise InvalidArgument(f'version "{text}" is not a positive integer', kind_name="MODEL_VERSION_INVALID_FORMAT")
    return int(text)
