"""What a served model is configured to be: its name, path, version policy, compile options and,
for a generative model, its task options. Plain frozen dataclasses (equal configurations mean no
reload), so the CLI and config.json code read them without importing the engines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ovms_grpc.genai.parsers import REASONING_PARSERS, TOOL_PARSERS
from ovms_grpc.models.policy import VersionPolicy
from ovms_grpc.shapes import Layouts, Shapes


@dataclass(frozen=True)
class LoadOptions:
    """How to compile one model version (equal options mean no reload is needed)."""

    target_device: str = "CPU"
    plugin_config: Mapping[str, Any] | None = None
    nireq: int = 0
    """Infer requests in the pool; 0 means OpenVINO's optimal number."""
    batch_size: int | str | None = None
    """Fixed batch (first dimension of every input), ``"auto"`` or None (as the model has it)."""
    shapes: Shapes | None = None
    """Input shapes to reshape to (see `ovms_grpc.shapes`); takes precedence over ``batch_size``."""
    layouts: Layouts | None = None
    """Layouts, adding a transpose where the client's layout differs from the model's."""


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


POOLING = ("CLS", "MEAN", "LAST")
#: Documents scored per rerank request at most (OVMS's max_allowed_chunks default).
MAX_DOCUMENTS = 10000


@dataclass(frozen=True)
class EncoderOptions:
    normalize: bool = True
    pooling: str = "CLS"
    max_documents: int = MAX_DOCUMENTS


@dataclass(frozen=True)
class ModelConfig:
    """One served model as configured."""

    name: str
    base_path: Path
    load: LoadOptions = field(default_factory=LoadOptions)
    version_policy: VersionPolicy = field(default_factory=VersionPolicy)
    task: str = ""
    """"" for a model served through the inference APIs; text_generation, embeddings or rerank otherwise."""
    genai: GenaiOptions = field(default_factory=GenaiOptions)
    """Options of a text-generation model."""
    encoder: EncoderOptions = field(default_factory=EncoderOptions)
    """Options of an embeddings or rerank model."""
