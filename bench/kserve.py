"""KServe v2 pieces the scenarios share: the method path, request building, one checked call."""

from __future__ import annotations

import grpc
import numpy as np

from bench.load import CHANNEL_OPTIONS
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as pb_grpc

MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"

_DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.uint8): "UINT8", np.dtype(np.int64): "INT64"}


def infer_request(model: str, inputs: dict[str, np.ndarray], version: str = "") -> pb.ModelInferRequest:
    """A ModelInferRequest carrying each array in ``raw_input_contents``, as tritonclient sends it."""
    request = pb.ModelInferRequest(model_name=model, model_version=version)
    for name, array in inputs.items():
        request.inputs.add(name=name, datatype=_DATATYPES[array.dtype], shape=array.shape)
        request.raw_input_contents.append(np.ascontiguousarray(array).tobytes())
    return request


def infer_once(target: str, request: pb.ModelInferRequest, timeout: float = 60.0) -> pb.ModelInferResponse:
    """One ModelInfer call through the generated stub, to check a target before loading it."""
    with grpc.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        return pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=timeout)


def output_array(response: pb.ModelInferResponse, name: str) -> np.ndarray:
    """An FP32 output of a response, shaped as the response says."""
    for index, tensor in enumerate(response.outputs):
        if tensor.name == name:
            if tensor.datatype != "FP32":
                raise ValueError(f"output {name}: expected FP32, got {tensor.datatype}")
            return np.frombuffer(response.raw_output_contents[index], np.float32).reshape(tuple(tensor.shape))
    raise ValueError(f"output {name} missing; got {[tensor.name for tensor in response.outputs]}")
