"""The grpc.aio server in the test process, on an asyncio loop in debug mode."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from pathlib import Path

import grpc
import numpy as np
import openvino as ov
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ovms_grpc.models import manager as manager_module
from ovms_grpc.models.config import LoadOptions, ModelConfig
from ovms_grpc.models.policy import VersionPolicy
from ovms_grpc.server import ModelServer
from ovms_grpc.settings import ServerConfig
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as pb_grpc
from tests import models
from tests.component.loop import run

#: One OpenVINO core for every server here, made at import: creating one takes long enough
#: (hundreds of ms on a loaded machine) to trip the blocked-loop detector if done on the loop.
CORE = ov.Core()


def make_server(repo: Path, name: str = "dummy", nireq: int = 0, plugin_config: dict | None = None) -> ModelServer:
    """A server on a free loopback port; ``plugin_config`` may leave a core to the event loop (2-core machines)."""
    config = ServerConfig(
        models=(ModelConfig(name, repo, LoadOptions(nireq=nireq, plugin_config=plugin_config), VersionPolicy("all")),),
        port=0,
        bind_addresses=("127.0.0.1",),
        shutdown_grace_seconds=1.0,
    )
    return ModelServer(config, core=CORE)


def outcomes(calls: list[grpc.Future], timeout: float = 60) -> list:
    """Each call's response, or its RpcError (waited for in the client's thread)."""
    found = []
    for call in calls:
        try:
            found.append(call.result(timeout=timeout))
        except grpc.RpcError as exc:
            found.append(exc)
    return found


def dummy_request(value: float, version: str = "") -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="dummy", model_version=version, id=str(value))
    request.inputs.add(name="b", datatype="FP32", shape=[1, 10])
    request.raw_input_contents.append(np.full((1, 10), value, np.float32).tobytes())
    return request


def output_of(response: pb.ModelInferResponse) -> np.ndarray:
    return np.frombuffer(response.raw_output_contents[0], np.float32).reshape(response.outputs[0].shape)


@pytest.fixture()
def gated_compile(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Hold every model compile until the test sets the returned event."""
    gate = threading.Event()
    original = manager_module.load_model

    def load_when_released(*args, **kwargs):
        assert gate.wait(60), "test never released the compile gate"
        return original(*args, **kwargs)

    monkeypatch.setattr(manager_module, "load_model", load_when_released)
    return gate


def test_health_is_not_serving_until_models_load(dummy_repo: Path, gated_compile: threading.Event) -> None:
    async def scenario() -> None:
        server = make_server(dummy_repo)
        starting = asyncio.create_task(server.start())
        while not server.ports:
            await asyncio.sleep(0.01)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.ports[0]}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            kserve = pb_grpc.GRPCInferenceServiceStub(channel)
            for service in ("", "inference.GRPCInferenceService"):
                answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert not (await kserve.ServerReady(pb.ServerReadyRequest())).ready
            assert (await kserve.ServerLive(pb.ServerLiveRequest())).live
            # a request for a version still loading waits for it instead of failing
            pending = asyncio.ensure_future(kserve.ModelInfer(dummy_request(1.0, "1")))
            await asyncio.sleep(0.2)
            assert not pending.done()
            gated_compile.set()
            await starting
            np.testing.assert_array_equal(output_of(await pending), np.full((1, 10), 2.0))
            for service in ("", "inference.GRPCInferenceService"):
                answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert answer.status == health_pb2.HealthCheckResponse.SERVING
            assert (await kserve.ServerReady(pb.ServerReadyRequest())).ready
        await server.stop()

    run(scenario())


def test_two_hundred_concurrent_requests_all_answered_correctly(dummy_repo: Path) -> None:
    values = [float(i) for i in range(200)]
    requests = [dummy_request(v, "1") for v in values]

    async def scenario() -> None:
        server = make_server(dummy_repo, nireq=2)
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.ports[0]}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            calls = []
            for request in requests:
                calls.append(asyncio.ensure_future(stub.ModelInfer(request)))
                await asyncio.sleep(0)  # the client must not hold the loop that the server shares
            responses = await asyncio.gather(*calls)
        for value, response in zip(values, responses, strict=True):
            assert response.id == str(value)
            np.testing.assert_array_equal(output_of(response), np.full((1, 10), value + 1))
        await server.stop()

    run(scenario())


