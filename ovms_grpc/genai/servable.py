"""A generative model version: its task, options and engine process."""

from __future__ import annotations

from pathlib import Path

from ovms_grpc.genai.engine import EngineProcess
from ovms_grpc.genai.serial_engine import SerialEngine
from ovms_grpc.metrics import GraphMetrics, Metrics
from ovms_grpc.models.base import BaseServable
from ovms_grpc.models.config import GenaiOptions


def uses_serial_engine(device: str) -> bool:
    """NPU runs LLMPipeline one request at a time; other devices run continuous batching in a child process."""
    return device.split(".")[0].upper() == "NPU"


class GenerativeServable(BaseServable):
    """One generative model; OVMS reports it as version 1."""

    def __init__(
        self, name: str, model_dir: Path, task: str, device: str, options: GenaiOptions, max_queued: int
    ) -> None:
        super().__init__(name, 1)
        self.metrics: GraphMetrics = Metrics(families=()).for_graph(name)  # the manager sets the served ones
        self.task = task
        self.options = options
        self.engine: EngineProcess | SerialEngine
        if uses_serial_engine(device):
            self.engine = SerialEngine(name, str(model_dir), device, options.engine_options(), max_queued)
        else:
            self.engine = EngineProcess(name, str(model_dir), device, options.engine_options(), max_queued)

    @property
    def alive(self) -> bool:
        return self.engine.alive

    @property
    def properties(self) -> dict[str, str]:
        return {
            "TASK": self.task,
            "ENGINE_PID": str(self.engine.pid or ""),
            "ENGINE_ALIVE": "YES" if self.engine.alive else "NO",
            "ENGINE_RESTARTS": str(self.engine.restarts),
            "RUNNING_REQUESTS": str(self.engine.running_requests),
        }

    async def start(self) -> None:
        await self.engine.start()

    async def close(self) -> None:
        await self.engine.stop()
