"""The generation engine's child process: an openvino_genai ContinuousBatchingPipeline step loop.

``ContinuousBatchingPipeline.step()`` holds the GIL for the whole step, so it runs here, never
in the server. The child reads commands from its pipe between steps, tokenizes, applies chat
templates and detokenizes incrementally, and sends every step's new text for all requests in
one message. Messages (tuples, pickled by multiprocessing):

server -> child: ("add", rid, kind, payload, options) | ("abort", rid) | ("stop",)
child -> server: ("ready", info) | ("step", [delta, ...]) | ("fatal", message)
delta: (rid, choice, text, tokens, finish, logprobs) with finish "" | "stop" | "length" | "echo",
       or (rid, -1, error_message, 0, "error", None) when a request fails,
       or (rid, -2, "", prompt_tokens, "prompt", None) once, when the request is admitted.
logprobs: None, or [(token_text, logprob or None), ...] for the delta's tokens (None for the
first prompt token, which nothing predicts). A request with ``echo`` first gets one "echo" delta
per choice: the prompt text with, when asked, its tokens' logprobs.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from ovms_grpc.genai.grammar import constraint_of, structured_output
from ovms_grpc_client.errors import last_line

REPLACEMENT = "\ufffd"


def text_delta(text: str, sent: str, final: bool) -> tuple[str, str]:
    """The new part of an incrementally detokenized ``text`` after ``sent``, and what is sent then.

    Text ending in an incomplete UTF-8 sequence (a replacement character) waits for the next token,
    unless it is the last.
    """
    if not final and text.endswith(REPLACEMENT):
        return "", sent
    return (text[len(sent) :] if text.startswith(sent) else text), text


#: config.json keys that give a model's context length, most specific first.
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


def _model_config(model_dir: str) -> dict[str, Any]:
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def context_length(model_dir: str) -> int:
    """The model's context length from its config.json; 0 when it does not say."""
    config = _model_config(model_dir)
    for key in CONTEXT_KEYS:
        if isinstance(config.get(key), int) and config[key] > 0:
            return int(config[key])
    return 0


def vocabulary_size(model_dir: str, tokenizer: Any) -> int:
    """Token ids the model embeds: config.json's vocab_size, else the tokenizer's vocabulary (whose
    byte-level entries need not be valid UTF-8, so it is only the fallback)."""
    size = _model_config(model_dir).get("vocab_size")
    if isinstance(size, int) and size > 0:
        return size
    return len(tokenizer.get_vocab_vector())


@dataclass
class Choice:
    ids: list[int] = field(default_factory=list)
    sent: str = ""
    done: bool = False
    echo_ids: int = 0
    """Prompt tokens still to come at the start of openvino_genai's echoed output."""


@dataclass
class Running:
    handle: Any
    choices: dict[int, Choice] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    n: int = 1
    prompt_tokens: int = 0
    logprobs: bool = False
    genai_echo: bool = False
    """openvino_genai echoes the prompt with its logprobs at the start of each choice's output."""
    echo: tuple[str, list | None] | None = None
    """The echo sent before each choice's first output, when computed here."""


#: Request option -> GenerationConfig attribute, copied when the request sets it.
OPTION_ATTRIBUTES = (
    ("top_p", "top_p"),
    ("top_k", "top_k"),
    ("min_p", "min_p"),
    ("repetition_penalty", "repetition_penalty"),
    ("presence_penalty", "presence_penalty"),
    ("frequency_penalty", "frequency_penalty"),
    ("length_penalty", "length_penalty"),
    ("seed", "rng_seed"),
    ("include_stop_str_in_output", "include_stop_str_in_output"),
)


def generation_config(og: Any, options: dict[str, Any], eos_token_id: int | None) -> Any:
    """An openvino_genai GenerationConfig from the request's sampling options."""
    config = og.GenerationConfig()
    config.apply_chat_template = False
    config.max_new_tokens = options["max_tokens"]
    if eos_token_id is not None:
        config.set_eos_token_id(eos_token_id)
    temperature = options.get("temperature")
    n = max(options.get("n") or 1, 1)
    if temperature is not None and temperature > 0:
        config.do_sample = True
        config.temperature = temperature
    for name, attribute in OPTION_ATTRIBUTES:
        if options.get(name) is not None:
            setattr(config, attribute, options[name])
    if options.get("stop"):
        config.stop_strings = set(options["stop"])
    config.ignore_eos = bool(options.get("ignore_eos"))
    if options.get("logprobs"):
        config.logprobs = 1
    config.echo = bool(options.get("genai_echo"))
    constraint = structured_output(
        og,
        forced_tools=options.get("forced_tools") or (),
        tool_parser=options.get("tool_parser"),
        json_schema=options.get("json_schema"),
    )
    if constraint is not None:
        config.structured_output_config = constraint
    if n > 1:
        if not config.do_sample:  # several different choices need sampling
            config.do_sample = True
            config.temperature = 1.0
        config.num_return_sequences = n
    config.validate()
    return config


