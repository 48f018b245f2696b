"""``ovms-gateway``: run the REST gateway alone against a server (``--grpc_target``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

from gateway.app import DEFAULT_LIMIT_BYTES, GatewayConfig, create_app
from gateway.cors import CorsSettings
from ovms_grpc_client import logs
from ovms_grpc_client.listen import open_listener

EX_USAGE = 64


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"ovms-gateway: error: {message}", file=sys.stderr)
        raise SystemExit(EX_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ovms-gateway", description="REST gateway for an ovms-grpc server.", allow_abbrev=False)
    add = parser.add_argument
    add("--grpc_target", required=True, help="the server's gRPC address: host:port or unix:/path")
    add("--port", type=int, required=True, help="HTTP port")
    add("--bind_address", default="0.0.0.0", help="HTTP listen address")
    add("--max_request_bytes", type=int, default=DEFAULT_LIMIT_BYTES, help="largest request body (413 past it)")
    add("--log_level", default="INFO", help="TRACE, DEBUG, INFO, WARNING or ERROR")
    add("--allowed_origins", default="*", help="CORS: Access-Control-Allow-Origin")
    add("--allowed_methods", default="*", help="CORS: Access-Control-Allow-Methods")
    add("--allowed_headers", default="*", help="CORS: Access-Control-Allow-Headers")
    add("--allow_credentials", action="store_true", help="CORS: Access-Control-Allow-Credentials: true")
    # Used by ovms-grpc --rest_port: "ready" or "error: <reason>" is written there once, then it is closed.
    add("--ready_fd", type=int, help=argparse.SUPPRESS)
    return parser


def _report(ready_fd: int | None, line: str) -> None:
    if ready_fd is None:
        return
    os.write(ready_fd, line.encode() + b"\n")
    os.close(ready_fd)


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    args = build_parser().parse_args(argv)
    logs.configure(args.log_level)
    # uvicorn's start-up banner is INFO: below DEBUG it is left out (the supervisor logs one line instead).
    level = logging.getLogger().level
    uvicorn_level = level if level <= logging.DEBUG else max(level, logging.WARNING)
    # The socket is opened here, not by uvicorn, so a port in use is one line and not a traceback.
    try:
        sock = open_listener(args.bind_address, args.port)
    except OSError as exc:
        if args.ready_fd is None:
            print(f"ovms-gateway: error: {exc}", file=sys.stderr)
        _report(args.ready_fd, f"error: {exc}")
        return 1
    _report(args.ready_fd, "ready")
    cors = CorsSettings(args.allowed_origins, args.allowed_methods, args.allowed_headers, args.allow_credentials)
    config = GatewayConfig(args.grpc_target, max_body_bytes=args.max_request_bytes, cors=cors)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            loop="uvloop",
            http="httptools",
            log_config=None,  # uvicorn's records go through the root logger, in the server's format
            log_level=uvicorn_level,
            access_log=False,
        )
    )
    server.run(sockets=[sock])
    return 0
