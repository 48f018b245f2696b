"""Embedding and rerank models on openvino_genai (TextEmbeddingPipeline, TextRerankPipeline).

Their calls release the GIL, so they run in one worker thread per model (the pipelines are not
shared between threads), never on the event loop and without a child process.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ovms_grpc.metrics import GraphMetrics, Metrics
from ovms_grpc.models.base import BaseServable
from ovms_grpc.models.config import EncoderOptions
from ovms_grpc_client.errors import InvalidArgument, LoadFailed, Overloaded, last_line


class EncoderServable(BaseServable):
    """One embedding or rerank model; OVMS reports it as version 1."""

    def __init__(self, name: str, model_dir: Path, task: str, device: str, options: EncoderOptions, max_queued: int):
        super().__init__(name, 1)
        self.metrics: GraphMetrics = Metrics(families=()).for_graph(name)  # the manager sets the served ones
        self.task = task
        self._model_dir = model_dir
        self._device = device
        self._options = options
        self._max_queued = max_queued
        self._waiting = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{task}-{name}")
        self._pipeline: Any = None
        self._tokenizer: Any = None

    @property
    def properties(self) -> dict[str, str]:
        props = {"TASK": self.task}
        if self.task == "embeddings":
            props.update(NORMALIZE=str(self._options.normalize).upper(), POOLING=self._options.pooling)
        return props

    def _load(self) -> None:
        import openvino_genai as og

        if self.task == "embeddings":
            config = og.TextEmbeddingPipeline.Config()
            config.normalize = self._options.normalize
            config.pooling_type = {
                "CLS": og.TextEmbeddingPipeline.PoolingType.CLS,
                "MEAN": og.TextEmbeddingPipeline.PoolingType.MEAN,
                "LAST": og.TextEmbeddingPipeline.PoolingType.LAST_TOKEN,
            }[self._options.pooling]
            self._pipeline = og.TextEmbeddingPipeline(str(self._model_dir), self._device, config)
        else:
            config = og.TextRerankPipeline.Config()
            config.top_n = self._options.max_documents  # every document is scored; requests cut to their top_n
            self._pipeline = og.TextRerankPipeline(str(self._model_dir), self._device, config)
        self._tokenizer = og.Tokenizer(str(self._model_dir))

    async def start(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._load)
        except Exception as exc:
            raise LoadFailed(f"cannot load {self.task} model {self._model_dir}: {last_line(exc)}") from exc

    async def _run(self, function: Any, *args: Any) -> Any:
        if self._waiting >= self._max_queued:
            raise Overloaded(f'model "{self.name}": {self._waiting} requests already wait')
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
        finally:
            self._waiting -= 1

    def _count_tokens(self, texts: list[str]) -> int:
        return int(self._tokenizer.encode(texts).attention_mask.data.sum()) if texts else 0

    def _embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        return [list(v) for v in self._pipeline.embed_documents(texts)], self._count_tokens(texts)

    def _rerank(self, query: str, documents: list[str]) -> tuple[list[tuple[int, float]], int]:
        scores = self._pipeline.rerank(query, documents)
        return [(int(i), float(s)) for i, s in scores], self._count_tokens([query, *documents])

    def _embed_tokens(self, inputs: list[list[int]]) -> tuple[list[list[float]], int]:
        """Token-id inputs: detokenized, then embedded like text (the pipeline takes text only)."""
        vocabulary = len(self._tokenizer.get_vocab_vector())
        for index, ids in enumerate(inputs):
            if not ids:
                raise InvalidArgument(f"input[{index}] has no tokens")
            bad = next((t for t in ids if not 0 <= t < vocabulary), None)
            if bad is not None:
                raise InvalidArgument(
                    f"input[{index}] has token id {bad}, outside the vocabulary (0..{vocabulary - 1})"
                )
        return self._embed([self._tokenizer.decode(ids) for ids in inputs])

    async def embed(
        self, texts: list[str], token_inputs: list[list[int]] | None = None
    ) -> tuple[list[list[float]], int]:
        if texts and token_inputs:
            raise InvalidArgument("input must be homogeneous: texts or token ids, not both")
        if token_inputs:
            return await self._run(self._embed_tokens, token_inputs)
        if not texts:
            raise InvalidArgument("input field is required")
        return await self._run(self._embed, texts)

    async def rerank(self, query: str, documents: list[str]) -> tuple[list[tuple[int, float]], int]:
        if not documents:
            raise InvalidArgument("documents field is missing in request")
        if len(documents) > self._options.max_documents:
            raise InvalidArgument(
                f"exceeding max_allowed_chunks before chunking limit: {self._options.max_documents}; "
                f"actual: {len(documents)}"
            )
        return await self._run(self._rerank, query, documents)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._pipeline = None
