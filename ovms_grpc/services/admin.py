"""`ovms.admin.v1.AdminService`: status of every model version, and config reload."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from ovms_grpc.models.manager import ModelEntry, ModelManager
from ovms_grpc.models.servable import Servable
from ovms_grpc.reloader import ConfigReloader
from ovms_grpc.services.status import unary
from ovms_grpc_client.errors import ServingError
from ovms_grpc_client.genproto.ovms.admin.v1 import admin_pb2 as pb
from ovms_grpc_client.genproto.ovms.admin.v1 import admin_pb2_grpc as pb_grpc


def model_status(entry: ModelEntry) -> pb.ModelStatus:
    status = pb.ModelStatus(error=entry.error, target_device=entry.config.load.target_device)
    for number, record in sorted(entry.versions.items()):
        servable = record.servable
        compiled = servable if isinstance(servable, Servable) else None
        state, error_code, error_message = record.reported()
        status.model_version_status.add(
            version=number,
            state=int(state),
            error_code=error_code,
            error_message=error_message,
            properties=servable.properties if servable is not None else {},
            nireq=compiled.nireq if compiled is not None else 0,
            notes=compiled.loaded.notes if compiled is not None else [],
        )
    return status


def server_status(manager: ModelManager, model_name: str = "", rest_gateway: str = "") -> pb.GetServerStatusResponse:
    names = [model_name] if model_name else sorted(manager.entries)
    return pb.GetServerStatusResponse(
        models={name: model_status(manager.entry(name)) for name in names},
        config_error=manager.config_error,
        rest_gateway=rest_gateway,
    )


class AdminServicer(pb_grpc.AdminServiceServicer):
    def __init__(
        self, manager: ModelManager, reloader: ConfigReloader, rest_gateway: Callable[[], str] = lambda: ""
    ) -> None:
        self._manager = manager
        self._reloader = reloader
        self._rest_gateway = rest_gateway

    @unary
    async def GetServerStatus(
        self, request: pb.GetServerStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetServerStatusResponse:
        return server_status(self._manager, request.model_name, self._rest_gateway())

    @unary
    async def ReloadConfig(
        self, request: pb.ReloadConfigRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReloadConfigResponse:
        result = await self._reloader.reload()
        if result.error:
            raise ServingError(result.error, kind_name="JSON_INVALID")
        return pb.ReloadConfigResponse(
            reloaded=result.changed, status=server_status(self._manager, rest_gateway=self._rest_gateway())
        )

    @unary
    async def GetMetrics(
        self, request: pb.GetMetricsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetMetricsResponse:
        metrics = self._manager.metrics
        if not metrics.enabled:
            raise ServingError("start the server with --metrics_enable", kind_name="METRICS_DISABLED")
        return pb.GetMetricsResponse(text=metrics.text())
