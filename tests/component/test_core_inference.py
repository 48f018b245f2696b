"""The protocol-neutral inference core over a real model manager, with requests made in the test
(no wire codec): admission and the version guard, cancellation, auto-shape, errors, metrics."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest

from ovms_grpc.core import inference as core_inference
from ovms_grpc.core.inference import Caller, DecodedInputs, Inference, ModelRef
from ovms_grpc.metrics import Metrics
from ovms_grpc.models.config import LoadOptions, ModelConfig
from ovms_grpc.models.manager import ModelManager, VersionState
from ovms_grpc.models.policy import VersionPolicy
from ovms_grpc.models.servable import Servable
from ovms_grpc_client.errors import InvalidArgument, ModelNotFound, ServingError, VersionNotFound
from tests import models
from tests.component.loop import run

CORE = ov.Core()  # made at import: creating a core on the loop can trip the blocked-loop detector
CALLER = Caller("KServe", "gRPC", "ModelInfer")


class Request:
    """An InferRequest as a codec would make it: arrays ready, or encoded images still to decode."""

    def __init__(
        self,
        model: ModelRef,
        inputs: Mapping[str, np.ndarray] | None = None,
        outputs: Sequence[str] = (),
        images: Mapping[str, list[bytes]] | None = None,
    ) -> None:
        self.model = model
        self._inputs = dict(inputs or {})
        self._images = dict(images or {})
        self.output_names = list(outputs)
        self.decoded = 0

    @property
    def input_names(self) -> list[str]:
        return [*self._inputs, *self._images]

    def input_shapes(self) -> dict[str, list[int]]:
        return {name: list(array.shape) for name, array in self._inputs.items()}

    def decode(self, servable: Servable) -> DecodedInputs:
        self.decoded += 1
        pending = [(servable.input_by_name[n], items, [len(items)]) for n, items in self._images.items()]
        return DecodedInputs(dict(self._inputs), pending)


def add_config(repo: Path, **load: object) -> ModelConfig:
    return ModelConfig("add", repo, LoadOptions(**load), VersionPolicy("all"))  # type: ignore[arg-type]


def add_repo(tmp_path: Path, versions: Sequence[int] = (1,), shape: list | None = None) -> Path:
    repo = tmp_path / "add"
    for version in versions:
        models.save(models.build_add(shape or [-1, -1], float(version), "add"), repo, version)
    return repo


def ones(shape: Sequence[int] = (1, 4)) -> dict[str, np.ndarray]:
    return {"b": np.ones(shape, np.float32)}


def test_a_version_retired_after_lookup_still_answers_its_admitted_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request is held from its lookup: the version is retired while its images decode, and
    the retirement waits for it; the answer comes from the version that admitted it."""
    repo = tmp_path / "img"
    models.save(models.build_image_echo([-1, 2, 2, 3]), repo, 1)
    image = cv2.imencode(".png", np.full((2, 2, 3), 7, np.uint8))[1].tobytes()
    decoding = asyncio.Event()
    proceed = asyncio.Event()
    real_decode = core_inference.decode_images_async

    async def slow_decode(spec, items, shape):  # type: ignore[no-untyped-def]
        decoding.set()
        await proceed.wait()
        return await real_decode(spec, items, shape)

    monkeypatch.setattr(core_inference, "decode_images_async", slow_decode)

    async def scenario() -> None:
        manager = ModelManager(CORE)
        await manager.apply([ModelConfig("img", repo)])
        inference = Inference(manager)
        record = manager.entries["img"].versions[1]
        request = Request(ModelRef("img"), images={"image": [image]})
        answer = asyncio.ensure_future(inference.infer(request, CALLER))
        await decoding.wait()  # looked up and held; not inferred yet
        retire = asyncio.ensure_future(manager.apply([]))
        while record.state != VersionState.UNLOADING:
            await asyncio.sleep(0)
        assert not retire.done()  # waits for the request it admitted
        proceed.set()
        result = await answer
        await retire
        assert (result.name, result.version) == ("img", 1)
        assert result.outputs["pixels"].reshape(-1).tolist() == [7.0] * 12
        assert record.state == VersionState.END
        with pytest.raises(ServingError) as removed:  # later requests: the model was removed
            await inference.infer(Request(ModelRef("img"), images={"image": [image]}), CALLER)
        assert removed.value.kind.name == "MODEL_VERSION_NOT_LOADED_ANYMORE"
        await manager.close()

    run(scenario())


