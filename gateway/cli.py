"""``ovms-gateway``: run the REST gateway alone against a server (``--grpc_target``)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn

from gateway.app import DEFAULT_LIMIT_BYTES, GatewayConfig, create_app
from gateway.cors import CorsSettings

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
    return parser


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    args = build_parser().parse_args(argv)
    level = "DEBUG" if args.log_level == "TRACE" else args.log_level
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO), format="[%(asctime)s][gateway][%(levelname)s] %(message)s"
    )
    cors = CorsSettings(args.allowed_origins, args.allowed_methods, args.allowed_headers, args.allow_credentials)
    config = GatewayConfig(args.grpc_target, max_body_bytes=args.max_request_bytes, cors=cors)
    uvicorn.run(
        create_app(config),
        host=args.bind_address,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level=level.lower() if level != "WARNING" else "warning",
        access_log=False,
    )
    return 0
