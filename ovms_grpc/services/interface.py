"""Which interface a call came through: gRPC, or REST via the gateway (for metrics labels)."""

from __future__ import annotations

import grpc

from ovms_grpc_client.metadata import INTERFACE_KEY, METHOD_KEY

#: Peers whose INTERFACE_KEY is trusted: the gateway runs beside the server.
LOCAL_PEERS = ("ipv4:127.", "ipv6:[::1]", "unix:")


def interface_of(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == INTERFACE_KEY and value == "REST" and context.peer().startswith(LOCAL_PEERS):
            return "REST"
    return "gRPC"


def method_of(context: grpc.aio.ServicerContext, default: str) -> str:
    """OVMS's method label of a generation call: "Unary" or "Stream"."""
    for key, value in context.invocation_metadata() or ():
        if key == METHOD_KEY and value in ("Unary", "Stream"):
            return value
    return default
