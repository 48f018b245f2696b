"""One loaded model version: tensor specs, an inference pool, and the in-flight count that guards unloading."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence

import numpy as np
import openvino as ov

from ovms_grpc.errors import InvalidArgument, LoadFailed, Overloaded, ServingError
from ovms_grpc.metrics import ServableMetrics
from ovms_grpc.models.loader import LoadedModel, first_line
from ovms_grpc.tensors import Dim, TensorSpec

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

    A request is taken from the idle queue, started with ``start_async`` and
    resolved from OpenVINO's callback thread through ``call_soon_threadsafe``;
    the request returns to the idle queue on the loop once its outputs are
    copied, whether or not the caller is still waiting (cancellation safe).
    """

    def __init__(
        self,
        compiled: ov.CompiledModel,
        size: int,
        output_names: list[str],
        max_queued: int,
        label: str,
        metrics: ServableMetrics,
    ) -> None:
        self.size = size
        self._metrics = metrics
        self.max_queued = max_queued
        self._label = label
        self._waiting = 0
        self._output_index = {name: index for index, name in enumerate(output_names)}
        self._string_outputs = {
            index for index, port in enumerate(compiled.outputs) if port.get_element_type() == ov.Type.string
        }
        self._loop = asyncio.get_running_loop()
        self._idle: asyncio.Queue[ov.InferRequest] = asyncio.Queue()
        self._requests = [compiled.create_infer_request() for _ in range(size)]
        for request in self._requests:
            self._idle.put_nowait(request)

    async def infer(self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        """Run one inference; copies out the named outputs (all when ``outputs`` is empty)."""
        if not self._requests:
            raise ServingError(f"{self._label} is retired", kind_name="MODEL_VERSION_NOT_LOADED_ANYMORE")
        if self._idle.empty():
            waited = time.perf_counter()
            request = await self._wait_for_request()
            self._metrics.wait_time.observe((time.perf_counter() - waited) * 1e6)
        else:
            request = self._idle.get_nowait()
            self._metrics.wait_time.observe(0)
        future: asyncio.Future[dict[str, np.ndarray]] = self._loop.create_future()
        names = outputs or list(self._output_index)
        request.set_callback(self._on_done_thread, (request, future, names, time.perf_counter()))
        try:
            request.start_async(dict(inputs), share_inputs=True)
        except Exception as exc:
            self._idle.put_nowait(request)
            raise InvalidArgument(f"OpenVINO rejected the inputs: {first_line(exc)}") from exc
        self._metrics.active.inc()
        return await future

    def close(self) -> None:
        """Drop the infer requests. Each holds its callback, which holds this pool: a reference
        cycle through C++ that Python's collector cannot see, so without this the compiled
        model would never be freed."""
        for request in self._requests:
            request.set_callback(_ignore, None)
        self._requests.clear()
        while not self._idle.empty():
            self._idle.get_nowait()

    @property
    def idle(self) -> int:
        """Infer requests not running now."""
        return self._idle.qsize()

    async def _wait_for_request(self) -> ov.InferRequest:
        if self._waiting >= self.max_queued:
            raise Overloaded(
                f"{self._label}: {self._waiting} requests already wait for one of {self.size} infer requests "
                f"(--max_queued_requests {self.max_queued})"
            )
        self._waiting += 1
        try:
            return await self._idle.get()
        finally:
            self._waiting -= 1

    def _read_output(self, request: ov.InferRequest, index: int) -> np.ndarray:
        tensor = request.get_output_tensor(index)
        if index in self._string_outputs:
            return tensor.bytes_data.astype(object)
        # one copy into an immutable buffer that the encoder can send as it is (see tensors.to_raw)
        data = tensor.data
        return np.frombuffer(data.tobytes(), dtype=data.dtype).reshape(data.shape)

    def _on_done_thread(self, userdata: tuple[ov.InferRequest, asyncio.Future, Sequence[str], float]) -> None:
        request, future, names, started = userdata
        self._loop.call_soon_threadsafe(self._complete, request, future, names, time.perf_counter() - started)

    def _complete(self, request: ov.InferRequest, future: asyncio.Future, names: Sequence[str], took: float) -> None:
        self._metrics.inference_time.observe(took * 1e6)
        self._metrics.active.dec()
        try:
            if not future.done():
                outputs = {name: self._read_output(request, self._output_index[name]) for name in names}
                future.set_result(outputs)
        except Exception as exc:  # an output that cannot be read is an inference failure
            log.exception("reading outputs failed")
            if not future.done():
                future.set_exception(ServingError(first_line(exc), kind_name="OV_INTERNAL_INFERENCE_ERROR"))
        finally:
            self._idle.put_nowait(request)


def _ignore(userdata: object) -> None:
    """A callback that keeps nothing alive."""


class Servable:
    """A compiled, ready-to-serve model version."""

    def __init__(
        self,
        name: str,
        version: int,
        loaded: LoadedModel,
        max_queued: int = 1024,
        auto_shape: bool = False,
        metrics: ServableMetrics | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.loaded = loaded
        self.auto_shape = auto_shape
        """Configured with shape or batch_size "auto": a request of another shape reloads it (as OVMS)."""
        compiled = loaded.compiled
        nireq = loaded.nireq
        self.inputs = [tensor_spec(port, port.any_name) for port in compiled.inputs]
        self.outputs = [tensor_spec(port, port.any_name) for port in compiled.outputs]
        self.input_by_name = {spec.name: spec for spec in self.inputs}
        self.nireq = nireq
        self._in_flight = 0
        self._drained: asyncio.Event | None = None
        self.metrics = metrics or ServableMetrics()
        label = f'model "{name}" version {version}'
        self.pool = InferencePool(compiled, nireq, [s.name for s in self.outputs], max_queued, label, self.metrics)

    async def infer(self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """Infer; ``outputs`` names the outputs wanted (all when empty), already validated."""
        prepared = {}
        for name, array in inputs.items():
            if array.dtype == object:
                array = np.array(list(array.reshape(-1)), dtype=np.bytes_).reshape(array.shape)
            prepared[name] = array
        self._in_flight += 1
        self.metrics.current_requests.inc()
        try:
            return await self.pool.infer(prepared, outputs)
        finally:
            self._in_flight -= 1
            self.metrics.current_requests.dec()
            if self._in_flight == 0 and self._drained is not None:
                self._drained.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def drain(self) -> None:
        """Wait until the requests already running on this version have finished."""
        if self._in_flight:
            self._drained = asyncio.Event()
            await self._drained.wait()

    async def release(self) -> None:
        """Finish in-flight requests, then free the infer requests (and so the compiled model)."""
        await self.drain()
        self.pool.close()
