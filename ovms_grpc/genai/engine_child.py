"""The generation engine's child process: an openvino_genai ContinuousBatchingPipeline step loop.

``ContinuousBatchingPipeline.step()`` holds the GIL for the whole step, so it runs here, never
in the server. The child reads commands from its pipe between steps, tokenizes, applies chat
templates and detokenizes incrementally, and sends every step's new text for all requests in
one message. Messages (tuples, pickled by multiprocessing):

server -> child: ("add", rid, kind, payload, options) | ("abort", rid) | ("stop",)
child -> server: ("ready", info) | ("step", [delta, ...]) | ("fatal", message)
delta: (rid, choice, text, tokens, finish) with finish "" | "stop" | "length" | "abort",
       or (rid, -1, error_message, 0, "error") when a request fails,
       or (rid, -2, "", prompt_tokens, "prompt") once, when the request is admitted.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

REPLACEMENT = "\ufffd"


@dataclass
class Choice:
    ids: list[int] = field(default_factory=list)
    sent: str = ""
    done: bool = False


@dataclass
class Running:
    handle: Any
    choices: dict[int, Choice] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    n: int = 1


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
    config.max_new_tokens = options.get("max_tokens") or options["default_max_tokens"]
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
    if n > 1:
        if not config.do_sample:  # several different choices need sampling
            config.do_sample = True
            config.temperature = 1.0
        config.num_return_sequences = n
    config.validate()
    return config


class EngineLoop:
    def __init__(self, conn: Connection, model_dir: str, device: str, options: dict[str, Any]) -> None:
        import openvino_genai as og

        self.og = og
        self.conn = conn
        scheduler = og.SchedulerConfig()
        scheduler.cache_size = options.get("cache_size", 1)
        scheduler.enable_prefix_caching = options.get("enable_prefix_caching", True)
        if options.get("max_num_seqs"):
            scheduler.max_num_seqs = options["max_num_seqs"]
        if options.get("max_num_batched_tokens"):
            scheduler.max_num_batched_tokens = options["max_num_batched_tokens"]
        self.pipe = og.ContinuousBatchingPipeline(model_dir, scheduler, device, options.get("plugin_config", {}))
        self.tokenizer = self.pipe.get_tokenizer()
        self.default_max_tokens = options.get("default_max_tokens", 1024)
        self.max_prompt_len = options.get("max_prompt_len") or 0
        self.eos = self.tokenizer.get_eos_token_id() if hasattr(self.tokenizer, "get_eos_token_id") else None
        self.running: dict[int, Running] = {}

    def prompt_of(self, kind: str, payload: Any, options: dict[str, Any]) -> str:
        if kind == "chat":
            return self.tokenizer.apply_chat_template(
                payload,
                add_generation_prompt=True,
                tools=options.get("tools") or None,
                extra_context=options.get("chat_template_kwargs") or None,
            )
        return payload

    def add(self, rid: int, kind: str, payload: Any, options: dict[str, Any]) -> list:
        try:
            prompt = self.prompt_of(kind, payload, options)
            prompt_tokens = int(self.tokenizer.encode(prompt).input_ids.shape[1])
            if self.max_prompt_len and prompt_tokens > self.max_prompt_len:
                raise ValueError(f"the prompt has {prompt_tokens} tokens; max_prompt_len is {self.max_prompt_len}")
            config = generation_config(self.og, {**options, "default_max_tokens": self.default_max_tokens}, None)
            handle = self.pipe.add_request(rid, prompt, config)
        except Exception as exc:  # a request the model cannot take fails alone
            return [(rid, -1, f"{type(exc).__name__}: {exc}".splitlines()[0], 0, "error")]
        self.running[rid] = Running(handle, n=max(options.get("n") or 1, 1))
        return [(rid, -2, "", prompt_tokens, "prompt")]

    def abort(self, rid: int) -> None:
        running = self.running.pop(rid, None)
        if running is not None:
            running.handle.cancel()

    def collect(self) -> list:
        deltas: list = []
        finished = []
        for rid, running in self.running.items():
            handle = running.handle
            if handle.can_read():
                for seq_id, output in handle.read().items():
                    if seq_id not in running.choices:
                        running.choices[seq_id] = Choice()
                        running.order.append(seq_id)
                    choice = running.choices[seq_id]
                    choice.ids.extend(output.generated_ids)
                    text = self.tokenizer.decode(choice.ids)
                    reason = output.finish_reason
                    finish = ""
                    if reason == self.og.GenerationFinishReason.STOP:
                        finish = "stop"
                    elif reason == self.og.GenerationFinishReason.LENGTH:
                        finish = "length"
                    if not finish and text.endswith(REPLACEMENT):
                        continue  # an incomplete UTF-8 sequence: wait for the next token
                    new = text[len(choice.sent) :] if text.startswith(choice.sent) else text
                    choice.sent = text
                    if new or finish or len(output.generated_ids):
                        deltas.append((rid, running.order.index(seq_id), new, len(output.generated_ids), finish))
                    choice.done = choice.done or bool(finish)
            status = handle.get_status()
            if status != self.og.GenerationStatus.RUNNING and not handle.can_read():
                for seq_id in running.order:
                    if not running.choices[seq_id].done:
                        deltas.append((rid, running.order.index(seq_id), "", 0, "stop"))
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
                self.pipe.step()
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