def test_a_cancelled_request_gives_back_its_hold_and_its_queue_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deadline or a client that went away cancels the request: the version it held can retire.
    (Cancellation in the wait queue and in OpenVINO: test_server_component.)"""
    repo = add_repo(tmp_path)
    started = asyncio.Event()
    never = asyncio.Event()

    async def stuck_decode(spec, items, shape):  # type: ignore[no-untyped-def]
        started.set()
        await never.wait()

    monkeypatch.setattr(core_inference, "decode_images_async", stuck_decode)

    async def scenario() -> None:
        manager = ModelManager(CORE)
        await manager.apply([add_config(repo, nireq=1)])
        inference = Inference(manager)
        record = manager.entries["add"].versions[1]
        servable = record.servable
        assert isinstance(servable, Servable)

        # held while decoding: cancelled there
        images = Request(ModelRef("add"), inputs={}, images={"b": [b"x"]})
        stuck = asyncio.ensure_future(inference.infer(images, CALLER))
        await started.wait()
        assert servable.in_flight == 1
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        assert servable.in_flight == 0 and servable.pool.idle == 1

        again = await inference.infer(Request(ModelRef("add"), ones()), CALLER)
        assert again.outputs[next(iter(again.outputs))].reshape(-1).tolist() == [2.0] * 4
        await manager.apply([])  # nothing holds it any more: retires at once
        assert record.state == VersionState.END
        await manager.close()

    run(scenario())


def test_auto_shape_reshapes_for_the_request_and_keeps_the_request_held(tmp_path: Path) -> None:
    repo = add_repo(tmp_path, shape=[1, 4])

    async def scenario() -> None:
        manager = ModelManager(CORE)
        await manager.apply([add_config(repo, shapes=(("b", "auto"),))])
        assert manager.entries["add"].versions[1].servable.inputs[0].shape == [1, 4]  # type: ignore[union-attr]
        inference = Inference(manager)
        first = manager.entries["add"].versions[1].servable
        result = await inference.infer(Request(ModelRef("add"), ones((3, 5))), CALLER)
        (output,) = result.outputs.values()
        assert output.shape == (3, 5) and output.reshape(-1).tolist() == [2.0] * 15
        reshaped = manager.entries["add"].versions[1].servable
        assert reshaped is not first and isinstance(reshaped, Servable)
        assert reshaped.in_flight == 0
        assert [spec.shape for spec in inference.metadata(ModelRef("add")).inputs] == [[3, 5]]
        await manager.close()

    run(scenario())


def test_errors_name_the_problem_and_count_as_failures(tmp_path: Path) -> None:
    repo = add_repo(tmp_path, versions=(1, 2))

    async def scenario() -> None:
        metrics = Metrics()
        manager = ModelManager(CORE, metrics=metrics)
        await manager.apply([add_config(repo)])
        inference = Inference(manager)
        with pytest.raises(ModelNotFound, match='model "nope" not found .*add'):
            await inference.infer(Request(ModelRef("nope"), ones()), CALLER)
        with pytest.raises(VersionNotFound, match="available versions: 1, 2"):
            await inference.infer(Request(ModelRef("add", 7), ones()), CALLER)
        with pytest.raises(ServingError) as unknown_output:
            await inference.infer(Request(ModelRef("add"), ones(), outputs=["nothing"]), CALLER)
        assert "nothing" in unknown_output.value.details
        with pytest.raises(ServingError) as unknown_input:
            await inference.infer(Request(ModelRef("add"), {"c": np.ones((1, 4), np.float32)}), CALLER)
        assert "c" in unknown_input.value.details and unknown_input.value.kind.grpc_code != "INTERNAL"
        ok = await inference.infer(Request(ModelRef("add", 1), ones()), CALLER)
        assert (ok.version, next(iter(ok.outputs.values())).reshape(-1)[0]) == (1, 2.0)
        default = await inference.infer(Request(ModelRef("add"), ones()), CALLER)
        assert (default.version, next(iter(default.outputs.values())).reshape(-1)[0]) == (2, 3.0)
        text = metrics.text()
        success = [line for line in text.splitlines() if line.startswith("ovms_requests_success{")]
        fail = [line for line in text.splitlines() if line.startswith("ovms_requests_fail{")]
        assert any('name="add"' in line and 'version="2"' in line and 'method="ModelInfer"' in line
                   and line.endswith(" 1") for line in success), success  # fmt: skip
        # the version was looked up for the output and input checks: both counted as failures of v2
        assert any('version="2"' in line and 'method="ModelInfer"' in line and line.endswith(" 2") for line in fail)
        assert inference.ready(ModelRef("add"))
        with pytest.raises(VersionNotFound):
            inference.ready(ModelRef("add", 3))
        await manager.close()

    run(scenario())


def test_metadata_ready_and_status_over_the_version_lifecycle(tmp_path: Path) -> None:
    repo = add_repo(tmp_path, versions=(1,))

    async def scenario() -> None:
        manager = ModelManager(CORE)
        inference = Inference(manager)
        await manager.apply([add_config(repo)])
        assert inference.ready(ModelRef("add"))
        assert [r.state for r in inference.status(ModelRef("add"))] == [VersionState.AVAILABLE]
        models.save(models.build_add([-1, -1], 2.0, "add"), repo, 2)
        await manager.rescan()
        assert [(r.version, r.state) for r in inference.status(ModelRef("add"))] == [
            (1, VersionState.AVAILABLE),
            (2, VersionState.AVAILABLE),
        ]
        assert inference.metadata(ModelRef("add")).versions == [1, 2]
        assert inference.metadata(ModelRef("add")).version == 2
        shutil.rmtree(repo / "2")
        await manager.rescan()
        assert [(r.version, r.state) for r in inference.status(ModelRef("add"))] == [
            (1, VersionState.AVAILABLE),
            (2, VersionState.END),
        ]
        assert not inference.ready(ModelRef("add", 2))
        with pytest.raises(ServingError) as retired:
            inference.metadata(ModelRef("add", 2))
        assert retired.value.kind.name == "MODEL_VERSION_NOT_LOADED_ANYMORE"
        with pytest.raises(InvalidArgument):
            await inference.infer(Request(ModelRef("add"), {"b": np.ones((2,), np.int64)}), CALLER)
        await manager.close()

    run(scenario())
