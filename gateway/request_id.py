"""Request identity over HTTP: every answer carries an ``x-request-id``, and every gRPC call the
request makes forwards it to the server (see `gateway.upstream.Upstream.metadata`).

The client's ``x-request-id`` header is kept when it is 1 to 128 printable ASCII characters (the
server's own rule, so the id is the same at both ends); otherwise a new uuid4 hex is used. Handler
code reads it from the `request_id` contextvar.
"""

from __future__ import annotations

import contextvars

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ovms_grpc_client.metadata import REQUEST_ID_KEY, request_id_or_new

_HEADER = REQUEST_ID_KEY.encode()

#: The current HTTP request's id ("" outside a request).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("gateway_request_id", default="")


def choose_request_id(headers: list[tuple[bytes, bytes]] | None) -> str:
    """The client's ``x-request-id`` if it is short printable ASCII, else a new one."""
    given = next((value for key, value in headers or () if key.lower() == _HEADER), None)
    return request_id_or_new(given.decode("latin-1") if given is not None else None)


class RequestIdMiddleware:
    """Chooses the request id, makes it current and adds it to the response's headers.

    The contextvar is deliberately not reset when the request ends: each ASGI request runs in a
    task of its own (its own context copy), and Starlette's outermost error handler, which answers
    an unexpected exception after this middleware has returned, reads the id from it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = choose_request_id(scope.get("headers"))
        request_id.set(rid)
        header = (_HEADER, rid.encode("ascii"))

        async def with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER]
                message["headers"] = [*headers, header]
            await send(message)

        await self.app(scope, receive, with_request_id)
