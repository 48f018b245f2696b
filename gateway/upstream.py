"""The gateway's one gRPC channel to the server and its stubs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from gateway.http_errors import from_rpc_error
from gateway.request_id import request_id
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as kserve_grpc
from ovms_grpc_client.genproto.ovms.admin.v1 import admin_pb2_grpc
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2_grpc
from ovms_grpc_client.genproto.tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc
from ovms_grpc_client.metadata import INTERFACE_KEY, REQUEST_ID_KEY

T = TypeVar("T")

#: Metadata that tells the server a call came through the REST gateway (metrics count it as REST).
REST_MARKER = (INTERFACE_KEY, "REST")


class Upstream:
    def __init__(self, target: str, max_message_bytes: int) -> None:
        self.target = target
        options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # reconnect quickly after the server restarts, so the gateway recovers within a second
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        self.channel = grpc.aio.insecure_channel(target, options=options)
        self.kserve = kserve_grpc.GRPCInferenceServiceStub(self.channel)
        self.admin = admin_pb2_grpc.AdminServiceStub(self.channel)
        self.tfs_predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.tfs_model = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.generation = generation_pb2_grpc.GenerationServiceStub(self.channel)

    @staticmethod
    def metadata(*extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        """Metadata for a call made for the current HTTP request: the REST marker, the request's
        ``x-request-id`` (none outside a request: the server makes one) and ``extra``."""
        rid = request_id.get()
        own = (REST_MARKER, (REQUEST_ID_KEY, rid)) if rid else (REST_MARKER,)
        return (*own, *extra)

    async def call(self, method: Callable[..., Awaitable[T]], request: Any, timeout: float | None = None) -> T:
        """Call one unary RPC; a gRPC failure becomes an `HttpError` with the server's HTTP code."""
        try:
            return await method(request, metadata=self.metadata(), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    async def close(self) -> None:
        await self.channel.close()
