"""ovms.generation.v1 over gRPC with stubs generated from our protos, on a tiny random LLM."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest

from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as kserve_pb
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as kserve_grpc
from ovms_grpc_client.genproto.ovms.admin.v1 import admin_pb2, admin_pb2_grpc
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as pb
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2_grpc as pb_grpc
from tests.server_process import ServerProcess


@pytest.fixture(scope="module")
def server(server_factory, llm_dir: Path) -> ServerProcess:
    return server_factory("--task", "text_generation", "--model_path", str(llm_dir), "--model_name", "llm")


@pytest.fixture(scope="module")
def channel(server: ServerProcess):
    with grpc.insecure_channel(server.address) as channel:
        yield channel


@pytest.fixture()
def stub(channel) -> pb_grpc.GenerationServiceStub:
    return pb_grpc.GenerationServiceStub(channel)


def engine_properties(channel) -> dict[str, str]:
    status = admin_pb2_grpc.AdminServiceStub(channel).GetServerStatus(admin_pb2.GetServerStatusRequest())
    return dict(status.models["llm"].model_version_status[0].properties)


def complete(stub, prompt: str = "hello world", **sampling) -> tuple[list[str], list[pb.CompleteResponse]]:
    request = pb.CompleteRequest(model="llm", prompt=prompt, sampling=pb.SamplingParams(**sampling), include_usage=True)
    chunks = list(stub.Complete(request))
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    return [texts[i] for i in sorted(texts)], chunks


def test_completion_streams_until_max_tokens_with_exact_usage(stub) -> None:
    (text,), chunks = complete(stub, max_tokens=8)
    assert text and text.isascii()
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == pb.FINISH_REASON_LENGTH and set(finishes[:-1]) == {pb.FINISH_REASON_UNSPECIFIED}
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage.completion_tokens == 8 and usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + 8
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("cmpl-")
    assert all(c.system_fingerprint and c.model == "llm" for c in chunks)
    (again,), _ = complete(stub, max_tokens=8)
    assert again == text  # greedy decoding is deterministic


def test_chat_applies_the_template_and_starts_with_the_role(stub) -> None:
    request = pb.ChatRequest(
        model="llm", messages=[pb.ChatMessage(role="user", content="hi there")],
        sampling=pb.SamplingParams(max_tokens=6), include_usage=True,
    )  # fmt: skip
    chunks = list(stub.Chat(request))
    assert chunks[0].choices[0].role == "assistant"
    assert chunks[0].id.startswith("chatcmpl-")
    assert "".join(c.choices[0].content for c in chunks if c.choices)
    assert chunks[-1].usage.completion_tokens == 6
    assert chunks[-1].usage.prompt_tokens > 5  # the ChatML template wraps the message


def test_seed_makes_sampling_repeatable(stub) -> None:
    first, _ = complete(stub, max_tokens=16, temperature=1.5, seed=7)
    second, _ = complete(stub, max_tokens=16, temperature=1.5, seed=7)
    other, _ = complete(stub, max_tokens=16, temperature=1.5, seed=8)
    assert first == second and first != other


def test_stop_string_ends_generation(stub) -> None:
    (text,), _ = complete(stub, max_tokens=24)
    word = text.split()[2]
    (stopped,), chunks = complete(stub, max_tokens=24, stop=[word])
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == pb.FINISH_REASON_STOP
    assert word not in stopped and text.startswith(stopped)


def test_n_gives_several_choices(stub) -> None:
    texts, chunks = complete(stub, max_tokens=6, n=3, temperature=1.5, seed=1)
    assert len(texts) == 3 and len(set(texts)) > 1
    assert chunks[-1].usage.completion_tokens == 18


def test_two_streams_interleave(stub) -> None:
    order: list[str] = []
    lock = threading.Lock()

    def consume(name: str) -> None:
        request = pb.CompleteRequest(
            model="llm", prompt=name, sampling=pb.SamplingParams(max_tokens=64, ignore_eos=True)
        )
        for _ in stub.Complete(request):
            with lock:
                order.append(name)

    threads = [threading.Thread(target=consume, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert order.count("a") == order.count("b") == 64
    first_b, last_a = order.index("b"), len(order) - 1 - order[::-1].index("a")
    assert first_b < last_a  # b started before a finished: the engine batched them


def test_cancelled_stream_frees_its_slot(stub, channel) -> None:
    call = stub.Complete(pb.CompleteRequest(model="llm", prompt="long", sampling=pb.SamplingParams(max_tokens=2000)))
    for _, _chunk in zip(range(3), call, strict=False):
        pass
    assert engine_properties(channel)["RUNNING_REQUESTS"] == "1"
    call.cancel()
    deadline = time.monotonic() + 30
    while engine_properties(channel)["RUNNING_REQUESTS"] != "0" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine_properties(channel)["RUNNING_REQUESTS"] == "0"


@pytest.mark.parametrize(
    ("sampling", "message"),
    [
        ({"temperature": 2.5}, "temperature out of range(0.0, 2.0): 2.5"),
        ({"top_p": 1.5}, "top_p out of range(0.0, 1.0): 1.5"),
        ({"top_k": 0}, "top_k must be -1 (all tokens) or a positive integer: 0"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop accepts at most 4 strings, got 5"),
        ({"max_tokens": 0}, "max_tokens must be greater than 0"),
    ],
)
def test_bad_sampling_is_invalid_argument(stub, sampling: dict, message: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        complete(stub, **sampling)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and message in info.value.details()


def test_other_apis_see_the_model(stub, channel) -> None:
    kserve = kserve_grpc.GRPCInferenceServiceStub(channel)
    assert kserve.ModelReady(kserve_pb.ModelReadyRequest(name="llm")).ready
    with pytest.raises(grpc.RpcError) as info:
        kserve.ModelInfer(kserve_pb.ModelInferRequest(model_name="llm"))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert 'model "llm" serves text_generation' in info.value.details()
    models = stub.ListModels(pb.ListModelsRequest()).models
    assert [(m.id, m.task, m.owned_by) for m in models] == [("llm", "text_generation", "OVMS")]
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Chat(pb.ChatRequest(model="llm")))
    assert (
        info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "messages must not be empty" in info.value.details()
    )


def test_engine_runs_in_another_process_and_is_restarted_when_it_dies(stub, channel, server) -> None:
    properties = engine_properties(channel)
    pid = int(properties["ENGINE_PID"])
    assert pid not in (os.getpid(), server.process.pid)
    call = stub.Complete(
        pb.CompleteRequest(model="llm", prompt="x", sampling=pb.SamplingParams(max_tokens=2000, ignore_eos=True))
    )
    next(iter(call))
    kserve = kserve_grpc.GRPCInferenceServiceStub(channel)
    assert kserve.ModelReady(kserve_pb.ModelReadyRequest(name="llm")).ready
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(grpc.RpcError) as info:
        for _ in call:
            pass
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert 'the engine of model "llm" stopped' in info.value.details()
    readiness = []  # health says so: the model is not ready while its engine is down
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        readiness.append(kserve.ModelReady(kserve_pb.ModelReadyRequest(name="llm")).ready)
        properties = engine_properties(channel)
        if properties["ENGINE_ALIVE"] == "YES":
            break
        time.sleep(0.02)
    assert False in readiness and kserve.ModelReady(kserve_pb.ModelReadyRequest(name="llm")).ready
    assert properties["ENGINE_RESTARTS"] == "1" and int(properties["ENGINE_PID"]) != pid
    (text,), _ = complete(stub, max_tokens=4)
    assert text
    assert server.process.poll() is None  # the server itself never exits


def test_config_json_entry_with_graph_pbtxt_serves_the_llm(server_factory, demo_repo: Path) -> None:
    """OVMS's layout: a config.json entry whose folder holds graph.pbtxt is a generative model."""
    server = server_factory("--config_path", str(demo_repo / "config.json"))
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.GenerationServiceStub(channel)
        (text,), chunks = complete(stub, max_tokens=3)
        assert chunks[-1].usage.completion_tokens == 3
        kserve = kserve_grpc.GRPCInferenceServiceStub(channel)
        assert kserve.ModelReady(kserve_pb.ModelReadyRequest(name="dummy")).ready
        models = {m.id: m.task for m in stub.ListModels(pb.ListModelsRequest()).models}
    assert models == {
        "dummy": "inference", "llm": "text_generation", "resnet_like": "inference", "embed": "embeddings",
        "rerank": "rerank",
    }  # fmt: skip
