"""A generation engine for NPU: openvino_genai's LLMPipeline, one request at a time, in a worker thread.

The NPU runs LLMPipeline (no continuous batching). ``LLMPipeline.generate`` releases the GIL, so
it runs in one worker thread of the server process; requests are accepted concurrently and served
one by one in arrival order. The streamer gets token ids in the worker thread, detokenizes them
incrementally and hands the new text to the request's asyncio queue with ``call_soon_threadsafe``.
A cancelled request stops its generation at the next token. OVMS's NPU limits are enforced with
clear errors before a request waits: one choice (``n`` = 1, no ``best_of``), no logprobs, no echo.

It offers the same interface as `EngineProcess`, so the servable and the RPCs don't know which
one they drive.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ovms_grpc.genai.engine import Admitted, Delta
from ovms_grpc.genai.engine_child import (
    checked_token_ids,
    completion_budget,
    context_length,
    generation_config,
    text_delta,
    vocabulary_size,
)
from ovms_grpc_client.errors import InvalidArgument, LoadFailed, Overloaded, last_line

log = logging.getLogger(__name__)


def check_serial_limits(device: str, options: dict[str, Any]) -> None:
    """OVMS's limits of LLMPipeline on NPU; raises InvalidArgument naming the option."""
    if max(options.get("n") or 1, 1) > 1:
        raise InvalidArgument(f"n greater than 1 is not supported on {device} (LLMPipeline serves one choice)")
    if (options.get("best_of") or 1) > 1:
        raise InvalidArgument(f"best_of (beam search) is not supported on {device}")
    if options.get("logprobs"):
        raise InvalidArgument(f"logprobs are not supported on {device}")
    if options.get("echo"):
        raise InvalidArgument(f"echo is not supported on {device}")
    if options.get("json_schema") or options.get("forced_tools"):
        raise InvalidArgument(f"response_format and forced tool calls are not supported on {device}")


class _Streamer:
    """Receives token ids in the worker thread; sends text deltas to the request's queue."""

    def __init__(self, og: Any, tokenizer: Any, post: Any, cancelled: threading.Event) -> None:
        base = og.StreamerBase
        streamer = self

        class Streamer(base):  # type: ignore[misc, valid-type]
            def write(self, token: Any) -> Any:
                return streamer.write(token)

            def end(self) -> None:
                return None

        self.og, self.tokenizer, self.post, self.cancelled = og, tokenizer, post, cancelled
        self.ids: list[int] = []
        self.sent = ""
        self.native = Streamer()

    def write(self, token: Any) -> Any:
        new_ids = list(token) if isinstance(token, list) else [int(token)]
        self.ids.extend(new_ids)
        text = self.tokenizer.decode(self.ids)
        new, self.sent = text_delta(text, self.sent, False)
        self.post(Delta(0, new, len(new_ids), ""))
        return self.og.StreamingStatus.CANCEL if self.cancelled.is_set() else self.og.StreamingStatus.RUNNING


class SerialEngine:
    def __init__(self, name: str, model_dir: str, device: str, options: dict[str, Any], max_queued: int = 1024) -> None:
        self.name = name
        self._model_dir = model_dir
        self._device = device
        self._options = options
        self._max_queued = max_queued
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llm-{name}")
        self._pipe: Any = None
        self._tokenizer: Any = None
        self._og: Any = None
        self._waiting = 0
        self._ids = itertools.count(1)
        self._context = context_length(model_dir)
        self.restarts = 0

    @property
    def alive(self) -> bool:
        return self._pipe is not None

    @property
    def pid(self) -> int | None:
        return os.getpid()

    @property
    def running_requests(self) -> int:
        return self._waiting

    def _load(self) -> None:
        import openvino as ov
        import openvino_genai as og

        available = ov.Core().available_devices
        if self._device not in available and self._device.split(".")[0] not in available:
            raise RuntimeError(f"device {self._device} is not available here (OpenVINO sees {', '.join(available)})")

        properties = dict(self._options.get("plugin_config") or {})
        if self._options.get("max_prompt_len"):
            properties.setdefault("MAX_PROMPT_LEN", self._options["max_prompt_len"])
        self._pipe = og.LLMPipeline(self._model_dir, self._device, properties)
        self._tokenizer = self._pipe.get_tokenizer()
        self._og = og

    async def start(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._load)
        except Exception as exc:
            raise LoadFailed(f"cannot load LLMPipeline on {self._device}: {last_line(exc)}") from exc
        log.info('LLMPipeline of "%s" ready on %s', self.name, self._device)

    def _prompt(self, kind: str, payload: Any, options: dict[str, Any]) -> str:
        if kind == "chat":
            return self._tokenizer.apply_chat_template(
                payload, add_generation_prompt=True, tools=options.get("tools") or None,
                extra_context=options.get("chat_template_kwargs") or None,
            )  # fmt: skip
        return payload

    def _generate(self, kind: str, payload: Any, options: dict[str, Any], post: Any, cancelled: threading.Event) -> str:
        """Runs in the worker thread: one whole generation; returns its finish reason."""
        if cancelled.is_set():
            return "abort"
        if isinstance(payload, list) and kind == "completion":  # a prompt of token ids
            vocabulary = vocabulary_size(self._model_dir, self._tokenizer)
            prompt = self._tokenizer.decode(checked_token_ids(payload, vocabulary, InvalidArgument))
        else:
            prompt = self._prompt(kind, payload, options)
        prompt_tokens = int(self._tokenizer.encode(prompt).input_ids.shape[1])
        limit = self._options.get("max_prompt_len") or 0
        if limit and prompt_tokens > limit:
            raise InvalidArgument(f"the prompt has {prompt_tokens} tokens, more than max_prompt_len ({limit} tokens)")
        if self._context and prompt_tokens >= self._context:
            raise InvalidArgument(
                f"the prompt has {prompt_tokens} tokens; the model's context is {self._context} tokens"
                " and must also hold the generated tokens"
            )
        default = self._options.get("default_max_tokens", 1024)
        try:
            max_tokens = completion_budget(self._context, prompt_tokens, options.get("max_tokens"), default)
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from None
        post(Admitted(prompt_tokens))
        config = generation_config(self._og, {**options, "max_tokens": max_tokens}, None)
        streamer = _Streamer(self._og, self._tokenizer, post, cancelled)
        self._pipe.generate(prompt, config, streamer.native)
        return "length" if len(streamer.ids) >= max_tokens else "stop"

    async def generate(self, kind: str, payload: Any, options: dict[str, Any]) -> AsyncIterator[Admitted | Delta]:
        """Same contract as EngineProcess.generate: Admitted, then Deltas until the choice finished."""
        check_serial_limits(self._device, options)
        if self._waiting >= self._max_queued:
            raise Overloaded(f'model "{self.name}": {self._waiting} requests are already generating or waiting')
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        cancelled = threading.Event()

        def post(event: Admitted | Delta) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        self._waiting += 1
        job = loop.run_in_executor(self._executor, self._generate, kind, payload, options, post, cancelled)
        job.add_done_callback(lambda done: events.put_nowait(done))
        try:
            while True:
                event = await events.get()
                if isinstance(event, asyncio.Future):  # the generation returned or raised, after its last delta
                    yield Delta(0, "", 0, event.result())
                    return
                yield event
        finally:
            cancelled.set()
            self._waiting -= 1

    async def stop(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._pipe = None
