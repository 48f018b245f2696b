from pathlib import Path

import pytest

from ovms_grpc.genai.graph import read_graph

DATA = Path(__file__).parent / "data"

EMBEDDINGS_GRAPH = """
input_stream: "REQUEST_PAYLOAD:input"
output_stream: "RESPONSE_PAYLOAD:output"
node {
  calculator: "EmbeddingsCalculatorOV"
  input_side_packet: "EMBEDDINGS_NODE_RESOURCES:embeddings_servable"
  input_stream: "REQUEST_PAYLOAD:input"
  output_stream: "RESPONSE_PAYLOAD:output"
  node_options: {
    [type.googleapis.com / mediapipe.EmbeddingsCalculatorOVOptions]: {
      models_path: "./models",
      normalize_embeddings: false,
      pooling: MEAN,
      target_device: "AUTO:CPU",
      num_streams: 2
    }
  }
}
"""


def test_ovms_llm_graph_with_unknown_fields_and_extensions(tmp_path: Path) -> None:
    (tmp_path / "graph.pbtxt").write_text((DATA / "llm_graph.pbtxt").read_text())
    graph = read_graph(tmp_path)
    assert (graph.task, graph.device, graph.model_dir) == ("text_generation", "CPU", tmp_path.resolve())
    assert graph.genai.enable_prefix_caching is False and graph.genai.cache_size == 2
    assert (graph.genai.tool_parser, graph.genai.reasoning_parser) == ("hermes3", "qwen3")
    assert graph.genai.plugin_config == {"KV_CACHE_PRECISION": "u8"}


def test_embeddings_graph(tmp_path: Path) -> None:
    (tmp_path / "graph.pbtxt").write_text(EMBEDDINGS_GRAPH)
    graph = read_graph(tmp_path)
    assert (graph.task, graph.device, graph.model_dir) == ("embeddings", "AUTO:CPU", (tmp_path / "models").resolve())
    assert graph.encoder.pooling == "MEAN" and graph.encoder.normalize is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("node { calculator: ", "graph.pbtxt: 1:20"),
        ('node { calculator: "X" }', "no LLM, embeddings or rerank calculator options found"),
    ],
)
def test_broken_graphs_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "graph.pbtxt").write_text(text)
    with pytest.raises(ValueError, match=message.replace(".", "\\.")):
        read_graph(tmp_path)
