"""The gateway's own metrics (per route and status code), appended to the server's at ``/metrics``."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ovms_grpc_client.prometheus import Family


class GatewayMetrics:
    def __init__(self) -> None:
        self.requests = Family(
            "ovms_gateway_requests", "counter", "HTTP requests handled by the REST gateway.",
            ("method", "route", "code"), enabled=True,
        )  # fmt: skip
        self.request_time = Family(
            "ovms_gateway_request_time_us", "histogram", "Time the REST gateway spent on a request.",
            ("method", "route"), enabled=True,
        )  # fmt: skip

    def text(self) -> str:
        lines: list[str] = []
        self.requests.render(lines)
        self.request_time.render(lines)
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Counts every request by method, route template (not the raw path) and status code."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def record_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", "(unmatched)")
            method = scope.get("method", "")
            self.metrics.requests.value(method, template, str(status["code"])).inc()
            self.metrics.request_time.distribution(method, template).observe((time.perf_counter() - started) * 1e6)
