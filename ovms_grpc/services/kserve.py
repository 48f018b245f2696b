"""KServe v2 `inference.GRPCInferenceService` over the model manager."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc

from ovms_grpc import __version__
from ovms_grpc.core.inference import Caller, Inference, ModelRef
from ovms_grpc.models.manager import ModelManager, parse_version
from ovms_grpc.services.interface import interface_of
from ovms_grpc.services.kserve_codec import KServeInfer, encode_response, tensor_metadata
from ovms_grpc.services.status import as_serving_error, unary
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

API = "KServe"
SERVER_NAME = "OpenVINO Model Server"
PLATFORM = "OpenVINO"


class KServeServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, manager: ModelManager, inference: Inference | None = None) -> None:
        self._manager = manager
        self._inference = inference or Inference(manager)

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self._manager.ready.is_set())

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=__version__)

    @unary
    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelReadyResponse:
        model = ModelRef(request.name, parse_version(request.version))
        return pb.ModelReadyResponse(ready=self._inference.ready(model))

    @unary
    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        metadata = self._inference.metadata(ModelRef(request.name, parse_version(request.version)))
        return pb.ModelMetadataResponse(
            name=metadata.name,
            versions=[str(v) for v in metadata.versions],
            platform=PLATFORM,
            inputs=tensor_metadata(metadata.inputs),
            outputs=tensor_metadata(metadata.outputs),
        )

    @unary
    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        result = await self._inference.infer(KServeInfer(request), Caller(API, interface_of(context), "ModelInfer"))
        return encode_response(result, request.id)

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[pb.ModelInferRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        # Triton's behaviour for plain models: one response per request, in order,
        # with failures reported in-band so the stream stays open.
        caller = Caller(API, interface_of(context), "ModelInferStream")
        async for request in request_iterator:
            try:
                response = encode_response(await self._inference.infer(KServeInfer(request), caller), request.id)
            except Exception as exc:
                error = as_serving_error(exc)
                yield pb.ModelStreamInferResponse(error_message=error.message)
                continue
            yield pb.ModelStreamInferResponse(infer_response=response)
