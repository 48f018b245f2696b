"""Tiny generative models built in code, offline and deterministically, for tests, benchmarks and the demo.

Each builder writes a model folder that openvino_genai loads as it loads a converted Hugging Face model:

- ``build_llm``: a random qwen2 LLM (2 layers, hidden 64, byte-level BPE of under 1000 tokens, ChatML template
  with system and tools): ``LLMPipeline`` and ``ContinuousBatchingPipeline``. Greedy output is printable ASCII and
  never EOS, so ``max_new_tokens`` always decides the length.
- ``build_embedding``: a random BERT encoder (1 layer, hidden ``EMBEDDING_DIM``): ``TextEmbeddingPipeline``.
- ``build_rerank``: the same encoder with a one-logit classifier and a pair-capable tokenizer:
  ``TextRerankPipeline`` as a cross-encoder.
- ``build_rerank_llm``: the LLM with ``model_type: qwen3``: ``TextRerankPipeline`` on genai's causal-LM path
  (score from the ``yes``/``no`` logits), as for Qwen3-Reranker.
- ``build_bench_llm``: the benchmark LLM (hidden 1024, 12 layers, about 185M parameters); not for unit tests.

Needs ``openvino-genai``, ``openvino-tokenizers``, ``tokenizers`` and ``gguf``; not ``transformers`` or torch.
``python -m ovms_grpc.genai.fixtures OUT [--bench]`` builds them from the command line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ovms_grpc.genai.fixtures_encoder import EncoderShape, Head, build_bert, random_weights
from ovms_grpc.genai.fixtures_gguf import LlmShape, gguf_to_ir, write_gguf
from ovms_grpc.genai.fixtures_ir import save_model
from ovms_grpc.genai.fixtures_tokenizers import (
    BERT_SPECIAL_TOKENS,
    BOS_TOKEN,
    CHAT_TEMPLATE,
    CHATML_SPECIAL_TOKENS,
    EOS_TOKEN,
    PAD_TOKEN,
    TokenizerSpec,
    build_wordpiece,
    token_id,
    train_byte_level_bpe,
    write_tokenizer,
)

__all__ = [
    "BENCH_LLM",
    "CHAT_TEMPLATE",
    "EMBEDDING_DIM",
    "TINY_LLM",
    "LlmShape",
    "build_all",
    "build_bench_llm",
    "build_embedding",
    "build_llm",
    "build_llm_gguf",
    "build_rerank",
    "build_rerank_llm",
]

TINY_LLM = LlmShape(hidden=64, layers=2, heads=4, kv_heads=2, ffn=128, context=2048)
#: About 185M parameters, almost all in the 12 blocks (the vocabulary is the tiny one).
BENCH_LLM = LlmShape(hidden=1024, layers=12, heads=16, kv_heads=16, ffn=3584, context=4096)
#: Width of the vectors the embedding fixture returns.
EMBEDDING_DIM = 32
_ENCODER_MAX_LENGTH = 512


def build_llm(target: Path, *, seed: int = 0) -> Path:
    """The tiny test LLM as a model folder at ``target`` (created); returns ``target``."""
    return _build_llm_folder(target, TINY_LLM, seed)


def build_bench_llm(target: Path, *, seed: int = 0) -> Path:
    """The ≈185M-parameter benchmark LLM at ``target``: about 370 MB, built in about 10 s with 1.2 GB of RAM."""
    return _build_llm_folder(target, BENCH_LLM, seed)


def build_llm_gguf(path: Path, *, shape: LlmShape = TINY_LLM, seed: int = 0) -> Path:
    """The same LLM as one GGUF file (genai loads it directly, as OVMS does with ``--gguf_filename``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_gguf(path, shape, train_byte_level_bpe(), seed)
    return path


def build_embedding(target: Path, *, seed: int = 0) -> Path:
    """The embedding encoder folder at ``target``: vectors of ``EMBEDDING_DIM`` floats."""
    return _build_encoder_folder(target, "embedding", seed)


def build_rerank(target: Path, *, seed: int = 0) -> Path:
    """The cross-encoder rerank folder at ``target``: one logit per (query, document) pair."""
    return _build_encoder_folder(target, "rerank", seed)


def build_rerank_llm(target: Path, *, seed: int = 0, llm: Path | None = None) -> Path:
    """The LLM rerank folder at ``target``: a copy of ``llm`` (built when not given) marked ``qwen3``."""
    if llm is None:
        build_llm(target, seed=seed)
    else:
        target.mkdir(parents=True, exist_ok=True)
        for source in llm.iterdir():
            if source.is_file():
                shutil.copyfile(source, target / source.name)
    config = json.loads((target / "config.json").read_text())
    config.update(model_type="qwen3", architectures=["Qwen3ForCausalLM"])
    _write_json(target / "config.json", config)
    return target


def build_all(target: Path) -> dict[str, Path]:
    """Every test fixture under ``target``: ``llm``, ``embedding``, ``rerank`` and ``rerank_llm`` folders."""
    llm = build_llm(target / "llm")
    return {
        "llm": llm,
        "embedding": build_embedding(target / "embedding"),
        "rerank": build_rerank(target / "rerank"),
        "rerank_llm": build_rerank_llm(target / "rerank_llm", llm=llm),
    }


def _build_llm_folder(target: Path, shape: LlmShape, seed: int) -> Path:
    tokenizer = train_byte_level_bpe()
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    with tempfile.TemporaryDirectory(prefix="ovms-grpc-llm-") as scratch:
        gguf_path = Path(scratch) / "model.gguf"
        parameters = write_gguf(gguf_path, shape, tokenizer, seed)
        gguf_to_ir(gguf_path, target)
    spec = TokenizerSpec(
        special_tokens=CHATML_SPECIAL_TOKENS,
        pad_token=PAD_TOKEN,
        model_max_length=shape.context,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        chat_template=CHAT_TEMPLATE,
    )
    write_tokenizer(tokenizer, spec, target, add_bos_token=False)
    ids = {token: token_id(tokenizer, token) for token in (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN)}
    _write_json(
        target / "config.json",
        {
            "model_type": "qwen2",
            "architectures": ["Qwen2ForCausalLM"],
            "hidden_size": shape.hidden,
            "num_hidden_layers": shape.layers,
            "num_attention_heads": shape.heads,
            "num_key_value_heads": shape.kv_heads,
            "intermediate_size": shape.ffn,
            "vocab_size": vocab_size,
            "max_position_embeddings": shape.context,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "tie_word_embeddings": False,
            "torch_dtype": "float16",
            "bos_token_id": ids[BOS_TOKEN],
            "eos_token_id": ids[EOS_TOKEN],
            "num_parameters": parameters,
        },
    )
    _write_json(
        target / "generation_config.json",
        {
            "bos_token_id": ids[BOS_TOKEN],
            "eos_token_id": ids[EOS_TOKEN],
            "pad_token_id": ids[PAD_TOKEN],
            "do_sample": False,
        },
    )
    return target


def _build_encoder_folder(target: Path, head: Head, seed: int) -> Path:
    tokenizer = build_wordpiece()
    shape = EncoderShape(
        vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
        hidden_size=EMBEDDING_DIM,
        max_position_embeddings=_ENCODER_MAX_LENGTH,
    )
    target.mkdir(parents=True, exist_ok=True)
    model = build_bert(random_weights(shape, seed), shape, head)
    save_model(model, target / "openvino_model.xml", f"bert_{head}")
    spec = TokenizerSpec(
        special_tokens=BERT_SPECIAL_TOKENS,
        pad_token="[PAD]",
        model_max_length=shape.max_position_embeddings,
        token_type_ids=True,
    )
    write_tokenizer(
        tokenizer,
        spec,
        target,
        cls_token="[CLS]",
        sep_token="[SEP]",
        unk_token="[UNK]",
        mask_token="[MASK]",
        do_lower_case=True,
    )
    config: dict[str, object] = {"model_type": "bert", **shape.config()}
    if head == "embedding":
        config["architectures"] = ["BertModel"]
    else:
        config.update(architectures=["BertForSequenceClassification"], num_labels=1, id2label={"0": "LABEL_0"})
    _write_json(target / "config.json", config)
    return target


def _write_json(path: Path, document: dict[str, object]) -> None:
    path.write_text(json.dumps(document, indent=1) + "\n")


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main(argv: list[str] | None = None) -> int:
    """``python -m ovms_grpc.genai.fixtures OUT [--bench]``: build, then print paths, sizes and seconds as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m ovms_grpc.genai.fixtures", description="Build the generative test fixtures."
    )
    parser.add_argument("target", type=Path, help="folder to build into (created)")
    parser.add_argument("--bench", action="store_true", help="also build the benchmark LLM into TARGET/bench_llm")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    folders = build_all(args.target)
    report: dict[str, object] = {"seconds": round(time.perf_counter() - started, 3)}
    if args.bench:
        started = time.perf_counter()
        folders["bench_llm"] = build_bench_llm(args.target / "bench_llm")
        report["bench_seconds"] = round(time.perf_counter() - started, 3)
    report["folders"] = {name: {"path": str(path), "bytes": _folder_bytes(path)} for name, path in folders.items()}
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
