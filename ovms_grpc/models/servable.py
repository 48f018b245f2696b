"""One loaded OpenVINO model version: tensor specs and an inference pool (the in-flight guard is
``models.base.BaseServable``'s)."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np
import openvino as ov

from ovms_grpc.metrics import ServableMetrics
from ovms_grpc.models.base import BaseServable
from ovms_grpc.models.loader import LoadedModel
from ovms_grpc_client.errors import InvalidArgument, LoadFailed, Overloaded, ServingError, last_line
from ovms_grpc_client.tensors import Dim, TensorSpec

log = logging.getLogger(__name__)

#: OpenVINO element type name -> KServe datatype.
OV_TO_KSERVE = {
    "boolean": "BOOL",
    "u8": "UINT8",
    "u16": "UINT16",
    "u32": "UINT32",
    "u64": "UINT64",
    "i8": "INT8",
    "i16": "INT16",
    "i32": "INT32",
    "i64": "INT64",
    "f16": "FP16",
    "f32": "FP32",
    "f64": "FP64",
    "string": "BYTES",
}


def tensor_spec(port: ov.Output, name: str) -> TensorSpec:
    """Describe a model port for the APIs (datatype and dimension bounds)."""
    type_name = port.get_element_type().get_type_name()
    datatype = OV_TO_KSERVE.get(type_name)
    if datatype is None:
        raise LoadFailed(f"tensor {name} has element type {type_name}, which no serving API can carry")
    shape = port.get_partial_shape()
    layout = ov.layout_helpers.get_layout(port).to_string().strip("[]").replace(",", "")
    layout = "" if layout == "..." else layout
    if shape.rank.is_dynamic:
        return TensorSpec(name, datatype, (), dynamic_rank=True, layout=layout)
    dims: list[Dim] = []
    for dim in shape:
        if dim.is_static:
            dims.append((dim.get_length(), dim.get_length()))
        else:
            dims.append((max(dim.get_min_length(), 0), dim.get_max_length()))
    return TensorSpec(name, datatype, tuple(dims), layout=layout)


class InferencePool:
    """A fixed set of OpenVINO infer requests driven from asyncio.

    A request is started with ``start_async``; OpenVINO's callback thread only appends the
    request's index to a deque and wakes the loop once for all completions pending (one
    ``call_soon_threadsafe`` however many finished meanwhile). On the loop, outputs are copied
    and the request goes straight to the next waiter, or back to the idle list; that happens
    whether or not the caller is still waiting (cancellation safe). Each request's callback is
    set once, at creation.
    """

    def __init__(
        self,
        compiled: ov.CompiledModel,
        size: int,
        output_names: list[str],
        max_queued: int,
        label: str,
        metrics: ServableMetrics,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.size = size
        self._metrics = metrics
        self.max_queued = max_queued
        self._label = label
        self._output_index = {name: index for index, name in enumerate(output_names)}
        self._all_outputs = list(output_names)
        self._string_outputs = {
            index for index, port in enumerate(compiled.outputs) if port.get_element_type() == ov.Type.string
        }
        self._loop = loop or asyncio.get_running_loop()
        self._requests = [compiled.create_infer_request() for _ in range(size)]
        self._idle = list(range(size))
        self._waiters: collections.deque[asyncio.Future[int]] = collections.deque()
        self._jobs: list[tuple[asyncio.Future, Sequence[str], float] | None] = [None] * size
        self._finished: collections.deque[tuple[int, float]] = collections.deque()
        self._wakeup_pending = False
        for index, request in enumerate(self._requests):
            request.set_callback(self._on_done_thread, index)

    async def infer(self, inputs: Mapping[int, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        """Run one inference; copies out the named outputs (all when ``outputs`` is empty)."""
        if not self._requests:
            raise ServingError(f"{self._label} is retired", kind_name="MODEL_VERSION_NOT_LOADED_ANYMORE")
        if self._idle:
            index = self._idle.pop()
            self._metrics.wait_time.observe(0)
        else:
            waited = time.perf_counter()
            index = await self._wait_for_request()
            self._metrics.wait_time.observe((time.perf_counter() - waited) * 1e6)
        future: asyncio.Future[dict[str, np.ndarray]] = self._loop.create_future()
        self._jobs[index] = (future, outputs or self._all_outputs, time.perf_counter())
        try:
            self._requests[index].start_async(inputs, share_inputs=True)
        except Exception as exc:
            self._jobs[index] = None
            self._release(index)
            raise InvalidArgument(f"OpenVINO rejected the inputs: {last_line(exc)}") from exc
        self._metrics.active.inc()
        return await future

    def close(self) -> None:
        """Drop the infer requests. Each holds its callback, which holds this pool: a reference
        cycle through C++ that Python's collector cannot see, so without this the compiled
        model would never be freed."""
        for request in self._requests:
            request.set_callback(_ignore, None)
        self._requests.clear()
        self._idle.clear()

    @property
    def idle(self) -> int:
        """Infer requests not running now."""
        return len(self._idle)

    async def _wait_for_request(self) -> int:
        if len(self._waiters) >= self.max_queued:
            raise Overloaded(
                f"{self._label}: {len(self._waiters)} requests already wait for one of {self.size} infer requests "
                f"(--max_queued_requests {self.max_queued})"
            )
        waiter: asyncio.Future[int] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(waiter.result())  # handed a request, but the caller went away
            else:
                self._waiters.remove(waiter)
            raise

    def _release(self, index: int) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(index)
                return
        self._idle.append(index)

    def _read_output(self, request: ov.InferRequest, index: int) -> np.ndarray:
        tensor = request.get_output_tensor(index)
        if index in self._string_outputs:
            return tensor.bytes_data.astype(object)
        # one copy into an immutable buffer that the encoder can send as it is (see tensors.to_raw)
        data = tensor.data
        return np.frombuffer(data.tobytes(), dtype=data.dtype).reshape(data.shape)

    def _on_done_thread(self, index: int) -> None:
        """OpenVINO's callback thread: queue the completion, wake the loop once per batch of them."""
        self._finished.append((index, time.perf_counter()))
        if not self._wakeup_pending:
            self._wakeup_pending = True
            self._loop.call_soon_threadsafe(self._drain_finished)

    def _drain_finished(self) -> None:
        self._wakeup_pending = False  # before draining: a completion appended later schedules a new drain
        while self._finished:
            index, finished = self._finished.popleft()
            self._complete(index, finished)

    def _complete(self, index: int, finished: float) -> None:
        job = self._jobs[index]
        self._jobs[index] = None
        if job is None:  # the pool was closed meanwhile
            return
        future, names, started = job
        self._metrics.inference_time.observe((finished - started) * 1e6)
        self._metrics.active.dec()
        try:
            if not future.done():
                request = self._requests[index]
                future.set_result({name: self._read_output(request, self._output_index[name]) for name in names})
        except Exception as exc:  # an output that cannot be read is an inference failure
            log.exception("reading outputs failed")
            if not future.done():
                future.set_exception(ServingError(last_line(exc), kind_name="OV_INTERNAL_INFERENCE_ERROR"))
        finally:
            self._release(index)