def test_cancelled_requests_return_their_infer_requests(tmp_path: Path) -> None:
    repo = models.save(models.build_add([-1, -1], 1.0, "dummy"), tmp_path / "big")

    async def scenario() -> None:
        server = make_server(repo, nireq=2)
        await server.start()
        servable = await server.manager.servable("dummy")
        big = pb.ModelInferRequest(model_name="dummy")
        big.inputs.add(name="b", datatype="FP32", shape=[512, 4096])
        big.raw_input_contents.append(np.ones((512, 4096), np.float32).tobytes())
        address = f"127.0.0.1:{server.ports[0]}"

        def send_and_cancel() -> list[bool]:  # the client's thread: 160 MB of requests to serialize
            with grpc.insecure_channel(address) as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)
                calls = [stub.ModelInfer.future(big) for _ in range(20)]
                return [call.cancel() for call in calls]  # the first ones may have been answered already

        cancelled = await asyncio.to_thread(send_and_cancel)
        assert any(cancelled), "no call was still running or waiting when cancelled"
        # every infer request comes back to the pool, and the model still answers
        for _ in range(200):
            if servable.pool.idle == servable.pool.size:
                break
            await asyncio.sleep(0.05)
        assert servable.pool.idle == servable.pool.size == 2

        def one() -> pb.ModelInferResponse:
            with grpc.insecure_channel(address) as channel:
                return pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(dummy_request(4.0), timeout=60)

        np.testing.assert_array_equal(output_of(await asyncio.to_thread(one)), np.full((1, 10), 5.0))
        await server.stop()

    run(scenario())


def test_errors_carry_their_kind_in_trailing_metadata(dummy_repo: Path) -> None:
    async def scenario() -> None:
        server = make_server(dummy_repo)
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.ports[0]}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            call = stub.ModelInfer(dummy_request(1.0, "9"))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            assert ("ovms-error-kind", "MODEL_VERSION_MISSING") in tuple(info.value.trailing_metadata())
        await server.stop()

    run(scenario())


def test_requests_past_the_queue_bound_are_resource_exhausted(demo_repo: Path) -> None:
    config = ServerConfig(
        models=(ModelConfig("resnet_like", demo_repo / "resnet_like", LoadOptions(nireq=1)),),
        port=0,
        bind_addresses=("127.0.0.1",),
        max_queued_requests=2,
    )
    image = pb.ModelInferRequest(model_name="resnet_like")
    image.inputs.add(name="input", datatype="FP32", shape=[1, 3, 224, 224])
    image.raw_input_contents.append(np.ones((1, 3, 224, 224), np.float32).tobytes())

    async def scenario() -> None:
        server = ModelServer(config, core=CORE)
        await server.start()

        def burst() -> tuple[list, pb.ModelInferResponse]:  # the client's own thread
            with grpc.insecure_channel(f"127.0.0.1:{server.ports[0]}") as channel:
                stub = pb_grpc.GRPCInferenceServiceStub(channel)
                answers = outcomes([stub.ModelInfer.future(image) for _ in range(30)])
                return answers, stub.ModelInfer(image, timeout=60)

        answers, after = await asyncio.to_thread(burst)
        rejected = [o for o in answers if isinstance(o, grpc.RpcError)]
        answered = [o for o in answers if isinstance(o, pb.ModelInferResponse)]
        assert len(rejected) + len(answered) == 30
        assert rejected and len(answered) >= 3  # one running and two queued at least
        for error in rejected:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert 'model "resnet_like" version 1: 2 requests already wait' in error.details()
            assert ("ovms-error-kind", "RESOURCE_EXHAUSTED") in tuple(error.trailing_metadata())
        assert len(after.raw_output_contents[0]) == 4000
        await server.stop()

    run(scenario())


