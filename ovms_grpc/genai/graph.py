"""OVMS's ``graph.pbtxt``: the options of a generative model folder, read with protobuf text format.

A config.json entry (or ``--model_path``) whose folder holds a graph.pbtxt is generative, as in
OVMS. Only the calculator node's options are used; stream wiring and handlers are skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

from ovms_grpc.genai.encoders import EncoderOptions
from ovms_grpc.genai.servable import GenaiOptions
from ovms_grpc.genproto.mediapipe.calculators import ovms_options_pb2 as options_pb
from ovms_grpc.genproto.mediapipe.framework import calculator_graph_pb2 as graph_pb

GRAPH_FILE = "graph.pbtxt"


@dataclass(frozen=True)
class GraphSettings:
    task: str
    model_dir: Path
    device: str
    genai: GenaiOptions
    encoder: EncoderOptions


def _plugin_config(text: str, where: str) -> dict:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: plugin_config is not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{where}: plugin_config must be a JSON object")
    return value


def read_graph(folder: Path) -> GraphSettings:
    """The task and options of the generative model in ``folder``; ValueError names what is wrong."""
    path = folder / GRAPH_FILE
    graph = graph_pb.CalculatorGraphConfig()
    try:
        text_format.Parse(path.read_text(), graph, allow_unknown_field=True, allow_unknown_extension=True)
    except (OSError, text_format.ParseError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    for node in graph.node:
        for any_options in node.node_options:
            llm = options_pb.LLMCalculatorOptions()
            if any_options.Unpack(llm):
                genai = GenaiOptions(
                    enable_prefix_caching=llm.enable_prefix_caching if llm.HasField("enable_prefix_caching") else True,
                    cache_size=llm.cache_size if llm.HasField("cache_size") else 1,
                    max_num_seqs=llm.max_num_seqs if llm.HasField("max_num_seqs") else 256,
                    max_num_batched_tokens=llm.max_num_batched_tokens,
                    max_prompt_len=llm.max_prompt_len,
                    tool_parser=llm.tool_parser or None,
                    reasoning_parser=llm.reasoning_parser or None,
                    plugin_config=_plugin_config(llm.plugin_config, str(path)),
                )
                model_dir = (folder / (llm.models_path or "./")).resolve()
                return GraphSettings("text_generation", model_dir, llm.device or "CPU", genai, EncoderOptions())
            embeddings = options_pb.EmbeddingsCalculatorOVOptions()
            if any_options.Unpack(embeddings):
                pooling = options_pb.EmbeddingsCalculatorOVOptions.Pooling.Name(embeddings.pooling)
                normalize = embeddings.normalize_embeddings if embeddings.HasField("normalize_embeddings") else True
                encoder = EncoderOptions(normalize=normalize, pooling=pooling)
                model_dir = (folder / (embeddings.models_path or "./")).resolve()
                return GraphSettings(
                    "embeddings", model_dir, embeddings.target_device or "CPU", GenaiOptions(), encoder
                )
            rerank = options_pb.RerankCalculatorOVOptions()
            if any_options.Unpack(rerank):
                limit = rerank.max_allowed_chunks if rerank.HasField("max_allowed_chunks") else 10000
                model_dir = (folder / (rerank.models_path or "./")).resolve()
                return GraphSettings(
                    "rerank",
                    model_dir,
                    rerank.target_device or "CPU",
                    GenaiOptions(),
                    EncoderOptions(max_documents=limit),
                )
    raise ValueError(f"{path}: no LLM, embeddings or rerank calculator options found")