def _alias(port: ov.Output, aliases: Mapping[str, str]) -> str:
    """The name the APIs use for a port: its alias from mapping_config.json, or its own name."""
    return next((aliases[name] for name in sorted(port.names) if name in aliases), port.any_name)


def _ignore(userdata: object) -> None:
    """A callback that keeps nothing alive."""


class Servable(BaseServable):
    """A compiled, ready-to-serve model version."""

    def __init__(
        self,
        name: str,
        version: int,
        loaded: LoadedModel,
        max_queued: int = 1024,
        auto_shape: bool = False,
        metrics: ServableMetrics | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """Build on the event loop, or in a worker thread with ``loop`` given (creating the infer
        requests allocates their tensors and can take long)."""
        super().__init__(name, version)
        self.loaded = loaded
        self.auto_shape = auto_shape
        """Configured with shape or batch_size "auto": a request of another shape reloads it (as OVMS)."""
        compiled = loaded.compiled
        nireq = loaded.nireq
        self.inputs = [tensor_spec(port, _alias(port, loaded.aliases.get("inputs", {}))) for port in compiled.inputs]
        self.outputs = [tensor_spec(port, _alias(port, loaded.aliases.get("outputs", {}))) for port in compiled.outputs]
        self.input_by_name = {spec.name: spec for spec in self.inputs}
        self._input_index = {spec.name: index for index, spec in enumerate(self.inputs)}
        self.nireq = nireq
        self.metrics = metrics or ServableMetrics()
        label = f'model "{name}" version {version}'
        self.pool = InferencePool(
            compiled, nireq, [s.name for s in self.outputs], max_queued, label, self.metrics, loop
        )

    @property
    def properties(self) -> dict[str, str]:
        return dict(self.loaded.properties)

    def _enter(self) -> None:
        self.metrics.current_requests.inc()

    def _exit(self) -> None:
        self.metrics.current_requests.dec()

    async def infer(self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Infer; ``outputs`` names the outputs wanted (all when empty), already validated. The
        caller holds this version (``hold``) from its lookup on."""
        prepared = {}  # by input index: the names clients use may be mapping_config.json aliases
        for name, array in inputs.items():
            if array.dtype == object:
                array = np.array(list(array.reshape(-1)), dtype=np.bytes_).reshape(array.shape)
            prepared[self._input_index[name]] = array
        return await self.pool.infer(prepared, outputs)

    async def close(self) -> None:
        """Free the infer requests (and so the compiled model)."""
        self.pool.close()
