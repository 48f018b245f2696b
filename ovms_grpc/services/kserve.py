"""KServe v2 `inference.GRPCInferenceService` over the model manager."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import grpc

from ovms_grpc import __version__
from ovms_grpc.images import decode_images_async
from ovms_grpc.models.manager import ModelManager, parse_version
from ovms_grpc.services.interface import interface_of
from ovms_grpc.services.kserve_codec import decode_inputs, encode_response, tensor_metadata
from ovms_grpc.services.status import as_serving_error, unary
from ovms_grpc_client.errors import ModelNotReady
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as pb_grpc
from ovms_grpc_client.tensors import validate_output_names

log = logging.getLogger(__name__)

SERVER_NAME = "OpenVINO Model Server"
PLATFORM = "OpenVINO"


class KServeServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

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
        try:
            record = self._manager.version(request.name, parse_version(request.version))
        except ModelNotReady:  # the model exists but no version is loaded: not ready, not an error
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=record.ready)

    @unary
    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelMetadataResponse:
        servable = self._manager.loaded_servable(request.name, parse_version(request.version))
        return pb.ModelMetadataResponse(
            name=request.name,
            versions=[str(v) for v in self._manager.entry(request.name).available()],
            platform=PLATFORM,
            inputs=tensor_metadata(servable.inputs),
            outputs=tensor_metadata(servable.outputs),
        )

    @unary
    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInferResponse:
        return await self._infer(request, interface_of(context), "ModelInfer")

    async def ModelStreamInfer(
        self, request_iterator: AsyncIterator[pb.ModelInferRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ModelStreamInferResponse]:
        # Triton's behaviour for plain models: one response per request, in order,
        # with failures reported in-band so the stream stays open.
        interface = interface_of(context)
        async for request in request_iterator:
            try:
                response = await self._infer(request, interface, "ModelInferStream")
            except Exception as exc:
                error = as_serving_error(exc)
                yield pb.ModelStreamInferResponse(error_message=error.message)
                continue
            yield pb.ModelStreamInferResponse(infer_response=response)

    async def _infer(self, request: pb.ModelInferRequest, interface: str, method: str) -> pb.ModelInferResponse:
        started = time.perf_counter()
        servable = await self._manager.servable(request.model_name, parse_version(request.model_version))
        ok = False
        try:
            if servable.auto_shape:
                shapes = {t.name: list(t.shape) for t in request.inputs if t.datatype != "BYTES"}
                servable = await self._manager.fit_shapes(servable, shapes)
            requested = [output.name for output in request.outputs]
            validate_output_names(servable.name, servable.version, servable.outputs, requested)
            inputs, images = decode_inputs(request, servable)
            for spec, items, shape in images:
                inputs[spec.name] = await decode_images_async(spec, items, shape)
            outputs = await servable.infer(inputs, requested)
            response = encode_response(servable, outputs, request.id)
            ok = True
            return response
        finally:
            servable.metrics.request_done("KServe", interface, method, ok, started)
