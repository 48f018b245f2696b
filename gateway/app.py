"""The ASGI application: routes, error answers in OVMS's shape, the upstream channel's lifetime."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import config_routes, kserve_routes, openai_routes, openapi, tfs_routes
from gateway.cors import CorsMiddleware, CorsSettings
from gateway.http_errors import HttpError, error_response
from gateway.metrics import GatewayMetrics, MetricsMiddleware
from gateway.request_id import RequestIdMiddleware, request_id
from gateway.responses import json_response
from gateway.upstream import Upstream
from ovms_grpc_client.genproto.ovms.admin.v1 import admin_pb2
from ovms_grpc_client.metadata import REQUEST_ID_KEY

log = logging.getLogger(__name__)

OPENAPI = openapi.build()

#: OVMS's defaults: 1 GiB bodies and gRPC messages.
DEFAULT_LIMIT_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class GatewayConfig:
    grpc_target: str
    """Where the server listens (``host:port`` or ``unix:/path``)."""
    max_body_bytes: int = DEFAULT_LIMIT_BYTES
    """Largest request body accepted; larger ones get 413."""
    max_message_bytes: int = DEFAULT_LIMIT_BYTES
    """gRPC message limit towards the server, both directions."""
    cors: CorsSettings = CorsSettings()
    """Access-Control-* headers (OVMS's CORS flags)."""


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return error_response(exc)


async def _starlette_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:  # OVMS: an unknown URL is REST_INVALID_URL
        return error_response(HttpError("REST_INVALID_URL", details=request.url.path))
    if exc.status_code == 405:  # OVMS: a known URL with the wrong method is REST_UNSUPPORTED_METHOD
        return error_response(HttpError("REST_UNSUPPORTED_METHOD", details=f"{request.method} {request.url.path}"))
    return Response(
        orjson.dumps({"error": str(exc.detail)}), status_code=exc.status_code, media_type="application/json"
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    response = error_response(HttpError("INTERNAL_ERROR"))
    # Starlette sends this answer from outside every middleware: the request id is added here.
    if request_id.get():
        response.headers[REQUEST_ID_KEY] = request_id.get()
    return response


def create_app(config: GatewayConfig) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.upstream = Upstream(config.grpc_target, config.max_message_bytes)
        app.state.max_body_bytes = config.max_body_bytes
        try:
            yield
        finally:
            await app.state.upstream.close()

    app = Starlette(
        routes=[
            *kserve_routes.ROUTES,
            *config_routes.ROUTES,
            *openai_routes.ROUTES,
            *tfs_routes.ROUTES,
            Route("/metrics", metrics_text, methods=["GET"]),
            Route("/openapi.json", openapi_document, methods=["GET"]),
        ],
        exception_handlers={HttpError: _http_error, HTTPException: _starlette_error, Exception: _unexpected},
        lifespan=lifespan,
    )
    app.state.metrics = GatewayMetrics()
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(CorsMiddleware, settings=config.cors)
    app.add_middleware(RequestIdMiddleware)  # outermost: CORS preflights get the id too
    return app


async def openapi_document(request: Request) -> Response:
    return json_response(OPENAPI)


async def metrics_text(request: Request) -> Response:
    """The server's metrics (through ovms.admin.v1) followed by the gateway's own."""
    upstream: Upstream = request.app.state.upstream
    answer = await upstream.call(upstream.admin.GetMetrics, admin_pb2.GetMetricsRequest())
    text = answer.text + request.app.state.metrics.text()
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")
