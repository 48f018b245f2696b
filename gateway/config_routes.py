"""OVMS's config API: ``GET /v1/config`` (status of every model version) and ``POST /v1/config/reload``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.http_errors import HttpError
from gateway.responses import json_response
from gateway.upstream import Upstream
from ovms_grpc_client.genproto.ovms.admin.v1 import admin_pb2 as pb

RELOAD_FAILED = "Reloading config file failed. Check server logs for more info."


def config_json(status: pb.GetServerStatusResponse) -> dict:
    """OVMS's /v1/config shape: {model: {"model_version_status": [...]}}."""
    return {
        name: {
            "model_version_status": [
                {
                    "version": str(version.version),
                    "state": pb.VersionState.Name(version.state).removeprefix("VERSION_STATE_"),
                    "status": {"error_code": version.error_code, "error_message": version.error_message},
                }
                for version in model.model_version_status
            ]
        }
        for name, model in sorted(status.models.items())
    }


async def get_config(request: Request) -> Response:
    upstream: Upstream = request.app.state.upstream
    status = await upstream.call(upstream.admin.GetServerStatus, pb.GetServerStatusRequest())
    return json_response(config_json(status))


async def reload_config(request: Request) -> Response:
    upstream: Upstream = request.app.state.upstream
    try:
        answer = await upstream.call(upstream.admin.ReloadConfig, pb.ReloadConfigRequest())
    except HttpError as exc:
        raise HttpError(exc.kind.name, f"{RELOAD_FAILED} - {exc.message}", from_server=exc.from_server) from None
    return json_response(config_json(answer.status), status=201 if answer.reloaded else 200)


ROUTES = [
    Route("/v1/config", get_config, methods=["GET"]),
    Route("/v1/config/reload", reload_config, methods=["POST"]),
]
