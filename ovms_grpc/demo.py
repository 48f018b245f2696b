"""The built-in demo repository, made in code with the OpenVINO opset API (no download).

- ``dummy``: FP32 [1,10] input ``b`` -> output ``a`` = b + 1 (version 1) or b + 2 (version 2),
  the same signature as OVMS's test model of that name.
- ``llm``: a tiny random-weight LLM with a byte-level BPE tokenizer and a ChatML template
  (``ovms_grpc.genai.fixtures``), served for ``ovms.generation.v1`` and the OpenAI-style routes.
- ``resnet_like``: a ResNet-50 topology (bottleneck blocks 3-4-6-3, about 25.6M parameters)
  with random weights: FP32 [1,3,224,224] input ``input`` -> [1,1000] softmax ``output``.
- ``embed`` and ``rerank``: a tiny random BERT sentence embedder and cross-encoder reranker
  (``ovms_grpc.genai.fixtures``) for ``/v3/embeddings`` and ``/v3/rerank``.

The generative ones are OVMS folders with a graph.pbtxt (the LLM's names the hermes3 tool parser,
whose call format its chat template writes), read like any other such folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as op

log = logging.getLogger(__name__)

#: Bump when the demo models change, so stale caches are rebuilt.
DEMO_REVISION = 4

#: The tiny random-weight LLM that --demo serves for the generation APIs.
DEMO_LLM = "llm"

#: The generative demo models: name -> task (each a folder with a graph.pbtxt).
DEMO_GENERATIVE = {DEMO_LLM: "text_generation", "embed": "embeddings", "rerank": "rerank"}

#: OVMS's way of configuring a generative folder: a graph with the LLM calculator's options.

#: name -> (base folder, version policy as in config.json)
DEMO_MODELS = {
    "dummy": {"all": {}},
    "resnet_like": {"latest": {"num_versions": 1}},
}


def build_dummy(increment: float) -> ov.Model:
    data = op.parameter([1, 10], np.float32, name="b")
    result = op.add(data, op.constant(np.float32(increment)))
    result.output(0).get_tensor().set_names({"a"})
    return ov.Model([result], [data], "dummy")


def build_resnet_like(seed: int = 0) -> ov.Model:
    rng = np.random.default_rng(seed)

    def conv(x: ov.Node, cin: int, cout: int, kernel: int, stride: int) -> ov.Node:
        scale = np.sqrt(2.0 / (cin * kernel * kernel))
        weights = (rng.standard_normal((cout, cin, kernel, kernel)) * scale).astype(np.float32)
        pad = [kernel // 2, kernel // 2]
        y = op.convolution(x, op.constant(weights), [stride, stride], pad, pad, [1, 1])
        return op.add(y, op.constant(np.zeros((1, cout, 1, 1), np.float32)))

    def bottleneck(x: ov.Node, cin: int, mid: int, cout: int, stride: int) -> ov.Node:
        y = op.relu(conv(x, cin, mid, 1, 1))
        y = op.relu(conv(y, mid, mid, 3, stride))
        y = conv(y, mid, cout, 1, 1)
        shortcut = conv(x, cin, cout, 1, stride) if (stride != 1 or cin != cout) else x
        return op.relu(op.add(y, shortcut))

    image = op.parameter([1, 3, 224, 224], np.float32, name="input")
    y = op.relu(conv(image, 3, 64, 7, 2))
    y = op.max_pool(y, [2, 2], [1, 1], [1, 1], [1, 1], [3, 3], "floor").output(0)
    channels = 64
    for mid, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for index in range(blocks):
            y = bottleneck(y, channels, mid, mid * 4, stride if index == 0 else 1)
            channels = mid * 4
    y = op.reduce_mean(y, op.constant(np.array([2, 3], np.int64)), False)
    fc = (rng.standard_normal((2048, 1000)) * 0.01).astype(np.float32)
    y = op.softmax(op.matmul(y, op.constant(fc), False, False), 1)
    y.output(0).get_tensor().set_names({"output"})
    return ov.Model([y], [image], "resnet_like")


def write_repository(target: Path) -> Path:
    """Write the demo models and an OVMS config.json into ``target`` (created)."""
    target.mkdir(parents=True, exist_ok=True)
    for version, increment in ((1, 1.0), (2, 2.0)):
        folder = target / "dummy" / str(version)
        folder.mkdir(parents=True, exist_ok=True)
        ov.save_model(build_dummy(increment), str(folder / "model.xml"), compress_to_fp16=False)
    folder = target / "resnet_like" / "1"
    folder.mkdir(parents=True, exist_ok=True)
    ov.save_model(build_resnet_like(), str(folder / "model.xml"), compress_to_fp16=False)
    config = {
        "model_config_list": [
            {"config": {"name": name, "base_path": name, "model_version_policy": policy}}
            for name, policy in DEMO_MODELS.items()
        ]
    }
    from ovms_grpc.genai.fixtures import build_embedding, build_llm, build_rerank
    from ovms_grpc.genai.graph import GRAPH_FILE, graph_text
    from ovms_grpc.models.config import GenaiOptions

    builders = {"text_generation": build_llm, "embeddings": build_embedding, "rerank": build_rerank}
    for name, task in DEMO_GENERATIVE.items():
        builders[task](target / name)
        genai = GenaiOptions(tool_parser="hermes3") if task == "text_generation" else None
        (target / name / GRAPH_FILE).write_text(graph_text(task, genai=genai))
        config["model_config_list"].append({"config": {"name": name, "base_path": name}})
    (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return target


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ovms-grpc" / f"demo-r{DEMO_REVISION}"


def ensure_repository(cache_dir: Path | None = None) -> Path:
    """The demo repository in the cache, built on first use (a few seconds) and reused after."""
    target = cache_dir or default_cache_dir()
    if (target / "config.json").is_file():
        return target
    log.info("building the demo model repository in %s", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".demo-", dir=target.parent))
    try:
        write_repository(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first: use its copy
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
