"""The model manager: configured models, their versions and version states.

Desired state comes from the CLI (or config.json); versions are read and
compiled in a small named executor so the event loop never blocks, then
swapped in as AVAILABLE. Requests look servables up here, which is where
"unknown model", "unknown version" and "not loaded yet" are decided once for
every API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from enum import IntEnum
from typing import Any, TypeVar

import openvino as ov

from ovms_grpc.genai.encoders import EncoderServable
from ovms_grpc.genai.servable import GenerativeServable
from ovms_grpc.metrics import Metrics
from ovms_grpc.models.base import BaseServable
from ovms_grpc.models.config import LoadOptions, ModelConfig
from ovms_grpc.models.loader import load_model
from ovms_grpc.models.memory import return_freed_memory
from ovms_grpc.models.repository import list_versions, version_dir
from ovms_grpc.models.servable import Servable
from ovms_grpc.shapes import AUTO, ShapeValue, is_auto
from ovms_grpc_client.errors import (
    EngineDead,
    InvalidArgument,
    ModelNotFound,
    ModelNotReady,
    ServingError,
    VersionNotFound,
)
from ovms_grpc_client.tensors import fits

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a request waits for a version that is still loading (as OVMS).
LOAD_WAIT_SECONDS = 10.0


class VersionState(IntEnum):
    """Version states with TFS ``ModelVersionStatus.State`` numbers."""

    START = 10
    LOADING = 20
    AVAILABLE = 30
    UNLOADING = 40
    END = 50


class ModelVersion:
    """State of one version of a model, and its servable once AVAILABLE."""

    def __init__(self, model: str, version: int) -> None:
        self.model = model
        self.version = version
        self.state = VersionState.START
        self.error_code = "OK"
        self.error_message = ""
        self.servable: BaseServable | None = None
        """What serves this version once AVAILABLE: a compiled model, a generation engine or an encoder."""
        self.settled = asyncio.Event()
        self.reshape_lock = asyncio.Lock()

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

    @property
    def generator(self) -> GenerativeServable | EncoderServable | None:
        """The servable when it is a generative one (a generation engine or an encoder)."""
        servable = self.servable
        return servable if isinstance(servable, GenerativeServable | EncoderServable) else None

    @property
    def ready(self) -> bool:
        """AVAILABLE, and able to serve (a generation engine not dead or restarting)."""
        servable = self.servable
        return self.state == VersionState.AVAILABLE and servable is not None and servable.alive

    def reported(self) -> tuple[VersionState, str, str]:
        """(state, error code, error message) as status reports it: an AVAILABLE version that cannot
        serve now (its generation engine died and restarts) is LOADING with the reason, so every
        status agrees with ModelReady."""
        if self.state == VersionState.AVAILABLE and not self.ready:
            return VersionState.LOADING, "UNAVAILABLE", f'the engine of model "{self.model}" is restarting'
        return self.state, self.error_code, self.error_message


class ModelEntry:
    """A configured model and the versions it has (retired ones stay, in state END)."""

    def __init__(self, config: ModelConfig, report: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._report = report or log.error
        self.versions: dict[int, ModelVersion] = {}
        self._error = ""
        self.retired = False
        """True once the model was removed from the configuration (its versions end in END)."""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def error(self) -> str:
        """Why the model (not one version) cannot be served as configured, e.g. an unreadable base path."""
        return self._error

    @error.setter
    def error(self, reason: str) -> None:
        # Logged when it changes, not at every poll: a missing base path would otherwise log once a second.
        if reason and reason != self._error:
            self._report(f'model "{self.name}": {reason}')
        self._error = reason

    def available(self) -> list[int]:
        return sorted(v for v, mv in self.versions.items() if mv.state == VersionState.AVAILABLE)

    def default_version(self) -> ModelVersion | None:
        """The highest AVAILABLE version, or else the highest one still loading."""
        ready = [v for v, mv in self.versions.items() if mv.state == VersionState.AVAILABLE]
        if ready:
            return self.versions[max(ready)]
        pending = [v for v, mv in self.versions.items() if mv.state <= VersionState.LOADING and not mv.failed]
        return self.versions[max(pending)] if pending else None


class ModelManager:
    """Owns every model entry; reconciles them with the desired configuration off the event loop.

    ``apply`` (start-up, config reload) and ``rescan`` (version folders) are serialized; requests
    read the current state without locks. A version switches to a new compiled model only once
    that model compiled, and a retired one finishes its in-flight requests before release.
    """

    def __init__(
        self, core: ov.Core, max_queued_requests: int = 1024, loader_threads: int = 2, metrics: Metrics | None = None
    ) -> None:
        self._core = core
        self.metrics = metrics or Metrics(families=())
        self._max_queued = max_queued_requests
        self._entries: dict[str, ModelEntry] = {}
        self._executor = ThreadPoolExecutor(max_workers=loader_threads, thread_name_prefix="model-loader")
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task] = set()
        self.ready = asyncio.Event()
        """Set once the first load attempt of every configured model has finished."""
        self.config_error = ""
        """Why the last configuration change was refused (the previous one keeps serving)."""
        self.report_failures = True
        """Log load failures; off while a start-up that exits on failure reports them itself (one line)."""

    def _report(self, message: str) -> None:
        if self.report_failures:
            log.error("%s", message)

    @property
    def entries(self) -> dict[str, ModelEntry]:
        return self._entries

    async def run_blocking(self, function: Callable[..., T], *args: Any) -> T:
        """Run file-system or OpenVINO work in the loader executor."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def apply(self, configs: Sequence[ModelConfig]) -> bool:
        """Make the served models match ``configs``; returns whether anything changed."""
        async with self._lock:
            wanted = {config.name: config for config in configs}
            work = [self._retire_entry(e) for name, e in self._entries.items() if name not in wanted and not e.retired]
            for config in configs:
                entry = self._entries.get(config.name)
                if entry is None:
                    entry = self._entries[config.name] = ModelEntry(config, self._report)
                    work.append(self._sync_versions(entry))
                elif entry.config != config or entry.retired:
                    work.append(self._reconfigure(entry, config))
                else:
                    work.append(self._sync_versions(entry))
            changed = any(await asyncio.gather(*work))
        self.ready.set()
        return changed

    async def rescan(self) -> bool:
        """Pick up version folders that appeared or disappeared; returns whether anything changed."""
        async with self._lock:
            work = [self._sync_versions(entry) for entry in self._entries.values() if not entry.retired]
            return any(await asyncio.gather(*work))

    def load_errors(self) -> list[str]:
        """One line per model that has no AVAILABLE version."""
        return [
            f'model "{entry.name}": {self._why(entry)}'
            for entry in self._entries.values()
            if not entry.retired and not entry.available()
        ]

    async def _selected_versions(self, entry: ModelEntry) -> list[int] | None:
        if entry.config.task:  # a generative model folder has no version folders; OVMS reports version 1
            if not await self.run_blocking(entry.config.base_path.is_dir):
                entry.error = f"model path {entry.config.base_path} is not a readable directory"
                return None
            entry.error = ""
            return [1]
        try:
            found = await self.run_blocking(list_versions, entry.config.base_path)
        except ServingError as exc:
            entry.error = exc.details
            return None
        selected = entry.config.version_policy.select(found)
        entry.error = "" if selected else f"no version folder in {entry.config.base_path} matches the version policy"
        return selected

    async def _sync_versions(self, entry: ModelEntry) -> bool:
        selected = await self._selected_versions(entry)
        if selected is None:
            return False
        to_load = [v for v in selected if v not in entry.versions or entry.versions[v].state >= VersionState.UNLOADING]
        to_retire = [
            record
            for number, record in entry.versions.items()
            if number not in selected and record.state <= VersionState.AVAILABLE
        ]
        for number in to_load:
            entry.versions[number] = ModelVersion(entry.name, number)
        await asyncio.gather(
            *(self._load_version(entry, entry.versions[n]) for n in to_load),
            *(self._retire(record) for record in to_retire),
        )
        return bool(to_load or to_retire)

    async def _reconfigure(self, entry: ModelEntry, config: ModelConfig) -> bool:
        """A changed entry: every selected version is compiled anew and swapped in when ready."""
        entry.config = config
        entry.retired = False
        selected = await self._selected_versions(entry)
        if selected is None:
            return False
        work = []
        for number in selected:
            record = entry.versions.get(number)
            if record is not None and record.state == VersionState.AVAILABLE:
                work.append(self._swap(entry, record))
            else:
                entry.versions[number] = ModelVersion(entry.name, number)
                work.append(self._load_version(entry, entry.versions[number]))
        work += [
            self._retire(record)
            for number, record in entry.versions.items()
            if number not in selected and record.state <= VersionState.AVAILABLE
        ]
        await asyncio.gather(*work)
        return True

    async def _compile(self, entry: ModelEntry, version: int, options: LoadOptions | None = None) -> Servable:
        path = version_dir(entry.config.base_path, version)
        loaded = await self.run_blocking(load_model, self._core, path, options or entry.config.load)
        for note in loaded.notes:
            log.warning('model "%s" version %d: %s', entry.name, version, note)
        log.info(
            'model "%s" version %d compiled for %s: %d infer requests, %s',
            entry.name,
            version,
            entry.config.load.target_device,
            loaded.nireq,
            ", ".join(f"{k}={v}" for k, v in loaded.properties.items()),
        )
        auto = is_auto(entry.config.load.shapes, entry.config.load.batch_size)
        streams_text = loaded.properties.get("NUM_STREAMS", "")
        streams = int(streams_text) if streams_text.isdigit() else 0
        metrics = self.metrics.for_servable(entry.name, version, loaded.nireq, streams)
        loop = asyncio.get_running_loop()
        return await self.run_blocking(
            lambda: Servable(entry.name, version, loaded, self._max_queued, auto, metrics, loop=loop)
        )

    async def fit_shapes(self, servable: Servable, shapes: Mapping[str, Sequence[int]]) -> Servable:
        """For a version with shape or batch_size "auto": reload it for the request's shapes when they differ.

        The version keeps serving its current shape until the reshaped model compiled (as any reload).
        """
        if all(fits(spec, shapes[spec.name]) for spec in servable.inputs if spec.name in shapes):
            return servable
        entry = self.entry(servable.name)
        record = entry.versions[servable.version]
        async with record.reshape_lock:
            current = record.servable
            if not isinstance(current, Servable):
                raise ServingError(f'model "{servable.name}" version {servable.version} is retired',
                                   kind_name="MODEL_VERSION_NOT_LOADED_ANYMORE")  # fmt: skip
            if all(fits(spec, shapes[spec.name]) for spec in current.inputs if spec.name in shapes):
                return current
            load = entry.config.load
            wanted: list[tuple[str, ShapeValue]] = []
            for spec in current.inputs:
                shape = shapes.get(spec.name)
                if shape is None or spec.dynamic_rank:
                    continue
                if load.batch_size == AUTO and not any(v == AUTO for _, v in load.shapes or ()):
                    dims = ((shape[0], shape[0]), *spec.dims[1:]) if shape else spec.dims
                else:
                    dims = tuple((d, d) for d in shape)
                wanted.append((spec.name, dims))
            log.info('model "%s" version %d: reshaping for a request with %s', servable.name, servable.version,
                     ", ".join(f"{n}{list(d)}" for n, d in shapes.items()))  # fmt: skip
            reshaped = await self._compile(entry, record.version, replace(load, shapes=tuple(wanted), batch_size=None))
            previous, record.servable = record.servable, reshaped
            if previous is not None:
                self._in_background(previous.release())
            return reshaped

    async def _build(self, entry: ModelEntry, version: int) -> BaseServable:
        """What serves ``version`` of ``entry`` as configured: a compiled model, or a generative one."""
        if entry.config.task:
            return await self._start_generator(entry)
        return await self._compile(entry, version)

    async def _start_generator(self, entry: ModelEntry) -> GenerativeServable | EncoderServable:
        config = entry.config
        device = config.load.target_device
        generator: GenerativeServable | EncoderServable
        if config.task == "text_generation":
            generator = GenerativeServable(config.name, config.base_path, config.task, device, config.genai,
                                           self._max_queued)  # fmt: skip
        else:
            generator = EncoderServable(config.name, config.base_path, config.task, device, config.encoder,
                                        self._max_queued)  # fmt: skip
        await generator.start()
        generator.metrics = self.metrics.for_graph(config.name)
        return generator

    async def _load_version(self, entry: ModelEntry, record: ModelVersion) -> None:
        record.set_state(VersionState.LOADING)
        try:
            servable = await self._build(entry, record.version)
        except Exception as exc:
            details = exc.details if isinstance(exc, ServingError) else str(exc)
            if not isinstance(exc, ServingError):
                log.exception('model "%s" version %d failed to load', entry.name, record.version)
            elif entry.config.task:
                self._report(f'model "{entry.name}" failed to load: {details}')
            else:
                self._report(f'model "{entry.name}" version {record.version} failed to load: {details}')
            record.set_state(VersionState.LOADING, "UNKNOWN", details)
            return
        record.servable = servable
        record.set_state(VersionState.AVAILABLE)

    async def _swap(self, entry: ModelEntry, record: ModelVersion) -> None:
        try:
            servable = await self._build(entry, record.version)
        except Exception as exc:
            details = exc.details if isinstance(exc, ServingError) else str(exc)
            where = "" if entry.config.task else f"version {record.version} "
            entry.error = f"{where}keeps its previous configuration: {details}"
            return
        previous, record.servable = record.servable, servable
        log.info('model "%s" version %d now serves its new configuration', entry.name, record.version)
        if previous is not None:
            self._in_background(previous.release())

    async def _retire(self, record: ModelVersion) -> None:
        servable, record.servable = record.servable, None
        record.set_state(VersionState.UNLOADING)
        if servable is not None:
            generative = bool(servable.task)
            await servable.release()  # waits for the requests holding it
            del servable  # the last reference: a compiled model is freed here
            if generative:
                self.metrics.remove_graph(record.model)
            await self.run_blocking(return_freed_memory)
        self.metrics.remove_servable(record.model, record.version)
        record.set_state(VersionState.END)

    async def _retire_entry(self, entry: ModelEntry) -> bool:
        entry.retired = True
        await asyncio.gather(*(self._retire(r) for r in entry.versions.values() if r.state <= VersionState.AVAILABLE))
        return True

    def _in_background(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def entry(self, name: str) -> ModelEntry:
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(sorted(n for n, e in self._entries.items() if not e.retired)) or "none"
            raise ModelNotFound(f'model "{name}" not found (available models: {known})')
        return entry

    def version(self, name: str, version: int | None) -> ModelVersion:
        """The requested (or default) version record, whatever its state."""
        entry = self.entry(name)
        if version is None:
            chosen = entry.default_version()
            if chosen is None:
                if entry.retired:
                    raise ServingError(f'model "{name}" was removed', kind_name="MODEL_VERSION_NOT_LOADED_ANYMORE")
                raise ModelNotReady(f'model "{name}" has no version available: {self._why(entry)}')
            return chosen
        record = entry.versions.get(version)
        if record is None:
            known = ", ".join(str(v) for v in entry.available()) or "none"
            raise VersionNotFound(f'model "{name}" version {version} not found (available versions: {known})')
        return record

    async def servable(self, name: str, version: int | None = None) -> Servable:
        """The compiled model for a request, waiting up to 10 s for a version that is loading.
        Hold it (``Servable.hold``, or use ``acquire``) before the next ``await``."""
        record = self.version(name, version)
        if record.state < VersionState.AVAILABLE and not record.failed:
            try:
                await asyncio.wait_for(record.settled.wait(), LOAD_WAIT_SECONDS)
            except TimeoutError:
                pass
        if record.state == VersionState.AVAILABLE and record.servable is not None:
            return self.loaded_servable(name, version)  # raises for a generative model: no tensors
        if record.state >= VersionState.UNLOADING:
            raise ServingError(
                f'model "{name}" version {record.version} is retired', kind_name="MODEL_VERSION_NOT_LOADED_ANYMORE"
            )
        reason = f": {record.error_message}" if record.failed else ""
        raise ModelNotReady(f'model "{name}" version {record.version} is not loaded{reason}')

    @contextlib.asynccontextmanager
    async def acquire(self, name: str, version: int | None = None) -> AsyncIterator[Servable]:
        """The compiled model for a request, held from its lookup until the block ends: retiring
        or reloading the version meanwhile waits for the block, so the request finishes on it."""
        servable = await self.servable(name, version)
        with servable.hold():  # no await since the lookup: the version cannot have been retired
            yield servable

    def loaded_servable(self, name: str, version: int | None) -> Servable:
        """The compiled model of an AVAILABLE version, without waiting (metadata calls, as OVMS)."""
        record = self.version(name, version)
        servable = record.servable
        if servable is not None and servable.task:
            raise InvalidArgument(
                f'model "{name}" serves {servable.task}: call ovms.generation.v1.GenerationService '
                "or the OpenAI-style /v3 routes"
            )
        if record.state != VersionState.AVAILABLE or not isinstance(servable, Servable):
            raise ServingError(
                f'model "{name}" version {record.version} is {record.state.name}',
                kind_name="MODEL_VERSION_NOT_LOADED_YET"
                if record.state < VersionState.UNLOADING
                else "MODEL_VERSION_NOT_LOADED_ANYMORE",
            )
        return servable

    def generator(self, name: str, task: str) -> GenerativeServable | EncoderServable:
        """The generative model ``name``, which must serve ``task``."""
        record = self.version(name, None)
        generator = record.generator
        if record.state != VersionState.AVAILABLE or generator is None:
            if record.state == VersionState.AVAILABLE:
                raise InvalidArgument(f'model "{name}" is not a generative model ({task} was asked)')
            raise ModelNotReady(f'model "{name}" is not loaded: {self._why(self.entry(name))}')
        if generator.task != task:
            raise InvalidArgument(f'model "{name}" serves {generator.task}, not {task}')
        if not generator.alive:
            raise EngineDead(f'the engine of model "{name}" is restarting; retry the request')
        return generator

    def llm(self, name: str) -> GenerativeServable:
        generator = self.generator(name, "text_generation")
        assert isinstance(generator, GenerativeServable)
        return generator

    def encoder(self, name: str, task: str) -> EncoderServable:
        generator = self.generator(name, task)
        assert isinstance(generator, EncoderServable)
        return generator

    @staticmethod
    def _why(entry: ModelEntry) -> str:
        reasons = [entry.error] if entry.error else []
        reasons += [f"version {v}: {mv.error_message}" for v, mv in sorted(entry.versions.items()) if mv.failed]
        return "; ".join(reasons) or "no version is loaded"

    async def close(self) -> None:
        """Retire every version (in-flight requests finish first) and stop the loader threads."""
        async with self._lock:
            await asyncio.gather(*(self._retire_entry(e) for e in self._entries.values() if not e.retired))
        self._executor.shutdown(wait=False, cancel_futures=True)


def parse_version(text: str) -> int | None:
    """A request's version string: empty or "0" means the default version."""
    if text in ("", "0"):
        return None
    if not text.isdigit():
        raise InvalidArgument(f'version "{text}" is not a positive integer', kind_name="MODEL_VERSION_INVALID_FORMAT")
    return int(text)