def test_retired_version_finishes_requests_in_flight(tmp_path: Path) -> None:
    repo = tmp_path / "m"
    models.save(models.build_add([-1, -1], 1.0, "dummy"), repo, 1)
    models.save(models.build_add([-1, -1], 2.0, "dummy"), repo, 2)
    big = pb.ModelInferRequest(model_name="dummy", model_version="1")
    big.inputs.add(name="b", datatype="FP32", shape=[1024, 1024])
    big.raw_input_contents.append(np.zeros((1024, 1024), np.float32).tobytes())

    async def scenario() -> None:
        server = make_server(repo, nireq=2, plugin_config={"INFERENCE_NUM_THREADS": 1})
        await server.start()
        record = server.manager.entries["dummy"].versions[1]
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        channel = grpc.insecure_channel(f"127.0.0.1:{server.ports[0]}", options=options)  # used off the loop
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        calls = await asyncio.to_thread(lambda: [stub.ModelInfer.future(big) for _ in range(6)])
        while record.servable is None or record.servable.in_flight == 0:
            await asyncio.sleep(0.001)
        shutil.rmtree(repo / "1")
        rescan = asyncio.ensure_future(server.manager.rescan())
        # a version released before its in-flight requests finished would leave them hanging
        responses = await asyncio.to_thread(outcomes, calls)
        await rescan
        channel.close()
        answered = [r for r in responses if isinstance(r, pb.ModelInferResponse)]
        assert answered, responses  # the requests already running finished normally
        for response in answered:
            assert response.model_version == "1"
            assert np.frombuffer(response.raw_output_contents[0], np.float32)[:3].tolist() == [1.0] * 3
        for error in (r for r in responses if not isinstance(r, pb.ModelInferResponse)):
            assert error.code() == grpc.StatusCode.NOT_FOUND  # arrived after the version was retired
        assert record.state.name == "END"
        await server.stop()

    run(scenario())


def test_generation_never_blocks_the_event_loop(llm_dir: Path) -> None:
    """step() holds the GIL for a whole step: it must run in the engine process, not on this loop."""
    from ovms_grpc.models.config import GenaiOptions
    from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as gen_pb
    from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2_grpc as gen_grpc

    config = ServerConfig(
        models=(ModelConfig("llm", llm_dir, task="text_generation", genai=GenaiOptions()),),
        port=0,
        bind_addresses=("127.0.0.1",),
    )

    async def scenario() -> None:
        server = ModelServer(config, core=CORE)
        await server.start()
        generator = server.manager.generator("llm", "text_generation")
        assert generator.engine.pid not in (None, os.getpid())
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.ports[0]}") as channel:
            stub = gen_grpc.GenerationServiceStub(channel)

            async def stream(prompt: str) -> int:
                sampling = gen_pb.SamplingParams(max_tokens=48, ignore_eos=True)
                return len(
                    [
                        c
                        async for c in stub.Complete(
                            gen_pb.CompleteRequest(model="llm", prompt=prompt, sampling=sampling)
                        )
                    ]
                )

            assert await asyncio.gather(stream("a"), stream("b"), stream("c")) == [48, 48, 48]
        await server.stop()

    run(scenario())


def test_chat_parsers_split_reasoning_and_tool_calls(llm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny random model cannot write tool calls, so the engine's output is scripted here."""
    from ovms_grpc.genai import engine as engine_module
    from ovms_grpc.models.config import GenaiOptions
    from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as gen_pb
    from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2_grpc as gen_grpc

    text = (
        '<think>need weather</think>Checking. <tool_call>{"name": "weather", "arguments": {"city": "Oslo"}}</tool_call>'
    )
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]

    async def scripted(self, kind, payload, options):
        yield engine_module.Admitted(5)
        for index, piece in enumerate(pieces):
            yield engine_module.Delta(0, piece, 1, "stop" if index == len(pieces) - 1 else "")

    monkeypatch.setattr(engine_module.EngineProcess, "generate", scripted)
    options = GenaiOptions(tool_parser="hermes3", reasoning_parser="qwen3")
    config = ServerConfig(
        models=(ModelConfig("llm", llm_dir, task="text_generation", genai=options),),
        port=0,
        bind_addresses=("127.0.0.1",),
    )

    async def scenario() -> None:
        server = ModelServer(config, core=CORE)
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.ports[0]}") as channel:
            stub = gen_grpc.GenerationServiceStub(channel)
            request = gen_pb.ChatRequest(model="llm", messages=[gen_pb.ChatMessage(role="user", content="weather?")])
            chunks = [c async for c in stub.Chat(request)]
        await server.stop()
        choices = [c.choices[0] for c in chunks]
        assert "".join(c.reasoning_content for c in choices) == "need weather"
        assert "".join(c.content for c in choices) == "Checking. "
        calls = [call for c in choices for call in c.tool_calls]
        assert [(c.function_name, c.arguments) for c in calls] == [("weather", '{"city": "Oslo"}')]
        assert choices[-1].finish_reason == gen_pb.FINISH_REASON_TOOL_CALLS

    run(scenario())
