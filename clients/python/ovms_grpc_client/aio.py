"""The asyncio client: the same calls as `ovms_grpc_client.Client`, awaitable."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ovms_grpc_client._requests import Message, chat_request, complete_request, failure, infer_outputs, infer_request
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as kserve_pb
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as kserve_grpc
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as generation_pb
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2_grpc as generation_grpc

if TYPE_CHECKING:
    import numpy as np


class AsyncClient:
    """One grpc.aio channel; create it inside the running event loop."""

    def __init__(self, target: str, *, timeout: float | None = 60.0, options: Iterable[tuple[str, Any]] = ()) -> None:
        self.channel = grpc.aio.insecure_channel(target, options=list(options))
        self.timeout = timeout
        self.kserve = kserve_grpc.GRPCInferenceServiceStub(self.channel)
        self.generation = generation_grpc.GenerationServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    async def is_serving(self, service: str = "") -> bool:
        try:
            answer = await self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise failure(exc) from None
        return answer.status == health_pb2.HealthCheckResponse.SERVING

    async def metadata(self, model: str, version: str | int = "") -> kserve_pb.ModelMetadataResponse:
        try:
            return await self.kserve.ModelMetadata(
                kserve_pb.ModelMetadataRequest(name=model, version=str(version)), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise failure(exc) from None

    async def infer(
        self, model: str, inputs: Mapping[str, np.ndarray], version: str | int = "", outputs: Iterable[str] = ()
    ) -> dict[str, np.ndarray]:
        request = infer_request(model, inputs, version, outputs)
        try:
            return infer_outputs(await self.kserve.ModelInfer(request, timeout=self.timeout))
        except grpc.RpcError as exc:
            raise failure(exc) from None

    def chat(
        self, model: str, messages: Iterable[Message], *, include_usage: bool = True, **sampling: Any
    ) -> AsyncIterator[generation_pb.ChatResponse]:
        call = self.generation.Chat(chat_request(model, messages, include_usage, sampling), timeout=self.timeout)
        return self._stream(call)

    def complete(
        self, model: str, prompt: str, *, include_usage: bool = True, **sampling: Any
    ) -> AsyncIterator[generation_pb.CompleteResponse]:
        call = self.generation.Complete(complete_request(model, prompt, include_usage, sampling), timeout=self.timeout)
        return self._stream(call)

    @staticmethod
    async def _stream(call: Any) -> AsyncIterator[Any]:
        try:
            async for message in call:
                yield message
        except grpc.RpcError as exc:
            raise failure(exc) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
