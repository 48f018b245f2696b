"""gRPC server reflection under both names: ``grpc.reflection.v1`` (what grpcurl and newer tools ask
for first) and ``grpc.reflection.v1alpha`` (older clients).

grpcio-reflection implements only v1alpha. The two protocols have the same messages and field
numbers under another package, so the v1 method path is served by the same servicer, with the
v1alpha message classes doing the (identical) wire encoding.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as pb
from grpc_reflection.v1alpha import reflection_pb2_grpc as pb_grpc

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
SERVICE_NAMES = (V1_SERVICE_NAME, reflection.SERVICE_NAME)


class _ReflectionServicer(reflection.aio.ReflectionServicer):
    """Also finds the file of a method name (``grpcurl describe pkg.Service.Method``): protobuf's
    pool knows messages, enums and services by name, but not their methods."""

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        answer = super()._file_containing_symbol(request, fully_qualified_name)
        if not answer.HasField("error_response"):
            return answer
        service, _, method = fully_qualified_name.rpartition(".")
        try:
            self._pool.FindServiceByName(service).methods_by_name[method]
        except KeyError:
            return answer
        return super()._file_containing_symbol(request, service)


def enable_server_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    servicer = _ReflectionServicer((*service_names, *SERVICE_NAMES))
    pb_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=pb.ServerReflectionRequest.FromString,
        response_serializer=pb.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE_NAME, {"ServerReflectionInfo": v1}),)
    )
