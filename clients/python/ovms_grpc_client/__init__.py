"""Python client for ovms-grpc: generated stubs for every contract (``ovms_grpc_client.genproto``)
and a thin client over them (`Client`, blocking; `AsyncClient`, asyncio).

Depends on grpcio and protobuf only; numpy (the ``numpy`` extra) is needed for ``infer``.
The server and the REST gateway use the same stubs, error table and tensor encoding from here.

The client classes are imported on first use, so importing a submodule (``errors``, one
``genproto`` module) registers no other protos: tritonclient, which registers ``inference.*``
itself, can share a process with everything here but the KServe stubs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ovms_grpc_client._requests import RequestFailed
    from ovms_grpc_client.aio import AsyncClient
    from ovms_grpc_client.client import Client

__version__ = "0.1.0"
__all__ = ["AsyncClient", "Client", "RequestFailed"]

_WHERE = {"Client": "client", "AsyncClient": "aio", "RequestFailed": "_requests"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
