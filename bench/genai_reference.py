"""The in-process reference of the ``generation`` scenario: openvino_genai ContinuousBatchingPipeline, driven directly.

``python -m bench.genai_reference --model DIR [--cache-size GB] [--max-num-seqs N] [--enable-prefix-caching B]``
loads the pipeline as our server's engine does (same SchedulerConfig fields, device CPU, no plugin config), prints
one JSON line ``{"ready": ...}`` on stdout, then answers each JSON command line on stdin with one JSON line:

- ``{"op": "window", "key": K, "concurrency": C, "requests": R, "max_tokens": N, "prompt_words": W}``: C streams,
  each sending R requests one after the other (the k-th of stream s with prompt `prompt_text(f"{K}/{s}/{k}", W)`).
  Answers ``{"requests": [[sent, first, done, tokens, prompt_tokens], ...]}``, times in seconds from the first
  request.
- ``{"op": "text", "prompt": P, "max_tokens": N}``: one request alone; answers ``{"text": ..., "tokens": ...}``.

The loop is ``add_request`` / ``step`` / ``read`` (what the server's engine child does, without the server, the pipe
and the incremental detokenization): ``generate()`` cannot be the reference, as it returns when the whole batch is
done (no closed loop) and streams only a batch of one (no time to first token per stream). A request's first token
is stamped when a step's output of it is read, its end when its handle stops running. The process runs alone (the
server idles meanwhile), so the measuring client is not in the process that measures the scenario's served targets.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import sys
import time
from typing import Any

#: Words that each make one token (with their leading space) in ``build_bench_llm``'s tokenizer, so a prompt of
#: ``W`` words has ``W`` tokens whatever the words drawn; the served usage and the reference both report the count.
PROMPT_WORDS = (
    "the quick brown fox jumps over lazy dog hello world model server test tiny random weights token chat template "
    "assistant user system tool call function message content answer question what why how when where who which "
    "one two three four five six seven eight nine ten zero cat bird fish red green blue yellow apple banana code "
    "python stream request response generate weather city paris london sunny rain today name query document passage"
).split()


def prompt_text(key: str, words: int) -> str:
    """A prompt of ``words`` words drawn with a seed from ``key``: every key its own text (no shared prefix)."""
    seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    rng = random.Random(seed)
    return " ".join(rng.choice(PROMPT_WORDS) for _ in range(words))


class Reference:
    def __init__(self, model: str, cache_size: int, max_num_seqs: int, prefix_caching: bool) -> None:
        import openvino_genai as og

        self.og = og
        scheduler = og.SchedulerConfig()
        scheduler.cache_size = cache_size
        scheduler.enable_prefix_caching = prefix_caching
        if max_num_seqs:
            scheduler.max_num_seqs = max_num_seqs
        self.pipe = og.ContinuousBatchingPipeline(model, scheduler, "CPU", {})
        self.tokenizer = self.pipe.get_tokenizer()
        self.ids = itertools.count(1)

    def config(self, max_tokens: int) -> Any:
        """The GenerationConfig the server makes of ``max_tokens``, ``ignore_eos`` and temperature 0."""
        config = self.og.GenerationConfig()
        config.apply_chat_template = False
        config.max_new_tokens = max_tokens
        config.ignore_eos = True
        config.validate()
        return config

    def window(self, key: str, concurrency: int, requests: int, max_tokens: int, prompt_words: int) -> dict:
        config = self.config(max_tokens)
        running = self.og.GenerationStatus.RUNNING
        clock = time.perf_counter
        prompts: list[str] = []
        records: list[list[float]] = []
        # per stream: [handle, record, requests sent so far]
        streams: list[list[Any]] = []

        def send(stream: int, index: int) -> list[Any]:
            prompts.append(prompt_text(f"{key}/{stream}/{index}", prompt_words))
            record = [clock(), 0.0, 0.0, 0, 0]
            handle = self.pipe.add_request(next(self.ids), prompts[-1], config)
            records.append(record)
            return [handle, record, index + 1]

        start = clock()
        streams = [send(stream, 0) for stream in range(concurrency)]
        active = set(range(concurrency))
        while active:
            self.pipe.step()
            now = clock()
            for stream in list(active):
                handle, record, sent = streams[stream]
                if handle.can_read():
                    for output in handle.read().values():
                        count = len(output.generated_ids)
                        if count and not record[3]:
                            record[1] = now
                        record[3] += count
                if handle.get_status() != running and not handle.can_read():
                    record[2] = now
                    if sent < requests:
                        streams[stream] = send(stream, sent)
                    else:
                        active.discard(stream)
        for record, prompt in zip(records, prompts, strict=True):
            record[4] = int(self.tokenizer.encode(prompt).input_ids.shape[1])
            for index in range(3):
                record[index] -= start
        return {"requests": records}

    def text(self, prompt: str, max_tokens: int) -> dict:
        """One request alone, its generated ids detokenized at the end."""
        handle = self.pipe.add_request(next(self.ids), prompt, self.config(max_tokens))
        ids: list[int] = []
        while handle.get_status() == self.og.GenerationStatus.RUNNING or handle.can_read():
            if handle.get_status() == self.og.GenerationStatus.RUNNING:
                self.pipe.step()
            if handle.can_read():
                for output in handle.read().values():
                    ids += output.generated_ids
        return {"text": self.tokenizer.decode(ids), "tokens": len(ids)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.genai_reference", description=__doc__)
    parser.add_argument("--model", required=True, help="LLM model folder")
    parser.add_argument("--cache-size", type=int, default=1, help="KV-cache GB (default 1)")
    parser.add_argument("--max-num-seqs", type=int, default=256, help="scheduler max_num_seqs (default 256)")
    parser.add_argument("--enable-prefix-caching", choices=("true", "false"), default="true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    reference = Reference(args.model, args.cache_size, args.max_num_seqs, args.enable_prefix_caching == "true")
    out = sys.stdout

    def answer(document: dict) -> None:
        out.write(json.dumps(document) + "\n")
        out.flush()

    answer({"ready": True, "load_seconds": round(time.perf_counter() - started, 3)})
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "window":
            answer(
                reference.window(
                    command["key"],
                    command["concurrency"],
                    command["requests"],
                    command["max_tokens"],
                    command["prompt_words"],
                )
            )
        elif command["op"] == "text":
            answer(reference.text(command["prompt"], command["max_tokens"]))
        else:
            answer({"error": f"unknown op {command['op']!r}"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
