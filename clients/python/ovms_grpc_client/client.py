"""A blocking client: numpy in and out for KServe, health, metadata and streamed generation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
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


class Client:
    """One channel to an ovms-grpc (or OVMS) server; the raw stubs are there too (``kserve``, ``generation``).

    >>> with Client("localhost:9000") as client:
    ...     client.infer("dummy", {"b": np.zeros((1, 10), np.float32)})["a"]
    """

    def __init__(self, target: str, *, timeout: float | None = 60.0, options: Iterable[tuple[str, Any]] = ()) -> None:
        self.channel = grpc.insecure_channel(target, options=list(options))
        self.timeout = timeout
        self.kserve = kserve_grpc.GRPCInferenceServiceStub(self.channel)
        self.generation = generation_grpc.GenerationServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def is_serving(self, service: str = "") -> bool:
        """gRPC health: True when ``service`` ("" = the whole server) is SERVING."""
        try:
            answer = self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise failure(exc) from None
        return answer.status == health_pb2.HealthCheckResponse.SERVING

    def metadata(self, model: str, version: str | int = "") -> kserve_pb.ModelMetadataResponse:
        try:
            return self.kserve.ModelMetadata(
                kserve_pb.ModelMetadataRequest(name=model, version=str(version)), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise failure(exc) from None

    def infer(
        self, model: str, inputs: Mapping[str, np.ndarray], version: str | int = "", outputs: Iterable[str] = ()
    ) -> dict[str, np.ndarray]:
        """KServe ModelInfer: numpy arrays in, numpy arrays out (needs the ``numpy`` extra)."""
        request = infer_request(model, inputs, version, outputs)
        try:
            return infer_outputs(self.kserve.ModelInfer(request, timeout=self.timeout))
        except grpc.RpcError as exc:
            raise failure(exc) from None

    def chat(
        self, model: str, messages: Iterable[Message], *, include_usage: bool = True, **sampling: Any
    ) -> Iterator[generation_pb.ChatResponse]:
        """Stream a chat: one ChatResponse per step (the last carries usage); breaking out cancels it."""
        call = self.generation.Chat(chat_request(model, messages, include_usage, sampling), timeout=self.timeout)
        return self._stream(call)

    def complete(
        self, model: str, prompt: str, *, include_usage: bool = True, **sampling: Any
    ) -> Iterator[generation_pb.CompleteResponse]:
        call = self.generation.Complete(complete_request(model, prompt, include_usage, sampling), timeout=self.timeout)
        return self._stream(call)

    @staticmethod
    def _stream(call: Any) -> Iterator[Any]:
        try:
            yield from call
        except grpc.RpcError as exc:
            raise failure(exc) from None
        finally:
            call.cancel()  # a no-op once the stream ended; stops the generation when the caller left early

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
