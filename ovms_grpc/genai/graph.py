"""OVMS's ``graph.pbtxt``: the options of a generative model folder, read with protobuf text format.

A config.json entry (or ``--model_path``) whose folder holds a graph.pbtxt is generative, as in
OVMS. Only the calculator node's options are used; stream wiring and handlers are skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format

from ovms_grpc.models.config import EncoderOptions, GenaiOptions
from ovms_grpc_client.genproto.mediapipe.calculators import ovms_options_pb2 as options_pb
from ovms_grpc_client.genproto.mediapipe.framework import calculator_graph_pb2 as graph_pb

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


#: Stream wiring of OVMS's graphs per task, around the calculator node's options.
_WIRING = {
    "text_generation": (
        'input_stream: "HTTP_REQUEST_PAYLOAD:input"\noutput_stream: "HTTP_RESPONSE_PAYLOAD:output"\n',
        'name: "LLMExecutor"\n  calculator: "HttpLLMCalculator"\n  input_stream: "LOOPBACK:loopback"\n'
        '  input_stream: "HTTP_REQUEST_PAYLOAD:input"\n  input_side_packet: "LLM_NODE_RESOURCES:llm"\n'
        '  output_stream: "LOOPBACK:loopback"\n  output_stream: "HTTP_RESPONSE_PAYLOAD:output"\n'
        "  input_stream_info: { tag_index: 'LOOPBACK:0', back_edge: true }\n",
        "LLMCalculatorOptions",
    ),
    "embeddings": (
        'input_stream: "REQUEST_PAYLOAD:input"\noutput_stream: "RESPONSE_PAYLOAD:output"\n',
        'name: "EmbeddingsExecutor"\n  calculator: "EmbeddingsCalculatorOV"\n'
        '  input_side_packet: "EMBEDDINGS_NODE_RESOURCES:embeddings_servable"\n'
        '  input_stream: "REQUEST_PAYLOAD:input"\n  output_stream: "RESPONSE_PAYLOAD:output"\n',
        "EmbeddingsCalculatorOVOptions",
    ),
    "rerank": (
        'input_stream: "REQUEST_PAYLOAD:input"\noutput_stream: "RESPONSE_PAYLOAD:output"\n',
        'name: "RerankExecutor"\n  calculator: "RerankCalculatorOV"\n'
        '  input_side_packet: "RERANK_NODE_RESOURCES:rerank_servable"\n'
        '  input_stream: "REQUEST_PAYLOAD:input"\n  output_stream: "RESPONSE_PAYLOAD:output"\n',
        "RerankCalculatorOVOptions",
    ),
}


def graph_text(
    task: str,
    device: str = "CPU",
    genai: GenaiOptions | None = None,
    encoder: EncoderOptions | None = None,
    models_path: str = "./",
) -> str:
    """The graph.pbtxt OVMS writes for a model folder of ``task`` (read back by `read_graph`, here and in OVMS)."""
    genai, encoder = genai or GenaiOptions(), encoder or EncoderOptions()
    options: (
        options_pb.LLMCalculatorOptions
        | options_pb.EmbeddingsCalculatorOVOptions
        | (options_pb.RerankCalculatorOVOptions)
    )
    if task == "text_generation":
        options = options_pb.LLMCalculatorOptions(
            models_path=models_path, device=device, plugin_config=json.dumps(genai.plugin_config),
            enable_prefix_caching=genai.enable_prefix_caching, cache_size=genai.cache_size,
            max_num_seqs=genai.max_num_seqs, tool_parser=genai.tool_parser or "",
            reasoning_parser=genai.reasoning_parser or "",
        )  # fmt: skip
        if genai.max_num_batched_tokens:
            options.max_num_batched_tokens = genai.max_num_batched_tokens
        if genai.max_prompt_len:
            options.max_prompt_len = genai.max_prompt_len
    elif task == "embeddings":
        options = options_pb.EmbeddingsCalculatorOVOptions(
            models_path=models_path, target_device=device, normalize_embeddings=encoder.normalize,
            pooling=options_pb.EmbeddingsCalculatorOVOptions.Pooling.Value(encoder.pooling),
        )  # fmt: skip
    elif task == "rerank":
        options = options_pb.RerankCalculatorOVOptions(
            models_path=models_path, target_device=device, max_allowed_chunks=encoder.max_documents
        )
    else:
        raise ValueError(f"task must be one of text_generation, embeddings, rerank, got {task}")
    streams, node, name = _WIRING[task]
    body = text_format.MessageToString(options, indent=6)
    return (
        f"{streams}node: {{\n  {node}  node_options: {{\n"
        f"    [type.googleapis.com / mediapipe.{name}]: {{\n{body}    }}\n  }}\n}}\n"
    )
