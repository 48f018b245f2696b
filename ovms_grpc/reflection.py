"""gRPC server reflection under both names: ``grpc.reflection.v1`` (what grpcurl and newer tools ask
for first) and ``grpc.reflection.v1alpha`` (older clients).

grpcio-reflection implements only v1alpha. The two protocols have the same messages and field
numbers under another package, so the v1 method path is served by the same servicer, with the
v1alpha message classes doing the (identical) wire encoding.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as pb
from grpc_reflection.v1alpha import reflection_pb2_grpc as pb_grpc

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
SERVICE_NAMES = (V1_SERVICE_NAME, reflection.SERVICE_NAME)


def enable_server_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    servicer = reflection.aio.ReflectionServicer((*service_names, *SERVICE_NAMES))
    pb_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=pb.ServerReflectionRequest.FromString,
        response_serializer=pb.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1_SERVICE_NAME, {"ServerReflectionInfo": v1}),)
    )
