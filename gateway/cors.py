"""CORS as OVMS does it: every answer carries the configured Access-Control-* headers, and an
OPTIONS request to any path is a successful preflight."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class CorsSettings:
    allowed_origins: str = "*"
    allowed_methods: str = "*"
    allowed_headers: str = "*"
    allow_credentials: bool = False

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"access-control-allow-origin", self.allowed_origins.encode()),
            (b"access-control-allow-methods", self.allowed_methods.encode()),
            (b"access-control-allow-headers", self.allowed_headers.encode()),
        ]
        if self.allow_credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers


class CorsMiddleware:
    def __init__(self, app: ASGIApp, settings: CorsSettings) -> None:
        self.app = app
        self.cors_headers = settings.headers()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [*self.cors_headers, (b"content-length", b"0")]})  # fmt: skip
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.cors_headers]
            await send(message)

        await self.app(scope, receive, with_cors)
