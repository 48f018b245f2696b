"""A BERT encoder built with the OpenVINO opset API, for the embedding and cross-encoder rerank fixtures.

What openvino_genai expects (``src/cpp/src/rag`` in openvino.genai):

- ``TextEmbeddingPipeline``: inputs ``input_ids``, ``attention_mask`` (and optionally ``token_type_ids``),
  i64 ``[?, ?]``; one output named ``last_hidden_state`` ``[B, S, H]``. genai adds the pooling
  (CLS / mean / last token) and the optional L2 normalisation.
- ``TextRerankPipeline`` (cross-encoder): the same inputs; one output named ``logits``, ``[B, 1]`` (genai applies
  a sigmoid) or ``[B, 2]`` (softmax, class 1). The tokenizer is loaded with ``add_second_input=True``.

Weight names follow Hugging Face's ``BertModel`` so the builder takes random weights or a real checkpoint.
Position ids are computed in the graph as ``max(cumsum(attention_mask) - 1, 0)``: the same as BERT's for right
padding and still right for left padding, so a text embeds the same alone or in a padded batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import openvino as ov
import openvino.opset13 as ops

Head = Literal["embedding", "rerank"]


@dataclass(frozen=True)
class EncoderShape:
    """BERT dimensions, named as in a Hugging Face ``config.json``."""

    vocab_size: int
    """Rows of the word embedding (the tokenizer's vocabulary size)."""
    hidden_size: int = 32
    """Width of the hidden states and of the embeddings genai returns."""
    num_hidden_layers: int = 1
    """Encoder layers."""
    num_attention_heads: int = 2
    """Attention heads."""
    intermediate_size: int = 64
    """Width of the feed-forward layer."""
    max_position_embeddings: int = 512
    """Longest input; genai reads it from ``config.json``."""
    type_vocab_size: int = 2
    """Token types (segments A and B of a pair)."""
    layer_norm_eps: float = 1e-12
    """LayerNorm epsilon."""

    def config(self) -> dict[str, object]:
        return asdict(self)


def random_weights(shape: EncoderShape, seed: int = 0) -> dict[str, np.ndarray]:
    """Random BERT weights (std 0.2, unit LayerNorms, zero biases), pooler and one-logit classifier included."""
    rng = np.random.default_rng(seed)
    hidden, inter = shape.hidden_size, shape.intermediate_size

    def normal(*dims: int) -> np.ndarray:
        return (rng.standard_normal(dims, dtype=np.float32) * 0.2).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": normal(shape.vocab_size, hidden),
        "embeddings.position_embeddings.weight": normal(shape.max_position_embeddings, hidden),
        "embeddings.token_type_embeddings.weight": normal(shape.type_vocab_size, hidden),
        "embeddings.LayerNorm.weight": np.ones(hidden, np.float32),
        "embeddings.LayerNorm.bias": np.zeros(hidden, np.float32),
        "pooler.dense.weight": normal(hidden, hidden),
        "pooler.dense.bias": np.zeros(hidden, np.float32),
        "classifier.weight": normal(1, hidden),
        "classifier.bias": np.zeros(1, np.float32),
    }
    for layer in range(shape.num_hidden_layers):
        prefix = f"encoder.layer.{layer}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            weights[prefix + name + ".weight"] = normal(hidden, hidden)
            weights[prefix + name + ".bias"] = np.zeros(hidden, np.float32)
        weights[prefix + "intermediate.dense.weight"] = normal(inter, hidden)
        weights[prefix + "intermediate.dense.bias"] = np.zeros(inter, np.float32)
        weights[prefix + "output.dense.weight"] = normal(hidden, inter)
        weights[prefix + "output.dense.bias"] = np.zeros(hidden, np.float32)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[prefix + name + ".weight"] = np.ones(hidden, np.float32)
            weights[prefix + name + ".bias"] = np.zeros(hidden, np.float32)
    return weights


