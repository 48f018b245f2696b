"""gRPC failures -> HTTP responses, through the server's one error table (`ovms_grpc_client.errors`)."""

from __future__ import annotations

import grpc
import orjson
from starlette.responses import Response

from ovms_grpc_client.errors import ERROR_KIND_KEY, KINDS, ServingError

#: For statuses that carry no error kind (raised by gRPC itself, e.g. a message over the size limit).
HTTP_STATUS_BY_GRPC_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.CANCELLED: 499,
}


OPENAI_TYPE_BY_STATUS = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}


class HttpError(Exception):
    """An HTTP error answer: ``{"error": message}`` with ``status`` (OpenAI's error object on /v3)."""

    def __init__(self, status: int, message: str, kind: str = "", param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        """The server's error kind, when the error came from the server."""
        self.param = param
        """The request field at fault, when known (OpenAI's ``error.param``)."""

    def openai_body(self) -> dict:
        if self.kind in KINDS:
            error_type = KINDS[self.kind].openai_type
        else:
            error_type = OPENAI_TYPE_BY_STATUS.get(
                self.status, "server_error" if self.status >= 500 else "invalid_request_error"
            )
        return {"error": {"message": self.message, "type": error_type, "param": self.param, "code": self.kind or None}}


def error_response(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status_code=status, media_type="application/json")


def from_serving_error(error: ServingError) -> HttpError:
    """A rule checked in the gateway itself (shared with the server through ovms_grpc_client.tensors)."""
    return HttpError(error.kind.http_status, error.message, error.kind.name)


def from_rpc_error(error: grpc.aio.AioRpcError) -> HttpError:
    """The HTTP code of the error kind the server sent, or of the bare gRPC status."""
    kind_name = dict(error.trailing_metadata() or ()).get(ERROR_KIND_KEY)
    if isinstance(kind_name, str) and kind_name in KINDS:
        return HttpError(KINDS[kind_name].http_status, error.details() or KINDS[kind_name].message, kind_name)
    code = error.code()
    if code == grpc.StatusCode.UNAVAILABLE:
        return HttpError(503, f"the model server is unavailable: {error.details()}")
    return HttpError(HTTP_STATUS_BY_GRPC_CODE.get(code, 500), error.details() or code.name)
