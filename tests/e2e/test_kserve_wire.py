"""KServe v2 wire details checked with stubs generated from our own protos."""

from __future__ import annotations

import struct
from pathlib import Path

import grpc
import numpy as np
import pytest

from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as pb_grpc
from tests import models
from tests.server_process import ServerProcess


@pytest.fixture(scope="module")
def dummy_server(server_factory, dummy_repo: Path) -> ServerProcess:
    return server_factory("--model_path", str(dummy_repo), "--model_name", "dummy")


@pytest.fixture()
def stub(dummy_server: ServerProcess):
    with grpc.insecure_channel(dummy_server.address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        yield stub
        # the server still answers correctly after whatever the test sent
        answer = stub.ModelInfer(raw_request(np.zeros((1, 10), np.float32)))
        np.testing.assert_array_equal(np.frombuffer(answer.raw_output_contents[0], np.float32), np.full(10, 2.0))


#: The KServe InferTensorContents field of each datatype (FP16 has none).
TYPED_FIELD = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def raw_request(data: np.ndarray, version: str = "") -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="dummy", model_version=version)
    request.inputs.add(name="b", datatype="FP32", shape=list(data.shape))
    request.raw_input_contents.append(data.tobytes())
    return request


def rpc_error(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value


def test_typed_contents_are_accepted(stub) -> None:
    request = pb.ModelInferRequest(model_name="dummy")
    tensor = request.inputs.add(name="b", datatype="FP32", shape=[1, 10])
    tensor.contents.fp32_contents.extend(range(10))
    response = stub.ModelInfer(request)
    assert response.outputs[0].datatype == "FP32" and list(response.outputs[0].shape) == [1, 10]
    np.testing.assert_array_equal(np.frombuffer(response.raw_output_contents[0], np.float32), np.arange(10) + 2)


def test_raw_content_of_wrong_size_is_rejected(stub) -> None:
    request = raw_request(np.zeros((1, 10), np.float32))
    request.raw_input_contents[0] = b"\0" * 36
    error = rpc_error(lambda: stub.ModelInfer(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        error.details() == "Invalid content size of tensor proto - Expected: 40 bytes; Actual: 36 bytes; input name: b"
    )


def test_value_count_mismatch_is_rejected(stub) -> None:
    request = pb.ModelInferRequest(model_name="dummy")
    request.inputs.add(name="b", datatype="FP32", shape=[1, 10]).contents.fp32_contents.extend(range(7))
    error = rpc_error(lambda: stub.ModelInfer(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Expected: 10 values; Actual: 7 values; input name: b" in error.details()


def test_contents_and_raw_together_are_rejected(stub) -> None:
    request = raw_request(np.zeros((1, 10), np.float32))
    request.inputs[0].contents.fp32_contents.extend(range(10))
    error = rpc_error(lambda: stub.ModelInfer(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "both in InferInputTensor contents and in raw_input_contents" in error.details()


def test_zero_dimension_is_rejected(stub) -> None:
    request = pb.ModelInferRequest(model_name="dummy")
    request.inputs.add(name="b", datatype="FP32", shape=[0, 10])
    request.raw_input_contents.append(b"")
    error = rpc_error(lambda: stub.ModelInfer(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Negative or zero dimension size is not acceptable: (0,10); input name: b" in error.details()


def test_version_that_is_not_a_number_is_invalid(stub) -> None:
    error = rpc_error(lambda: stub.ModelInfer(raw_request(np.zeros((1, 10), np.float32), version="latest")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("invalid model version format in request")
    error = rpc_error(lambda: stub.ModelReady(pb.ModelReadyRequest(name="dummy", version="x")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_model_ready_for_unknown_version_is_not_found(stub) -> None:
    error = rpc_error(lambda: stub.ModelReady(pb.ModelReadyRequest(name="dummy", version="5")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "available versions: 2" in error.details()
    assert stub.ModelReady(pb.ModelReadyRequest(name="dummy", version="2")).ready


def test_fp16_must_travel_as_raw_bytes(server_factory, tmp_path: Path) -> None:
    server = server_factory(
        "--model_path", str(models.save(models.build_identity_all_types(), tmp_path / "id")), "--model_name", "id"
    )
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        request = pb.ModelInferRequest(model_name="id")
        for name in models.DATATYPES:
            tensor = request.inputs.add(name=f"in_{name}", datatype=name, shape=[1, 3])
            if name == "BYTES":
                tensor.contents.bytes_contents.extend([b"a", b"bb", b""])
            elif name != "FP16":
                getattr(tensor.contents, TYPED_FIELD[name]).extend([1, 0, 1])
        error = rpc_error(lambda: stub.ModelInfer(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "FP16 data must be sent in raw_input_contents; input name: in_FP16" in error.details()


def test_bytes_raw_content_is_length_prefixed(server_factory, tmp_path: Path) -> None:
    server = server_factory(
        "--model_path", str(models.save(models.build_identity_all_types(), tmp_path / "id")), "--model_name", "id"
    )
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        request = pb.ModelInferRequest(
            model_name="id", outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="out_BYTES")]
        )
        for name, (_, dtype) in models.DATATYPES.items():
            request.inputs.add(name=f"in_{name}", datatype=name, shape=[1, 3])
            if name == "BYTES":
                items = [b"one", b"", b"three"]
                request.raw_input_contents.append(b"".join(struct.pack("<I", len(i)) + i for i in items))
            else:
                request.raw_input_contents.append(np.zeros((1, 3), dtype).tobytes())
        response = stub.ModelInfer(request)
        assert [o.name for o in response.outputs] == ["out_BYTES"]
        assert response.outputs[0].datatype == "BYTES"
        assert response.raw_output_contents[0] == request.raw_input_contents[-1]
        request.raw_input_contents[-1] = struct.pack("<I", 10) + b"abc"
        error = rpc_error(lambda: stub.ModelInfer(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "element of 10 bytes exceeds the buffer (3 left); input name: in_BYTES" in error.details()


def test_every_typed_contents_field_round_trips(server_factory, tmp_path: Path) -> None:
    typed = [name for name in models.DATATYPES if name != "FP16"]
    model = models.build_identity_all_types(typed)
    server = server_factory("--model_path", str(models.save(model, tmp_path / "id")), "--model_name", "id")
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        request = pb.ModelInferRequest(model_name="id")
        sent = {}
        for name in typed:
            tensor = request.inputs.add(name=f"in_{name}", datatype=name, shape=[2, 3])
            if name == "BYTES":
                # OpenVINO's Python string tensors drop trailing NUL bytes, so none end with one
                sent[name] = [b"a", b"bb", b"", b"\x00z", b"e", b"ff"]
                tensor.contents.bytes_contents.extend(sent[name])
            else:
                sent[name] = [True, False, True, True, False, False] if name == "BOOL" else [1, 0, 7, 3, 2, 100]
                getattr(tensor.contents, TYPED_FIELD[name]).extend(sent[name])
        response = stub.ModelInfer(request)
        for output, raw in zip(response.outputs, response.raw_output_contents, strict=True):
            name = output.name.removeprefix("out_")
            assert output.datatype == name and list(output.shape) == [2, 3]
            dtype = models.DATATYPES[name][1]
            if dtype is None:
                expected = b"".join(struct.pack("<I", len(item)) + item for item in sent[name])
                assert raw == expected
            else:
                np.testing.assert_array_equal(np.frombuffer(raw, dtype), np.array(sent[name], dtype), err_msg=name)


def test_mapping_config_renames_tensors(server_factory, tmp_path: Path) -> None:
    repo = models.write_dummy_repository(tmp_path / "mapped")
    (repo / "2" / "mapping_config.json").write_text('{"inputs": {"b": "data"}, "outputs": {"a": "sum"}}')
    server = server_factory("--model_path", str(repo), "--model_name", "dummy")
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="dummy"))
        assert [t.name for t in meta.inputs] == ["data"] and [t.name for t in meta.outputs] == ["sum"]
        request = pb.ModelInferRequest(model_name="dummy")
        request.inputs.add(name="data", datatype="FP32", shape=[1, 10])
        request.raw_input_contents.append(np.zeros((1, 10), np.float32).tobytes())
        answer = stub.ModelInfer(request)
        assert answer.outputs[0].name == "sum"
        np.testing.assert_array_equal(np.frombuffer(answer.raw_output_contents[0], np.float32), np.full(10, 2.0))
        request.inputs[0].name = "b"
        error = rpc_error(lambda: stub.ModelInfer(request))
        assert "Required input: data" in error.details()
