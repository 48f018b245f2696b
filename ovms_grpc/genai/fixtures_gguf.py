"""Random-weight qwen2 LLMs written as GGUF, and turned into an OpenVINO IR folder by openvino_genai itself.

openvino_genai (2026.x) builds the stateful LLM graph from a GGUF file at load time and can save it
(``enable_save_ov_model=True``), so no graph is built by hand here. What genai's GGUF reader requires
(``src/cpp/src/gguf_utils`` in openvino.genai): architecture ``llama``/``qwen2``/``qwen3``; 2-D weights in F16
(F32 matrices fail with "Unsupported quantization type"); ``block_count``, ``head_count``, ``embedding_length``,
``layer_norm_rms_epsilon`` and ``general.file_type``; a ``gpt2`` (byte-level BPE) tokenizer section. Weights are
passed as numpy ``[out, in]`` arrays; the writer reverses the dims and genai reverses them back.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import gguf
import numpy as np
import openvino as ov
from tokenizers import Tokenizer

from ovms_grpc.genai.fixtures_ir import save_model
from ovms_grpc.genai.fixtures_tokenizers import (
    BOS_TOKEN,
    CHAT_TEMPLATE,
    CHATML_SPECIAL_TOKENS,
    EOS_TOKEN,
    PAD_TOKEN,
    merges,
    vocabulary,
)


@dataclass(frozen=True)
class LlmShape:
    """Dimensions of a qwen2-architecture model."""

    hidden: int
    """Embedding width."""
    layers: int
    """Decoder blocks."""
    heads: int
    """Attention heads (head size is hidden / heads)."""
    kv_heads: int
    """Key/value heads (grouped-query attention when fewer than ``heads``)."""
    ffn: int
    """Width of the SwiGLU feed-forward layer."""
    context: int
    """Context length written to the model's metadata and ``max_position_embeddings``."""

    def parameters(self, vocab_size: int) -> int:
        """Number of weights: embeddings, untied lm_head, attention (with q/k/v biases), feed-forward, norms."""
        head = self.hidden // self.heads
        attention = 2 * self.hidden * self.heads * head + 2 * self.hidden * self.kv_heads * head
        biases = (self.heads + 2 * self.kv_heads) * head
        block = attention + biases + 3 * self.hidden * self.ffn + 2 * self.hidden
        return 2 * vocab_size * self.hidden + self.layers * block + self.hidden


@cache
def _byte_of_char() -> dict[str, int]:
    """GPT-2's byte-level alphabet, reversed: printable character -> byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {chr(char): byte for byte, char in zip(printable, chars, strict=True)}


def is_printable_ascii(token: str) -> bool:
    """Whether a byte-level token decodes to printable ASCII (space included, no control bytes)."""
    table = _byte_of_char()
    return all(char in table and 32 <= table[char] < 127 for char in token)


def write_gguf(path: Path, shape: LlmShape, tokenizer: Tokenizer, seed: int = 0) -> int:
    """Write a random qwen2 GGUF with ``tokenizer`` and the ChatML template; return its parameter count.

    The lm_head rows of special tokens and of tokens that are not printable ASCII are zero, so greedy
    decoding yields readable ASCII and never picks the EOS token: generation always runs to
    ``max_new_tokens``. Stopping is tested with stop strings or stop token ids.
    """
    tokens = vocabulary(tokenizer)
    rng = np.random.default_rng(seed)
    head = shape.hidden // shape.heads

    def matrix(rows: int, cols: int, scale: float | None = None) -> np.ndarray:
        std = scale if scale is not None else 1.0 / np.sqrt(cols)
        return (rng.standard_normal((rows, cols), dtype=np.float32) * std).astype(np.float16)

    def ones(size: int) -> np.ndarray:
        return np.ones(size, dtype=np.float32)

    def zeros(size: int) -> np.ndarray:
        return np.zeros(size, dtype=np.float32)

    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_name(f"ovms-grpc-random-qwen2-h{shape.hidden}-l{shape.layers}")
    writer.add_block_count(shape.layers)
    writer.add_context_length(shape.context)
    writer.add_embedding_length(shape.hidden)
    writer.add_feed_forward_length(shape.ffn)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(
        [gguf.TokenType.CONTROL if token in CHATML_SPECIAL_TOKENS else gguf.TokenType.NORMAL for token in tokens]
    )
    writer.add_token_merges(merges(tokenizer))
    writer.add_bos_token_id(tokens.index(BOS_TOKEN))
    writer.add_eos_token_id(tokens.index(EOS_TOKEN))
    writer.add_pad_token_id(tokens.index(PAD_TOKEN))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", matrix(len(tokens), shape.hidden, 1.0))
    writer.add_tensor("output_norm.weight", ones(shape.hidden))
    lm_head = matrix(len(tokens), shape.hidden, 1.0)
    for index, token in enumerate(tokens):
        if token in CHATML_SPECIAL_TOKENS or not is_printable_ascii(token):
            lm_head[index] = 0
    writer.add_tensor("output.weight", lm_head)
    for layer in range(shape.layers):
        prefix = f"blk.{layer}."
        writer.add_tensor(prefix + "attn_norm.weight", ones(shape.hidden))
        writer.add_tensor(prefix + "attn_q.weight", matrix(shape.heads * head, shape.hidden))
        writer.add_tensor(prefix + "attn_k.weight", matrix(shape.kv_heads * head, shape.hidden))
        writer.add_tensor(prefix + "attn_v.weight", matrix(shape.kv_heads * head, shape.hidden))
        writer.add_tensor(prefix + "attn_q.bias", zeros(shape.heads * head))
        writer.add_tensor(prefix + "attn_k.bias", zeros(shape.kv_heads * head))
        writer.add_tensor(prefix + "attn_v.bias", zeros(shape.kv_heads * head))
        writer.add_tensor(prefix + "attn_output.weight", matrix(shape.hidden, shape.heads * head))
        writer.add_tensor(prefix + "ffn_norm.weight", ones(shape.hidden))
        writer.add_tensor(prefix + "ffn_gate.weight", matrix(shape.ffn, shape.hidden))
        writer.add_tensor(prefix + "ffn_up.weight", matrix(shape.ffn, shape.hidden))
        writer.add_tensor(prefix + "ffn_down.weight", matrix(shape.hidden, shape.ffn))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return shape.parameters(len(tokens))


def gguf_to_ir(gguf_path: Path, folder: Path) -> None:
    """Let openvino_genai convert a GGUF into ``openvino_model.xml/bin`` (FP16 weights) inside ``folder``.

    genai writes the IR (and tokenizer IRs derived from the GGUF, not used here) next to the file it
    loads, so the conversion runs on a link to it in a scratch folder.
    """
    import openvino_genai

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ovms-grpc-gguf-") as scratch:
        staged = Path(scratch) / "model.gguf"
        try:
            staged.hardlink_to(gguf_path)
        except OSError:
            shutil.copyfile(gguf_path, staged)
        pipeline = openvino_genai.LLMPipeline(str(staged), "CPU", enable_save_ov_model=True)
        del pipeline
        model = ov.Core().read_model(str(Path(scratch) / "openvino_model.xml"))
        save_model(model, folder / "openvino_model.xml", "model")
