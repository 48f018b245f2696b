"""Client deadlines end RPCs with DEADLINE_EXCEEDED and free what the handler held (real server process).

Over REST there is no such test: the gateway sets no gRPC deadline from an HTTP request (it offers
no per-request timeout), so an HTTP client's timeout reaches the server only as a cancellation.
"""

from __future__ import annotations

import time

import grpc
import numpy as np
import openvino as ov
import openvino.opset13 as op
import pytest

from ovms_grpc_client.errors import ERROR_KIND_KEY
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as kserve_pb
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as kserve_grpc
from ovms_grpc_client.genproto.ovms.admin.v1 import admin_pb2, admin_pb2_grpc
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as pb
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2_grpc as pb_grpc
from tests import models
from tests.server_process import ServerProcess

#: Square matrix products on the input: about a second per inference on a 2-core CPU, no big weights.
SLOW_LAYERS = 50
#: In f32: a CPU with AMX runs the default bf16 matmuls of `build_slow` in under 10 ms (180 ms in f32).
SLOW_PLUGIN_CONFIG = '{"INFERENCE_PRECISION_HINT": "f32"}'


def build_slow() -> ov.Model:
    """FP32 ``x`` [1,2048] -> ``y`` [1,512]: the input as a 512x512 matrix, squared ``SLOW_LAYERS`` times."""
    x = op.parameter([1, 2048], np.float32, name="x")
    matrix = op.reshape(op.tile(x, op.constant(np.array([128, 1], np.int64))), op.constant([512, 512]), False)
    scale = op.constant(np.float32(1 / 512))
    for _ in range(SLOW_LAYERS):
        matrix = op.tanh(op.multiply(op.matmul(matrix, matrix, False, False), scale))
    result = op.reduce_mean(matrix, op.constant([0]), True)
    result.output(0).get_tensor().set_names({"y"})
    return ov.Model([result], [x], "slow")


def slow_request() -> kserve_pb.ModelInferRequest:
    request = kserve_pb.ModelInferRequest(model_name="slow")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 2048])
    request.raw_input_contents.append(np.full((1, 2048), 0.5, np.float32).tobytes())
    return request


def expect_deadline_exceeded(error: grpc.RpcError) -> None:
    """DEADLINE_EXCEEDED, and when the server's status won the race with the client's timer, its kind."""
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error
    if error.details().startswith("Deadline exceeded - "):
        assert dict(error.trailing_metadata() or ())[ERROR_KIND_KEY] == "DEADLINE_EXCEEDED"


@pytest.fixture(scope="module")
def slow_server(server_factory, tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    repo = models.save(build_slow(), tmp_path_factory.mktemp("slow") / "slow")
    return server_factory("--model_path", str(repo), "--model_name", "slow", "--nireq", "1", "--log_level", "DEBUG",
                          "--plugin_config", SLOW_PLUGIN_CONFIG)  # fmt: skip


def test_infer_past_its_deadline_frees_the_infer_request(slow_server: ServerProcess) -> None:
    with grpc.insecure_channel(slow_server.address) as channel:
        stub = kserve_grpc.GRPCInferenceServiceStub(channel)
        # the first one runs on the only infer request, the others wait for it: all end at their deadline
        calls = [stub.ModelInfer.future(slow_request(), timeout=0.05) for _ in range(3)]
        for call in calls:
            with pytest.raises(grpc.RpcError) as info:
                call.result()
            expect_deadline_exceeded(info.value)
        # the infer request came back to the pool: with it leaked, these would wait until their deadline
        for _ in range(2):
            response = stub.ModelInfer(slow_request(), timeout=60)
            assert response.outputs[0].name == "y" and list(response.outputs[0].shape) == [1, 512]
    log = slow_server.log
    assert "Traceback" not in log
    assert "/inference.GRPCInferenceService/ModelInfer request_id=" in log
    assert "status=DEADLINE_EXCEEDED" in log and "model=slow" in log


def running_requests(channel: grpc.Channel) -> str:
    status = admin_pb2_grpc.AdminServiceStub(channel).GetServerStatus(admin_pb2.GetServerStatusRequest(), timeout=30)
    return dict(status.models["llm"].model_version_status[0].properties)["RUNNING_REQUESTS"]


def chat(max_tokens: int, ignore_eos: bool) -> pb.ChatRequest:
    request = pb.ChatRequest(model="llm", sampling=pb.SamplingParams(max_tokens=max_tokens, ignore_eos=ignore_eos))
    request.messages.add(role="user", content="tell me a long story")
    return request


def test_chat_past_its_deadline_is_aborted(server_factory) -> None:
    server = server_factory("--demo")
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.GenerationServiceStub(channel)
        call = stub.Chat(chat(1900, ignore_eos=True), timeout=0.5)
        received = 0
        with pytest.raises(grpc.RpcError) as info:
            for _ in call:
                received += 1
        expect_deadline_exceeded(info.value)
        assert received > 0  # it was generating (the role chunk at least) when the deadline passed
        # the engine dropped the generation: nothing keeps running for a client that is gone
        give_up = time.monotonic() + 30
        while running_requests(channel) != "0" and time.monotonic() < give_up:
            time.sleep(0.05)
        assert running_requests(channel) == "0"
        chunks = list(stub.Chat(chat(4, ignore_eos=False), timeout=60))
        assert chunks[0].choices[0].role == "assistant"
        assert chunks[-1].choices[0].finish_reason in (pb.FINISH_REASON_STOP, pb.FINISH_REASON_LENGTH)
    assert "Traceback" not in server.log
