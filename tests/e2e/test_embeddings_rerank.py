"""Embeddings (OpenAI SDK) and rerank (Cohere shape) through the gateway, checked against openvino_genai."""

from __future__ import annotations

import base64
from pathlib import Path

import grpc
import httpx
import numpy as np
import openvino_genai as og
import pytest
from openai import BadRequestError, OpenAI

from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as pb
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2_grpc as pb_grpc
from tests.server_process import ServerProcess

TEXTS = ["the cat sat on the mat", "a dog runs in the park", "hello world"]


@pytest.fixture(scope="module")
def embed_server(server_factory, encoder_dirs: dict[str, Path]) -> ServerProcess:
    return server_factory("--task", "embeddings", "--model_path", str(encoder_dirs["embedding"]),
                          "--model_name", "emb", "--pooling", "MEAN", rest=True)  # fmt: skip


@pytest.fixture(scope="module")
def rerank_server(server_factory, encoder_dirs: dict[str, Path]) -> ServerProcess:
    return server_factory(
        "--task", "rerank", "--model_path", str(encoder_dirs["rerank"]), "--model_name", "rr", rest=True
    )


def direct_embeddings(model: Path) -> np.ndarray:
    config = og.TextEmbeddingPipeline.Config()
    config.normalize = True
    config.pooling_type = og.TextEmbeddingPipeline.PoolingType.MEAN
    return np.array(og.TextEmbeddingPipeline(str(model), "CPU", config).embed_documents(TEXTS))


def test_openai_embeddings_match_genai_and_are_normalized(embed_server: ServerProcess, encoder_dirs) -> None:
    client = OpenAI(base_url=f"{embed_server.rest_url}/v3", api_key="unused", max_retries=0)
    answer = client.embeddings.create(model="emb", input=TEXTS)
    got = np.array([item.embedding for item in answer.data])
    assert got.shape == (3, 32) and [item.index for item in answer.data] == [0, 1, 2]
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, direct_embeddings(encoder_dirs["embedding"]), atol=1e-5)
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > 3
    single = client.embeddings.create(model="emb", input="hello world")
    np.testing.assert_allclose(single.data[0].embedding, got[2], atol=1e-5)
    raw = httpx.post(f"{embed_server.rest_url}/v3/embeddings", timeout=30,
                     json={"model": "emb", "input": TEXTS[:1], "encoding_format": "base64"}).json()  # fmt: skip
    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), "<f4")
    np.testing.assert_allclose(decoded, got[0], atol=1e-6)


def test_token_id_inputs_embed_like_their_text(embed_server: ServerProcess, encoder_dirs) -> None:
    client = OpenAI(base_url=f"{embed_server.rest_url}/v3", api_key="unused", max_retries=0)
    tokenizer = og.Tokenizer(str(encoder_dirs["embedding"]))
    ids = [[int(t) for t in tokenizer.encode(text, add_special_tokens=False).input_ids.data[0]] for text in TEXTS]
    expected = direct_embeddings(encoder_dirs["embedding"])
    answer = client.embeddings.create(model="emb", input=ids)
    np.testing.assert_allclose([item.embedding for item in answer.data], expected, atol=1e-5)
    single = client.embeddings.create(model="emb", input=ids[1])
    np.testing.assert_allclose(single.data[0].embedding, expected[1], atol=1e-5)
    for body, message in (
        ({"input": ["text", [1, 2]]}, "input must be homogeneous"),
        ({"input": [[1, 2], []]}, "input[1] has no tokens"),
        ({"input": [[1, 10**9]]}, "input[0] has token id 1000000000, outside the vocabulary"),
        ({"input": [1.5]}, "input should be string, array of strings or array of integers"),
    ):
        answer = httpx.post(f"{embed_server.rest_url}/v3/embeddings", json={"model": "emb", **body}, timeout=10)
        assert answer.status_code == 400 and message in answer.json()["error"]["message"], answer.text


def test_embedding_errors(embed_server: ServerProcess) -> None:
    client = OpenAI(base_url=f"{embed_server.rest_url}/v3", api_key="unused", max_retries=0)
    with pytest.raises(BadRequestError, match="encoding_format should either base64 or float"):
        client.embeddings.create(model="emb", input="x", encoding_format="int8")  # type: ignore[arg-type]
    answer = httpx.post(f"{embed_server.rest_url}/v3/embeddings", json={"model": "emb"}, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["message"] == "input field is required"
    with pytest.raises(BadRequestError, match="serves embeddings, not text_generation"):
        client.chat.completions.create(model="emb", messages=[{"role": "user", "content": "hi"}])


def test_grpc_embed(embed_server: ServerProcess) -> None:
    with grpc.insecure_channel(embed_server.address) as channel:
        answer = pb_grpc.GenerationServiceStub(channel).Embed(pb.EmbedRequest(model="emb", input=TEXTS))
    assert [len(e.values) for e in answer.data] == [32, 32, 32]


def test_rerank_orders_like_genai(rerank_server: ServerProcess, encoder_dirs) -> None:
    config = og.TextRerankPipeline.Config()
    config.top_n = len(TEXTS)
    expected = og.TextRerankPipeline(str(encoder_dirs["rerank"]), "CPU", config).rerank("a cat", TEXTS)
    answer = httpx.post(f"{rerank_server.rest_url}/v3/rerank", timeout=30,
                        json={"model": "rr", "query": "a cat", "documents": TEXTS}).json()  # fmt: skip
    assert [r["index"] for r in answer["results"]] == [i for i, _ in expected]
    np.testing.assert_allclose([r["relevance_score"] for r in answer["results"]], [s for _, s in expected], atol=1e-5)
    scores = [r["relevance_score"] for r in answer["results"]]
    assert scores == sorted(scores, reverse=True)
    body = {"model": "rr", "query": "a cat", "documents": [{"text": t} for t in TEXTS], "top_n": 2}
    top = httpx.post(f"{rerank_server.rest_url}/v3/rerank", timeout=30, json={**body, "return_documents": True}).json()
    assert len(top["results"]) == 2
    assert top["results"][0]["document"] == {"text": TEXTS[expected[0][0]]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "rr", "documents": ["a"]}, "query field is missing in request"),
        ({"model": "rr", "query": "q"}, "documents field is missing in request"),
        ({"model": "rr", "query": "q", "documents": "a"}, "documents is not an array"),
        ({"model": "rr", "query": "q", "documents": ["a"], "top_n": "2"}, "top_n accepts integer values"),
    ],
)
def test_rerank_errors(rerank_server: ServerProcess, body: dict, message: str) -> None:
    answer = httpx.post(f"{rerank_server.rest_url}/v3/rerank", json=body, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["message"] == message
