"""Translate `ServingError`s into gRPC statuses, once for every servicer."""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from ovms_grpc_client.errors import ERROR_KIND_KEY, Internal, ServingError
from ovms_grpc_client.metadata import REQUEST_ID_KEY

log = logging.getLogger(__name__)

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def grpc_code(error: ServingError) -> grpc.StatusCode:
    return grpc.StatusCode[error.kind.grpc_code]


#: The current RPC's request id ("" outside an RPC); set by the server interceptor.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


async def abort(context: grpc.aio.ServicerContext, error: ServingError) -> None:
    """End the RPC with the error's status; the kind (and the request id) go along in trailing metadata."""
    trailing: tuple[tuple[str, str], ...] = ((ERROR_KIND_KEY, error.kind.name),)
    if request_id.get():  # an abort replaces trailing metadata set before, so the id goes in again
        trailing += ((REQUEST_ID_KEY, request_id.get()),)
    await context.abort(grpc_code(error), error.message, trailing_metadata=trailing)


def as_serving_error(exc: Exception) -> ServingError:
    if isinstance(exc, ServingError):
        return exc
    log.error("unexpected error", exc_info=exc)
    return Internal()


def unary(method: Handler) -> Handler:
    """Wrap a unary handler so that any failure becomes a precise gRPC status."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await method(self, request, context)
        except ServingError as exc:
            error: ServingError = exc
        except Exception as exc:  # anything unexpected: log it, send no trace to the client
            error = as_serving_error(exc)
        log.debug("%s failed: %s", method.__name__, error.message)
        await abort(context, error)

    return wrapper  # type: ignore[return-value]
