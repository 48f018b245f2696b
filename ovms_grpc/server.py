"""Build and run the grpc.aio server: services, health, reflection, shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import tempfile

import grpc
import openvino as ov
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ovms_grpc.config import ConfigError
from ovms_grpc.gateway_process import GatewayStartError, GatewaySupervisor
from ovms_grpc.interceptor import RequestInterceptor
from ovms_grpc.metrics import Metrics
from ovms_grpc.models.manager import ModelManager
from ovms_grpc.reflection import enable_server_reflection
from ovms_grpc.reloader import ConfigReloader
from ovms_grpc.services.admin import AdminServicer
from ovms_grpc.services.generation import GenerationServicer
from ovms_grpc.services.kserve import KServeServicer
from ovms_grpc.services.tfs import ModelServicer, PredictionServicer
from ovms_grpc.settings import ServerConfig
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as kserve_pb
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as kserve_grpc
from ovms_grpc_client.genproto.ovms.admin.v1 import admin_pb2 as admin_pb
from ovms_grpc_client.genproto.ovms.admin.v1 import admin_pb2_grpc as admin_grpc
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as generation_pb
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2_grpc as generation_grpc
from ovms_grpc_client.genproto.tensorflow_serving.apis import model_service_pb2 as tfs_model_pb
from ovms_grpc_client.genproto.tensorflow_serving.apis import model_service_pb2_grpc as tfs_model_grpc
from ovms_grpc_client.genproto.tensorflow_serving.apis import prediction_service_pb2 as tfs_predict_pb
from ovms_grpc_client.genproto.tensorflow_serving.apis import prediction_service_pb2_grpc as tfs_predict_grpc
from ovms_grpc_client.listen import bind_error

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    kserve_pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
    tfs_predict_pb.DESCRIPTOR.services_by_name["PredictionService"].full_name,
    tfs_model_pb.DESCRIPTOR.services_by_name["ModelService"].full_name,
    admin_pb.DESCRIPTOR.services_by_name["AdminService"].full_name,
    generation_pb.DESCRIPTOR.services_by_name["GenerationService"].full_name,
)


class StartupError(Exception):
    """The server cannot start; the message is the one line shown to the user."""


class ModelServer:
    """One grpc.aio server over one model manager."""

    def __init__(self, config: ServerConfig, core: ov.Core | None = None) -> None:
        self.config = config
        core = core or ov.Core()
        if config.cache_dir:
            core.set_property({"CACHE_DIR": config.cache_dir})
        self.manager = ModelManager(core, config.max_queued_requests, metrics=Metrics(config.metrics))
        self.reloader = ConfigReloader(
            self.manager, models=config.models, config_path=config.config_path, poll_seconds=config.poll_seconds
        )
        self.health = health.aio.HealthServicer()
        self._server = grpc.aio.server(
            options=config.grpc_options(),
            interceptors=[RequestInterceptor()],
            maximum_concurrent_rpcs=config.max_concurrent_rpcs or None,
        )
        self._poller: asyncio.Task | None = None
        kserve_grpc.add_GRPCInferenceServiceServicer_to_server(KServeServicer(self.manager), self._server)
        admin = AdminServicer(self.manager, self.reloader, lambda: self.gateway.state if self.gateway else "")
        admin_grpc.add_AdminServiceServicer_to_server(admin, self._server)
        tfs_predict_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(self.manager), self._server)
        tfs_model_grpc.add_ModelServiceServicer_to_server(ModelServicer(self.manager, self.reloader), self._server)
        generation_grpc.add_GenerationServiceServicer_to_server(GenerationServicer(self.manager), self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME), self._server)
        self.ports: list[int] = []
        self.gateway: GatewaySupervisor | None = None
        self._socket_dir: tempfile.TemporaryDirectory | None = None

    def _listen(self, target: str) -> int:
        try:
            return self._server.add_insecure_port(target)
        except RuntimeError as exc:
            raise StartupError(f"cannot listen on {target}: {exc}") from exc

    def _check_ports(self) -> None:
        """Fail before binding anything when a port is taken: one line naming the cause."""
        wanted = [(address, self.config.port) for address in self.config.bind_addresses] if self._grpc_port else []
        if self.config.gateway:
            wanted.append((self.config.gateway.bind_address, self.config.gateway.port))
        for host, port in wanted:
            reason = bind_error(host, port)
            if reason:
                raise StartupError(reason)

    @property
    def _grpc_port(self) -> bool:
        return bool(self.config.port or not self.config.gateway)

    async def start(self) -> None:
        """Listen at once (health says NOT_SERVING), start the gateway, then load every model."""
        self._check_ports()
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._grpc_port:
            for address in self.config.bind_addresses:
                host = f"[{address}]" if ":" in address else address
                self.ports.append(self._listen(f"{host}:{self.config.port}"))
        gateway_target = ""
        if self.config.gateway:
            # The gateway always talks to the server over a private Unix socket: cheaper than TCP on
            # loopback for large tensors, and it works with --port 0 (no public gRPC port).
            self._socket_dir = tempfile.TemporaryDirectory(prefix="ovms-grpc-")
            gateway_target = f"unix:{self._socket_dir.name}/grpc.sock"
            self._listen(gateway_target)
        await self._server.start()
        if self.ports:
            log.info("gRPC server listening on port %s", ", ".join(str(p) for p in sorted(set(self.ports))))
        if self.config.gateway:
            self.gateway = GatewaySupervisor(self.config.gateway, gateway_target)
            try:
                await self.gateway.start()
            except GatewayStartError as exc:
                await self.stop(grace=0)
                raise StartupError(f"REST gateway: {exc}") from exc
        # A start-up that exits on a failed model reports it itself, as its one line.
        self.manager.report_failures = not self.config.exit_on_load_failure
        try:
            await self.reloader.start()
        except ConfigError as exc:
            await self.stop(grace=0)
            raise StartupError(str(exc)) from exc
        finally:
            self.manager.report_failures = True
        errors = self.manager.load_errors()
        if errors and self.config.exit_on_load_failure:
            await self.stop(grace=0)
            raise StartupError("; ".join(errors))
        self._poller = asyncio.create_task(self.reloader.poll_forever())
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        log.info("server is ready")

    async def _set_health(self, status: int) -> None:
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking RPCs, let in-flight ones finish, then release the models."""
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._poller is not None:
            self._poller.cancel()
        if self.gateway is not None:
            await self.gateway.stop()
        await self._server.stop(self.config.shutdown_grace_seconds if grace is None else grace)
        await self.manager.close()

    async def run_until_signal(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down")
        await self.stop()


async def serve(config: ServerConfig) -> None:
    server = ModelServer(config)
    await server.start()
    await server.run_until_signal()
