"""Inference over every API: the one path a KServe infer and a TFS predict take.

A servicer decodes its wire message into an `InferRequest` (names, shapes, and the tensor decode,
which needs the servable's specs), calls `Inference.infer` and encodes the `InferResult`. Here,
once for every API: the lookup, which holds the version from that moment (a version retired or
reloaded meanwhile finishes this request first), auto-shape, input and output name checks,
decoding, image decoding (off the loop), inference and the request metrics.

Deadlines and cancellation: the server interceptor cancels a request whose deadline passed; the
cancellation unwinds through here and frees what the request held (its wait-queue slot, its
infer request, its hold on the version).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from ovms_grpc.images import PendingImages, decode_images_async
from ovms_grpc.models.manager import ModelManager, ModelVersion
from ovms_grpc.models.servable import Servable
from ovms_grpc_client.errors import ModelNotReady
from ovms_grpc_client.tensors import TensorSpec, validate_input_names, validate_output_names


@dataclass(frozen=True)
class ModelRef:
    """A model and the version asked for (None: the default, the highest available)."""

    name: str
    version: int | None = None


class DecodedInputs(NamedTuple):
    arrays: dict[str, np.ndarray]
    """Inputs decoded and checked against their specs."""
    images: list[PendingImages]
    """Encoded images still to decode (off the event loop)."""


class InferRequest(Protocol):
    """What a servicer's codec makes of one wire request."""

    @property
    def model(self) -> ModelRef: ...

    @property
    def input_names(self) -> Sequence[str]: ...

    @property
    def output_names(self) -> Sequence[str]:
        """The outputs asked for; empty for all."""
        ...

    def input_shapes(self) -> Mapping[str, Sequence[int]]:
        """The shapes of the numeric inputs as sent (what auto-shape fits the model to)."""
        ...

    def decode(self, servable: Servable) -> DecodedInputs:
        """The inputs as arrays, after every check against ``servable``'s specs (names already checked)."""
        ...


@dataclass(frozen=True)
class Caller:
    """Who asked, for the request metrics: API family, interface (gRPC or REST) and method."""

    api: str
    interface: str
    method: str


@dataclass
class InferResult:
    name: str
    version: int
    outputs: dict[str, np.ndarray]


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    version: int
    versions: list[int]
    """Every AVAILABLE version."""
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


class Inference:
    """Inference, metadata, readiness and status of the models the manager serves."""

    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    async def infer(self, request: InferRequest, caller: Caller) -> InferResult:
        started = time.perf_counter()
        async with self._manager.acquire(request.model.name, request.model.version) as servable:
            if not servable.auto_shape:
                return await self._infer(servable, request, caller, started)
            fitted = await self._manager.fit_shapes(servable, request.input_shapes())
            if fitted is servable:
                return await self._infer(servable, request, caller, started)
            with fitted.hold():  # reshaped for this request: held before the next await, as a lookup
                return await self._infer(fitted, request, caller, started)

    @staticmethod
    async def _infer(servable: Servable, request: InferRequest, caller: Caller, started: float) -> InferResult:
        ok = False
        try:
            validate_input_names(servable.name, servable.version, servable.inputs, request.input_names)
            outputs = request.output_names
            validate_output_names(servable.name, servable.version, servable.outputs, outputs)
            arrays, images = request.decode(servable)
            for spec, items, shape in images:
                arrays[spec.name] = await decode_images_async(spec, items, shape)
            result = InferResult(servable.name, servable.version, await servable.infer(arrays, outputs))
            ok = True
            return result
        finally:
            servable.metrics.request_done(caller.api, caller.interface, caller.method, ok, started)

    def metadata(self, model: ModelRef) -> ModelMetadata:
        """The tensors of an AVAILABLE version (without waiting for one that loads, as OVMS)."""
        servable = self._manager.loaded_servable(model.name, model.version)
        return ModelMetadata(
            name=model.name,
            version=servable.version,
            versions=self._manager.entry(model.name).available(),
            inputs=servable.inputs,
            outputs=servable.outputs,
        )

    def ready(self, model: ModelRef) -> bool:
        """Whether the version serves now; a model with no version loaded is not ready (not an error)."""
        try:
            return self._manager.version(model.name, model.version).ready
        except ModelNotReady:
            return False

    def status(self, model: ModelRef) -> list[ModelVersion]:
        """The asked version, or every version the model has had, in version order."""
        entry = self._manager.entry(model.name)
        if model.version:
            return [self._manager.version(model.name, model.version)]
        return sorted(entry.versions.values(), key=lambda record: record.version)
