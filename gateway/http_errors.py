"""Errors as HTTP answers, every status and OpenAI error type taken from the one error table
(`ovms_grpc_client.errors`): a failure from the server by the kind it sent (or, for a bare gRPC
status, the kind the table gives that status), a condition found here by its kind name."""

from __future__ import annotations

import grpc
import orjson
from starlette.responses import Response

from ovms_grpc_client.errors import ERROR_KIND_KEY, KINDS, ErrorKind, ServingError, kind, received_kind


class HttpError(Exception):
    """An HTTP error answer: ``{"error": message}`` with the kind's status (OpenAI's error object on /v3).

    ``message`` defaults to the kind's base message followed by `` - `` and ``details``.
    """

    def __init__(
        self,
        kind_name: str,
        message: str | None = None,
        *,
        details: str = "",
        param: str | None = None,
        from_server: bool = False,
    ) -> None:
        self.kind: ErrorKind = kind(kind_name)
        self.message = message or (f"{self.kind.message} - {details}" if details else self.kind.message)
        super().__init__(self.message)
        self.param = param
        """The request field at fault, when known (OpenAI's ``error.param``)."""
        self.from_server = from_server
        """Whether the server sent it (its kind then goes out as OpenAI's ``error.code``)."""

    @property
    def status(self) -> int:
        return self.kind.http_status

    def openai_body(self) -> dict:
        code = self.kind.name if self.from_server else None
        return {"error": {"message": self.message, "type": self.kind.openai_type, "param": self.param, "code": code}}


def error_response(error: HttpError) -> Response:
    return Response(orjson.dumps({"error": error.message}), status_code=error.status, media_type="application/json")


def from_serving_error(error: ServingError) -> HttpError:
    """A rule checked in the gateway itself (shared with the server through ovms_grpc_client.tensors)."""
    return HttpError(error.kind.name, error.message, from_server=True)


def from_rpc_error(error: grpc.aio.AioRpcError) -> HttpError:
    """The kind the server sent with the status, or the table's kind for a bare status."""
    sent = dict(error.trailing_metadata() or ()).get(ERROR_KIND_KEY)
    name = sent if isinstance(sent, str) and sent in KINDS else None
    found = received_kind(name, error.code().name)
    if name is not None:
        return HttpError(found.name, error.details() or found.message, from_server=True)
    return HttpError(found.name, details=error.details() or error.code().name)