def _const(value: np.ndarray | int | float, dtype: type = np.int64) -> ov.Node:
    # scalars stay 0-d: axes and Range-like inputs need true scalars (np.ascontiguousarray would make them [1])
    return ops.constant(np.array(value, dtype=dtype) if not isinstance(value, np.ndarray) else value.copy())


def build_bert(weights: dict[str, np.ndarray], shape: EncoderShape, head: Head) -> ov.Model:
    """``head="embedding"``: output ``last_hidden_state`` [B,S,H]; ``"rerank"``: output ``logits`` [B,1]."""
    hidden, heads = shape.hidden_size, shape.num_attention_heads
    size = hidden // heads
    eps = shape.layer_norm_eps

    def linear(x: ov.Node, name: str) -> ov.Node:
        y = ops.matmul(x, _const(weights[name + ".weight"]), False, True)
        return ops.add(y, _const(weights[name + ".bias"]))

    def layer_norm(x: ov.Node, name: str) -> ov.Node:
        normed = ops.mvn(x, _const(np.array([-1], np.int64)), True, eps, "inside_sqrt")
        return ops.add(ops.multiply(normed, _const(weights[name + ".weight"])), _const(weights[name + ".bias"]))

    def split_heads(x: ov.Node) -> ov.Node:  # [B,S,H] -> [B,heads,S,size]
        x = ops.reshape(x, _const(np.array([0, 0, heads, size], np.int64)), True)
        return ops.transpose(x, _const(np.array([0, 2, 1, 3], np.int64)))

    params = [
        ops.parameter([-1, -1], ov.Type.i64, name=name) for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    for param in params:
        param.output(0).set_names({param.get_friendly_name()})
    input_ids, attention_mask, token_type_ids = params

    axis0 = _const(0)
    x = ops.gather(_const(weights["embeddings.word_embeddings.weight"]), input_ids, axis0)
    positions = ops.maximum(ops.subtract(ops.cumsum(attention_mask, _const(1)), _const(1)), _const(0))
    x = ops.add(x, ops.gather(_const(weights["embeddings.position_embeddings.weight"]), positions, axis0))
    x = ops.add(x, ops.gather(_const(weights["embeddings.token_type_embeddings.weight"]), token_type_ids, axis0))
    x = layer_norm(x, "embeddings.LayerNorm")

    # additive attention mask [B,1,1,S]: 0 where attended, -10000 on padding
    mask = ops.multiply(
        ops.subtract(_const(1.0, np.float32), ops.convert(attention_mask, "f32")), _const(-1e4, np.float32)
    )
    mask = ops.unsqueeze(mask, _const(np.array([1, 2], np.int64)))

    for layer in range(shape.num_hidden_layers):
        prefix = f"encoder.layer.{layer}."
        query = split_heads(linear(x, prefix + "attention.self.query"))
        key = split_heads(linear(x, prefix + "attention.self.key"))
        value = split_heads(linear(x, prefix + "attention.self.value"))
        attended = ops.scaled_dot_product_attention(query, key, value, mask, causal=False)
        attended = ops.reshape(
            ops.transpose(attended, _const(np.array([0, 2, 1, 3], np.int64))),
            _const(np.array([0, 0, hidden], np.int64)),
            True,
        )
        x = layer_norm(
            ops.add(linear(attended, prefix + "attention.output.dense"), x), prefix + "attention.output.LayerNorm"
        )
        inner = ops.gelu(linear(x, prefix + "intermediate.dense"), "erf")
        x = layer_norm(ops.add(linear(inner, prefix + "output.dense"), x), prefix + "output.LayerNorm")

    if head == "embedding":
        output, name = x, "last_hidden_state"
    else:
        cls = ops.gather(x, _const(0), _const(1))  # [B,H]
        pooled = ops.tanh(linear(cls, "pooler.dense"))
        output, name = linear(pooled, "classifier"), "logits"
    result = ops.result(output)
    result.output(0).set_names({name})
    return ov.Model([result], params, f"bert_{head}")
