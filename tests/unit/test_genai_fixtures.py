"""The generative fixtures load and behave in openvino_genai as the generation tests rely on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jinja2
import numpy as np
import openvino_genai as og
import pytest
from tokenizers import Tokenizer

from ovms_grpc.genai import fixtures

MAX_NEW_TOKENS = 12
PROMPT = "hello world"
DOCUMENTS = ["the quick brown fox", "hello world", "cat dog bird", "apple banana"]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return fixtures.build_all(tmp_path_factory.mktemp("genai-fixtures"))


@pytest.fixture(scope="session")
def llm(built: dict[str, Path]) -> og.LLMPipeline:
    return og.LLMPipeline(str(built["llm"]), "CPU")


def greedy(max_new_tokens: int = MAX_NEW_TOKENS) -> og.GenerationConfig:
    config = og.GenerationConfig()
    config.max_new_tokens = max_new_tokens
    config.do_sample = False
    config.apply_chat_template = False  # raw completion: the prompt is not wrapped in the chat template
    return config


def readable(text: str) -> bool:
    return bool(text) and text.isascii() and text.isprintable()


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def test_llm_folder_is_an_ovms_model_folder(built: dict[str, Path]) -> None:
    folder = built["llm"]
    for name in (
        "openvino_model.xml",
        "openvino_model.bin",
        "openvino_tokenizer.xml",
        "openvino_detokenizer.xml",
        "generation_config.json",
        "tokenizer_config.json",
        "config.json",
    ):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    assert config["hidden_size"] == fixtures.TINY_LLM.hidden
    assert json.loads((folder / "tokenizer_config.json").read_text())["chat_template"] == fixtures.CHAT_TEMPLATE
    eos = json.loads((folder / "generation_config.json").read_text())["eos_token_id"]
    assert eos == Tokenizer.from_file(str(folder / "tokenizer.json")).token_to_id("<|im_end|>")
    total = sum(path.stat().st_size for name in built for path in built[name].iterdir())
    assert total < 3_000_000


def test_llm_pipeline_generates_max_new_tokens_of_ascii_deterministically(llm: og.LLMPipeline) -> None:
    ids = llm.get_tokenizer().encode(PROMPT)
    encoded = llm.generate(ids, greedy())
    assert len(encoded.tokens[0]) == MAX_NEW_TOKENS
    text = str(llm.generate(PROMPT, greedy()))
    assert readable(text), text
    assert str(llm.generate(PROMPT, greedy())) == text
    # long generations never stop early on EOS either
    assert len(llm.generate(ids, greedy(200)).tokens[0]) == 200


def test_streamer_chunks_concatenate_to_the_text(llm: og.LLMPipeline) -> None:
    chunks: list[str] = []

    def streamer(chunk: str) -> og.StreamingStatus:
        chunks.append(chunk)
        return og.StreamingStatus.RUNNING

    text = str(llm.generate(PROMPT, greedy(), streamer))
    assert len(chunks) > 1
    assert "".join(chunks) == text


def test_continuous_batching_matches_llm_pipeline(built: dict[str, Path], llm: og.LLMPipeline) -> None:
    scheduler = og.SchedulerConfig()
    scheduler.cache_size = 1  # GB
    pipeline = og.ContinuousBatchingPipeline(str(built["llm"]), scheduler, "CPU")
    results = pipeline.generate([PROMPT, "the quick brown fox"], [greedy(), greedy()])
    texts = [result.m_generation_ids[0] for result in results]
    assert texts[0] == str(llm.generate(PROMPT, greedy()))
    assert all(readable(text) for text in texts), texts

    # the add_request / step loop the engine process drives
    handles = [pipeline.add_request(index, prompt, greedy()) for index, prompt in enumerate([PROMPT, "why"])]
    while pipeline.has_non_finished_requests():
        pipeline.step()
    outputs = [handle.read_all()[0] for handle in handles]
    assert [len(output.generated_ids) for output in outputs] == [MAX_NEW_TOKENS, MAX_NEW_TOKENS]
    assert pipeline.get_tokenizer().decode(outputs[0].generated_ids) == texts[0]


def test_gguf_file_generates_the_same_text(tmp_path: Path, llm: og.LLMPipeline) -> None:
    path = fixtures.build_llm_gguf(tmp_path / "tiny.gguf")
    assert str(og.LLMPipeline(str(path), "CPU").generate(PROMPT, greedy())) == str(llm.generate(PROMPT, greedy()))


def test_chat_template_renders_chatml_with_system_and_tools(llm: og.LLMPipeline) -> None:
    tokenizer = llm.get_tokenizer()
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    assert prompt == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )

    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    conversation = [
        *messages,
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    prompt = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tools=tools)
    assert prompt.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in prompt
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>' in prompt
    assert "<|im_start|>user\n<tool_response>\nsunny\n</tool_response><|im_end|>\n" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")

    # jinja2 renders the same text with Hugging Face's tojson (key order kept, no HTML escaping)
    environment = jinja2.Environment()
    environment.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
    rendered = environment.from_string(fixtures.CHAT_TEMPLATE).render(
        messages=conversation, tools=tools, add_generation_prompt=True
    )
    assert rendered == prompt


def test_tokenizers_match_hugging_face_and_honour_truncation(built: dict[str, Path]) -> None:
    texts = ["hello world", "The Quick, brown fox!! 12345", "héllo 😀", "<|im_start|>user\nhi<|im_end|>\n", ""]
    for name in ("llm", "embedding"):
        reference = Tokenizer.from_file(str(built[name] / "tokenizer.json"))
        tokenizer = og.Tokenizer(str(built[name]))
        for text in texts:
            ids = tokenizer.encode(text).input_ids.data[0].tolist()
            assert ids == reference.encode(text).ids, (name, text)
            assert tokenizer.decode(ids) == reference.decode(ids), (name, text)
    tokenizer = og.Tokenizer(str(built["llm"]))
    assert tokenizer.get_eos_token() == "<|im_end|>"
    truncated = tokenizer.encode("the quick brown fox jumps over the lazy dog", max_length=3, truncation=True)
    assert truncated.input_ids.get_shape() == [1, 3]
    batch = tokenizer.encode(["a", "hello world the quick"], padding_side="left")
    assert batch.attention_mask.data[0].tolist()[-1] == 1 and batch.attention_mask.data[0].tolist()[0] == 0


def test_embedding_pipeline_returns_normalized_vectors(built: dict[str, Path]) -> None:
    pooling = og.TextEmbeddingPipeline.PoolingType
    pipeline = og.TextEmbeddingPipeline(str(built["embedding"]), "CPU", pooling_type=pooling.MEAN, normalize=True)
    texts = ["hi", "the quick brown fox jumps over the lazy dog", "A cat sits on the mat."]
    vectors = np.array(pipeline.embed_documents(texts))
    assert vectors.shape == (3, fixtures.EMBEDDING_DIM)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # one text alone embeds as it does inside a padded batch
    np.testing.assert_allclose(np.array(pipeline.embed_query("hi")), vectors[0], atol=1e-5)

    raw = og.TextEmbeddingPipeline(str(built["embedding"]), "CPU", pooling_type=pooling.CLS, normalize=False)
    vector = np.array(raw.embed_query("hi"))
    assert vector.shape == (fixtures.EMBEDDING_DIM,)
    assert abs(np.linalg.norm(vector) - 1.0) > 1e-3


@pytest.mark.parametrize("name", ["rerank", "rerank_llm"])
def test_rerank_pipeline_scores_documents(built: dict[str, Path], name: str) -> None:
    pipeline = og.TextRerankPipeline(str(built[name]), "CPU", top_n=3)
    ranked = pipeline.rerank("what is a fox", DOCUMENTS)
    assert len(ranked) == 3
    assert len({index for index, _ in ranked}) == 3 and all(0 <= index < len(DOCUMENTS) for index, _ in ranked)
    scores = [score for _, score in ranked]
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert scores == sorted(scores, reverse=True)
    assert pipeline.rerank("what is a fox", DOCUMENTS) == ranked


def test_cross_encoder_tokenizer_encodes_pairs(built: dict[str, Path]) -> None:
    tokenizer = og.Tokenizer(str(built["rerank"]), add_second_input=True)
    assert tokenizer.supports_paired_input()
    reference = Tokenizer.from_file(str(built["rerank"] / "tokenizer.json"))
    encoded = tokenizer.encode(["what is a fox"], ["the quick brown fox"])
    assert encoded.input_ids.data[0].tolist() == reference.encode("what is a fox", "the quick brown fox").ids


def test_builds_are_deterministic(built: dict[str, Path], tmp_path: Path) -> None:
    assert folder_digest(fixtures.build_llm(tmp_path / "llm")) == folder_digest(built["llm"])
    assert folder_digest(fixtures.build_rerank(tmp_path / "rerank")) == folder_digest(built["rerank"])