def completion_budget(context: int, prompt_tokens: int, max_tokens: int | None, default: int) -> int:
    """The tokens a request may generate: its max_tokens when that fits beside the prompt (else a
    ValueError naming both numbers, as OpenAI answers), or without one what the context leaves."""
    if max_tokens is not None:
        if context and prompt_tokens + max_tokens > context:
            raise ValueError(
                f"This model's maximum context length is {context} tokens. However, you requested "
                f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the prompt, {max_tokens} in the completion). "
                "Please reduce the length of the prompt or of max_tokens."
            )
        return max_tokens
    return min(default, context - prompt_tokens) if context else default


def checked_token_ids(ids: list[int], vocabulary: int, error: type[Exception]) -> list[int]:
    """``ids`` when each is a token id of the vocabulary; else ``error`` naming the first that is not."""
    bad = next(((i, t) for i, t in enumerate(ids) if not 0 <= t < vocabulary), None)
    if bad is not None:
        raise error(f"prompt[{bad[0]}] is token id {bad[1]}, outside the vocabulary (0..{vocabulary - 1})")
    return [int(t) for t in ids]


class RequestError(Exception):
    """A request the model cannot take; its message goes to the client as it is."""


class EngineLoop:
    def __init__(self, conn: Connection, model_dir: str, device: str, options: dict[str, Any]) -> None:
        import openvino as ov
        import openvino_genai as og

        self.og, self.ov = og, ov
        self.conn = conn
        self.model_dir, self.device = model_dir, device
        scheduler = og.SchedulerConfig()
        scheduler.cache_size = options.get("cache_size", 1)
        scheduler.enable_prefix_caching = self.prefix_caching = options.get("enable_prefix_caching", True)
        if options.get("max_num_seqs"):
            scheduler.max_num_seqs = options["max_num_seqs"]
        if options.get("max_num_batched_tokens"):
            scheduler.max_num_batched_tokens = options["max_num_batched_tokens"]
        self.plugin_config = options.get("plugin_config", {})
        self.pipe = og.ContinuousBatchingPipeline(model_dir, scheduler, device, self.plugin_config)
        self.tokenizer = self.pipe.get_tokenizer()
        self.default_max_tokens = options.get("default_max_tokens", 1024)
        self.max_prompt_len = options.get("max_prompt_len") or 0
        self.context = context_length(model_dir)
        self.eos = self.tokenizer.get_eos_token_id() if hasattr(self.tokenizer, "get_eos_token_id") else None
        self.running: dict[int, Running] = {}
        self.vocabulary: int | None = None
        self.unproven: set[int] = set()
        """Requests with a grammar that no step has compiled yet."""
        self.scorer: Any = None
        self.token_texts: dict[int, str] = {}

    def prompt_of(self, kind: str, payload: Any, options: dict[str, Any]) -> str:
        if kind == "chat":
            return self.tokenizer.apply_chat_template(
                payload,
                add_generation_prompt=True,
                tools=options.get("tools") or None,
                extra_context=options.get("chat_template_kwargs") or None,
            )
        return payload

    def known_ids(self, ids: list[int]) -> list[int]:
        """``ids`` if every one is in the vocabulary; else a RequestError naming the first that is not."""
        if self.vocabulary is None:
            self.vocabulary = vocabulary_size(self.model_dir, self.tokenizer)
        return checked_token_ids(ids, self.vocabulary, RequestError)

    def check_length(self, prompt_tokens: int) -> None:
        if self.max_prompt_len and prompt_tokens > self.max_prompt_len:
            raise RequestError(
                f"the prompt has {prompt_tokens} tokens, more than max_prompt_len ({self.max_prompt_len} tokens)"
            )
        if self.context and prompt_tokens >= self.context:
            raise RequestError(
                f"the prompt has {prompt_tokens} tokens; the model's context is {self.context} tokens"
                " and must also hold the generated tokens"
            )

    def token_text(self, token: int) -> str:
        text = self.token_texts.get(token)
        if text is None:
            text = self.token_texts[token] = self.tokenizer.decode([token])
        return text

    def with_logprobs(self, ids: list[int], logprobs: list[float | None]) -> list[tuple[str, float | None]]:
        return [(self.token_text(t), lp) for t, lp in zip(ids, logprobs, strict=True)]

    def score_prompt(self, ids: list[int]) -> list[float | None]:
        """Log probabilities of the prompt's tokens from one forward pass of the model's IR.

        openvino_genai echoes prompt logprobs, but with prefix caching on the cached part of a
        prompt has none; then this scores it instead.
        """
        if self.scorer is None:
            path = Path(self.model_dir) / "openvino_model.xml"
            self.scorer = self.ov.Core().compile_model(path, self.device, self.plugin_config).create_infer_request()
        request = self.scorer
        length = len(ids)
        feeds = {
            "input_ids": np.asarray([ids], dtype=np.int64),
            "attention_mask": np.ones((1, length), dtype=np.int64),
            "position_ids": np.arange(length, dtype=np.int64)[None],
            "beam_idx": np.zeros(1, dtype=np.int32),
        }
        names = {name for port in request.model_inputs for name in port.get_names()}
        request.reset_state()
        request.infer({name: value for name, value in feeds.items() if name in names})
        logits = request.get_output_tensor(0).data[0]
        scores: list[float | None] = [None]
        for start in range(0, length - 1, 256):  # rows in slices: [tokens, vocabulary] in float64 is large
            rows = logits[start : min(start + 256, length - 1)].astype(np.float64)
            peak = rows.max(axis=1)
            norm = peak + np.log(np.exp(rows - peak[:, None]).sum(axis=1))
            chosen = rows[np.arange(len(rows)), ids[start + 1 : start + 1 + len(rows)]]
            scores.extend((chosen - norm).tolist())
        request.reset_state()
        return scores

    def add(self, rid: int, kind: str, payload: Any, options: dict[str, Any]) -> list:
        try:
            if isinstance(payload, list) and kind == "completion":  # a prompt of token ids
                ids = self.known_ids(payload)
                prompt = self.tokenizer.decode(ids)  # what echo returns
            else:
                prompt = self.prompt_of(kind, payload, options)
                ids = [int(t) for t in self.tokenizer.encode(prompt).input_ids.data[0]]
            self.check_length(len(ids))
            try:
                max_tokens = completion_budget(
                    self.context, len(ids), options.get("max_tokens"), self.default_max_tokens
                )
            except ValueError as exc:
                raise RequestError(str(exc)) from None
            running = Running(None, n=max(options.get("n") or 1, 1), prompt_tokens=len(ids))
            running.logprobs = bool(options.get("logprobs"))
            running.genai_echo = bool(options.get("echo")) and running.logprobs and not self.prefix_caching
            if options.get("echo") and not running.genai_echo:
                running.echo = (prompt, self.with_logprobs(ids, self.score_prompt(ids)) if running.logprobs else None)
            replies: list = [(rid, -2, "", len(ids), "prompt", None)]
            if max_tokens == 0 and not running.genai_echo:  # echo alone: nothing to generate
                assert running.echo is not None
                for choice in range(running.n):
                    replies.append((rid, choice, running.echo[0], 0, "echo", running.echo[1]))
                    replies.append((rid, choice, "", 0, "length", None))
                return replies
            config = generation_config(
                self.og, {**options, "max_tokens": max_tokens, "genai_echo": running.genai_echo}, None
            )
            # the ids already counted, not the text: the prompt is tokenized once
            running.handle = self.pipe.add_request(rid, self.ov.Tensor(np.asarray([ids], dtype=np.int64)), config)
            if constraint_of(forced_tools=options.get("forced_tools") or (), json_schema=options.get("json_schema")):
                self.unproven.add(rid)
        except RequestError as exc:
            return [(rid, -1, str(exc), 0, "error", None)]
        except Exception as exc:  # a request the model cannot take fails alone
            return [(rid, -1, f"{type(exc).__name__}: {exc}".splitlines()[0], 0, "error", None)]
        self.running[rid] = running
        return replies

    def fail_step(self, exc: Exception) -> None:
        """A step raised (the grammar compiler rejects some schemas only then): requests with a grammar
        added since the last good step are the suspects and fail as bad requests; the others fail as
        victims that may retry."""
        reason = last_line(exc)
        reason = reason.split("Check failed: ")[-1] if "Check failed: " in reason else reason
        replies = [
            (rid, -1, f"the output constraint was rejected: {reason}", 0, "error", None)
            if rid in self.unproven
            else (rid, -1, reason, 0, "failed", None)
            for rid in self.running
        ]
        self.conn.send(("step", replies))

    def abort(self, rid: int) -> None:
        running = self.running.pop(rid, None)
        if running is not None:
            running.handle.cancel()

    def _read(self, rid: int, running: Running, deltas: list) -> None:
        for seq_id, output in running.handle.read().items():
            if seq_id not in running.choices:
                running.choices[seq_id] = Choice(echo_ids=running.prompt_tokens if running.genai_echo else 0)
                running.order.append(seq_id)
                if running.echo is not None:
                    deltas.append((rid, len(running.order) - 1, running.echo[0], 0, "echo", running.echo[1]))
            choice = running.choices[seq_id]
            index = running.order.index(seq_id)
            ids = list(output.generated_ids)
            logprobs: list = list(output.generated_log_probs) if running.logprobs else []
            if choice.echo_ids:  # openvino_genai's echo: the prompt's tokens come first
                if len(ids) < choice.echo_ids:
                    raise RuntimeError("openvino_genai echoed the prompt in pieces")
                prompt_ids, ids = ids[: choice.echo_ids], ids[choice.echo_ids :]
                prompt_logprobs: list = [None, *logprobs[1 : choice.echo_ids]]
                logprobs = logprobs[choice.echo_ids :]
                choice.echo_ids = 0
                text = self.tokenizer.decode(prompt_ids)
                deltas.append((rid, index, text, 0, "echo", self.with_logprobs(prompt_ids, prompt_logprobs)))
            choice.ids.extend(ids)
            text = self.tokenizer.decode(choice.ids)
            reason = output.finish_reason
            finish = ""
            if reason == self.og.GenerationFinishReason.STOP:
                finish = "stop"
            elif reason == self.og.GenerationFinishReason.LENGTH:
                finish = "length"
            token_logprobs = self.with_logprobs(ids, logprobs) if running.logprobs else None
            new, choice.sent = text_delta(text, choice.sent, bool(finish))
            if new or finish or ids:
                deltas.append((rid, index, new, len(ids), finish, token_logprobs))
            choice.done = choice.done or bool(finish)

    def collect(self) -> list:
        deltas: list = []
        finished = []
        for rid, running in self.running.items():
            handle = running.handle
            if handle.can_read():
                self._read(rid, running, deltas)
            status = handle.get_status()
            if status != self.og.GenerationStatus.RUNNING and not handle.can_read():
                for seq_id in running.order:
                    if not running.choices[seq_id].done:
                        deltas.append((rid, running.order.index(seq_id), "", 0, "stop", None))
                finished.append(rid)
        for rid in finished:
            del self.running[rid]
        return deltas

    def run(self) -> None:
        self.conn.send(("ready", {"eos_token_id": self.eos}))
        while True:
            while self.conn.poll(0 if self.running else None):
                message = self.conn.recv()
                if message[0] == "stop":
                    return
                if message[0] == "abort":
                    self.abort(message[1])
                elif message[0] == "add":
                    replies = self.add(*message[1:])
                    self.conn.send(("step", replies))
            if self.running:
                try:
                    self.pipe.step()
                except Exception as exc:
                    self.fail_step(exc)
                    raise  # the pipeline is unusable after a failed step: the server starts a new engine
                self.unproven.clear()
                deltas = self.collect()
                if deltas:
                    self.conn.send(("step", deltas))


def main(conn: Connection, model_dir: str, device: str, options: dict[str, Any]) -> None:
    """Entry point of the spawned child process."""
    try:
        EngineLoop(conn, model_dir, device, options).run()
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the server went away
    except Exception as exc:
        try:
            conn.send(("fatal", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"))
        except OSError:
            pass
