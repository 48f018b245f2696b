"""Small helpers over our generated KServe and admin stubs for e2e tests."""

from __future__ import annotations

import grpc
import numpy as np

from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as pb_grpc
from ovms_grpc_client.genproto.ovms.admin.v1 import admin_pb2, admin_pb2_grpc

DATATYPE = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64"}


class Client:
    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address)
        self.kserve = pb_grpc.GRPCInferenceServiceStub(self.channel)
        self.admin = admin_pb2_grpc.AdminServiceStub(self.channel)

    def infer(self, model: str, inputs: dict[str, np.ndarray], version: str = "", timeout: float = 30) -> dict:
        request = pb.ModelInferRequest(model_name=model, model_version=version)
        for name, array in inputs.items():
            request.inputs.add(name=name, datatype=DATATYPE[array.dtype], shape=list(array.shape))
            request.raw_input_contents.append(np.ascontiguousarray(array).tobytes())
        response = self.kserve.ModelInfer(request, timeout=timeout)
        return {
            out.name: np.frombuffer(raw, np.float32).reshape(out.shape)
            for out, raw in zip(response.outputs, response.raw_output_contents, strict=True)
        } | {"__version__": response.model_version}

    def metadata(self, model: str, version: str = "") -> pb.ModelMetadataResponse:
        return self.kserve.ModelMetadata(pb.ModelMetadataRequest(name=model, version=version))

    def status(self, model: str = "") -> admin_pb2.GetServerStatusResponse:
        return self.admin.GetServerStatus(admin_pb2.GetServerStatusRequest(model_name=model))

    def states(self, model: str) -> dict[int, str]:
        status = self.status().models[model]
        return {v.version: admin_pb2.VersionState.Name(v.state).removeprefix("VERSION_STATE_")
                for v in status.model_version_status}  # fmt: skip

    def reload(self) -> admin_pb2.ReloadConfigResponse:
        return self.admin.ReloadConfig(admin_pb2.ReloadConfigRequest())

    def close(self) -> None:
        self.channel.close()
