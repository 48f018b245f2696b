"""Bytes that are no valid request message, on every kind of RPC, get INVALID_ARGUMENT naming the
message type, a short rate-limited log line and no traceback; errors that echo a huge client
value stay short enough to travel (issue 12, points 3 and 5)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from ovms_grpc_client.errors import ERROR_KIND_KEY, MAX_DETAILS_CHARS
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.server_process import ServerProcess

#: Not a protobuf message: field 15 as a length-delimited field claiming 127 bytes that never come.
GARBAGE = b"\x7a\x7f\x01\x02\x03"

#: (method, message type it takes, request streaming, response streaming)
RPCS = [
    ("/inference.GRPCInferenceService/ModelInfer", "inference.ModelInferRequest", False, False),
    ("/inference.GRPCInferenceService/ModelMetadata", "inference.ModelMetadataRequest", False, False),
    ("/inference.GRPCInferenceService/ModelStreamInfer", "inference.ModelInferRequest", True, True),
    ("/tensorflow.serving.PredictionService/Predict", "tensorflow.serving.PredictRequest", False, False),
    ("/tensorflow.serving.ModelService/GetModelStatus", "tensorflow.serving.GetModelStatusRequest", False, False),
    ("/ovms.generation.v1.GenerationService/Chat", "ovms.generation.v1.ChatRequest", False, True),
    ("/ovms.admin.v1.AdminService/GetServerStatus", "ovms.admin.v1.GetServerStatusRequest", False, False),
    ("/grpc.health.v1.Health/Check", "grpc.health.v1.HealthCheckRequest", False, False),
    ("/grpc.health.v1.Health/Watch", "grpc.health.v1.HealthCheckRequest", False, True),
    # served by the v1alpha classes (the same wire encoding)
    ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", ".ServerReflectionRequest", True, True),
]


@pytest.fixture(scope="module")
def server(server_factory) -> ServerProcess:
    return server_factory("--demo")


def send_raw(channel: grpc.Channel, method: str, requests: bool, responses: bool, payload: bytes) -> grpc.RpcError:
    identity = lambda data: data  # noqa: E731 - bytes go out as they are
    kinds = {(False, False): channel.unary_unary, (False, True): channel.unary_stream,
             (True, False): channel.stream_unary, (True, True): channel.stream_stream}  # fmt: skip
    kind = kinds[(requests, responses)]
    call = kind(method, request_serializer=identity, response_deserializer=identity)
    request = iter([payload]) if requests else payload
    with pytest.raises(grpc.RpcError) as failure:
        answer = call(request, timeout=30)
        if responses:
            list(answer)
    return failure.value


@pytest.mark.parametrize(
    ("method", "type_name", "requests", "responses"), RPCS, ids=[r[0].split("/")[-1] for r in RPCS]
)
def test_undecodable_bytes_are_an_invalid_argument(
    server: ServerProcess, method: str, type_name: str, requests: bool, responses: bool
) -> None:
    with grpc.insecure_channel(server.address) as channel:
        for _ in range(3):
            error = send_raw(channel, method, requests, responses, GARBAGE)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, error)
            assert error.details().startswith("Invalid message structure - the request is not a valid "), (
                error.details()
            )
            assert type_name in error.details()
            assert dict(error.trailing_metadata() or ())[ERROR_KIND_KEY] == "INVALID_MESSAGE_STRUCTURE"
        # and the server still answers this RPC correctly
        if method.endswith("/Check"):
            from grpc_health.v1 import health_pb2, health_pb2_grpc

            status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30).status
            assert status == health_pb2.HealthCheckResponse.SERVING
    log = server.log
    assert "Traceback" not in log and "Unexpected <class" not in log
    lines = [line for line in log.splitlines() if f"{method}: undecodable request" in line]
    assert 1 <= len(lines) <= 1, lines  # three in a row: one line (rate-limited)


def test_the_server_answers_correctly_after_garbage(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel:
        send_raw(channel, RPCS[0][0], False, False, GARBAGE)
        request = pb.ModelInferRequest(model_name="dummy", model_version="1")
        request.inputs.add(name="b", datatype="FP32", shape=[1, 10])
        request.raw_input_contents.append(np.arange(10, dtype=np.float32).tobytes())
        answer = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
        assert np.frombuffer(answer.raw_output_contents[0], np.float32).tolist() == [float(i + 1) for i in range(10)]


def test_a_huge_echoed_value_is_cut_and_the_error_still_arrives(server: ServerProcess) -> None:
    """A 10,000-character input name is named in the error, cut, so the status fits gRPC's metadata
    limit: the client reads INVALID_ARGUMENT, not RESOURCE_EXHAUSTED."""
    name = "x" * 10_000
    request = pb.ModelInferRequest(model_name="dummy")
    request.inputs.add(name=name, datatype="FP32", shape=[1, 10])
    request.raw_input_contents.append(np.zeros(10, np.float32).tobytes())
    with grpc.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.RpcError) as failure:
            pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    error = failure.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert "more characters)" in error.details()
    assert len(error.details()) < MAX_DETAILS_CHARS + 200
