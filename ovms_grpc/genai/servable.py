"""A generative model version: its task, options and engine process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovms_grpc.genai.engine import EngineProcess
from ovms_grpc.genai.parsers import REASONING_PARSERS, TOOL_PARSERS
from ovms_grpc.genai.serial_engine import SerialEngine
from ovms_grpc.metrics import GraphMetrics, Metrics


def uses_serial_engine(device: str) -> bool:
    """NPU runs LLMPipeline one request at a time; other devices run continuous batching in a child process."""
    return device.split(".")[0].upper() == "NPU"


TASKS = ("text_generation", "embeddings", "rerank")


@dataclass(frozen=True)
class GenaiOptions:
    """Options of a generative model (OVMS's --task flags or graph.pbtxt node options)."""

    enable_prefix_caching: bool = True
    cache_size: int = 1
    """KV-cache size in GB."""
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 0
    max_prompt_len: int = 0
    """Longest prompt accepted, in tokens; 0 = the model's context."""
    default_max_tokens: int = 1024
    """max_tokens of a request that gives none."""
    tool_parser: str | None = None
    """Tool-call parser applied to chat output (``hermes3``)."""
    reasoning_parser: str | None = None
    """Reasoning parser applied to chat output (``qwen3``)."""
    plugin_config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tool_parser is not None and self.tool_parser not in TOOL_PARSERS:
            raise ValueError(f"tool_parser must be one of {', '.join(TOOL_PARSERS)}, got {self.tool_parser}")
        if self.reasoning_parser is not None and self.reasoning_parser not in REASONING_PARSERS:
            raise ValueError(
                f"reasoning_parser must be one of {', '.join(REASONING_PARSERS)}, got {self.reasoning_parser}"
            )

    def engine_options(self) -> dict[str, Any]:
        return {
            "enable_prefix_caching": self.enable_prefix_caching,
            "cache_size": self.cache_size,
            "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "max_prompt_len": self.max_prompt_len,
            "default_max_tokens": self.default_max_tokens,
            "plugin_config": self.plugin_config,
        }


class GenerativeServable:
    """One generative model; OVMS reports it as version 1."""

    def __init__(
        self, name: str, model_dir: Path, task: str, device: str, options: GenaiOptions, max_queued: int
    ) -> None:
        self.name = name
        self.metrics: GraphMetrics = Metrics(families=()).for_graph(name)  # the manager sets the served ones
        self.version = 1
        self.task = task
        self.options = options
        self.engine: EngineProcess | SerialEngine
        if uses_serial_engine(device):
            self.engine = SerialEngine(name, str(model_dir), device, options.engine_options(), max_queued)
        else:
            self.engine = EngineProcess(name, str(model_dir), device, options.engine_options(), max_queued)

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

    async def release(self) -> None:
        await self.engine.stop()
