"""LLM generation: tokens/s and time to first token, served vs in-process ``openvino_genai``.

Three targets generate from the same model folder (``build_bench_llm``, about 184M parameters, cached under
``bench/results/models/``) with the same scheduler settings (``cache_size``, ``max_num_seqs``, prefix caching):

- ``in-process``: `bench.genai_reference`, a process of its own driving ``ContinuousBatchingPipeline`` with
  ``add_request``/``step`` (see there why not ``generate()``), timing its own requests;
- ``gRPC``: our server (``--task text_generation``), ``GenerationService/Complete`` streamed, from this process;
- ``gateway``: the same server's REST gateway (its child), ``POST /v3/completions`` with ``"stream": true``,
  read as SSE with aiohttp.

At each number of concurrent streams, every stream sends ``--requests`` requests one after the other (the same
work for every target: a window lasting a given time would hold more or fewer requests, unequally efficient, by
where its end falls); every request has its own prompt of ``--prompt-words`` one-token words (so prefix
caching never serves one from another's cache, including between gRPC and the gateway, which share one server)
and generates exactly ``--max-tokens`` tokens (greedy, ``ignore_eos``). Tokens/s is the total of the requests'
completion tokens (counted from usage: gRPC's last message, the SSE usage chunk of ``stream_options.include_usage``,
the pipeline's outputs in-process) over the time from the first request sent to the last one done; TTFT is from a
request sent to its first token received. The three never run at the same time (the others idle), and their order
rotates every round. ``--seconds`` is not used. Before measuring, one greedy answer is compared across the three,
then (unless ``--warmup 0``) each target runs one 4-token request per stream at each number of streams.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import select
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench import REPO, RESULTS_DIR, procs, report, servers
from bench.genai_reference import prompt_text
from bench.load import DISTURBED_CORES
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as pb
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2_grpc as pb_grpc

NAME = "generation"
DESCRIPTION = "LLM tokens/s and TTFT at 1/4/8 streams: in-process openvino_genai vs gRPC Complete vs gateway SSE"
DEFAULT_SECONDS = 0.0  # unused: a window is --requests per stream
DEFAULT_ROUNDS = 3
TARGET_RATIO = 0.9
MODEL = "bench_llm"
REFERENCE, GRPC, REST = "in-process", "gRPC", "gateway"
#: Tokens of the answers compared before measuring, and of the warm-up requests.
CHECK_TOKENS, WARMUP_TOKENS = 16, 4
REQUEST_TIMEOUT = 600.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", default="1,4,8", help="comma-separated numbers of streams (default 1,4,8)")
    parser.add_argument("--requests", type=int, default=2, help="requests per stream per window (default 2)")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens generated per request (default 64)")
    parser.add_argument("--prompt-words", type=int, default=64, help="prompt length, one token a word (default 64)")
    parser.add_argument("--cache-size", type=int, default=1, help="KV-cache GB, for both (default 1)")
    parser.add_argument("--max-num-seqs", type=int, default=256, help="scheduler max_num_seqs, for both (default 256)")
    parser.add_argument(
        "--enable-prefix-caching", choices=("true", "false"), default="true", help="for both (default true)"
    )
    parser.add_argument(
        "--model", type=Path, help="an LLM model folder to use instead of the benchmark LLM (built and cached)"
    )
    parser.add_argument("--skip-gateway", action="store_true", help="measure in-process and gRPC only")


# --- what a window measured -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One generation request; times in seconds from the start of its window."""

    sent: float
    first: float
    done: float
    tokens: int
    prompt_tokens: int

    @property
    def ttft(self) -> float:
        return self.first - self.sent

    @property
    def per_token(self) -> float:
        """Seconds between tokens after the first."""
        return (self.done - self.first) / max(self.tokens - 1, 1)


@dataclass(frozen=True)
class Cpu:
    """CPU used over a window: by this process (the client), by each watched process, by the rest of the machine."""

    wall: float
    client: float
    watched: Mapping[str, float]
    other: float
    steal: float


@dataclass(frozen=True)
class _Snapshot:
    wall: float
    client: float
    watched: dict[str, float]
    machine: float
    steal: float

    @staticmethod
    def take(pids: Mapping[str, int]) -> _Snapshot:
        return _Snapshot(
            time.monotonic(),
            time.process_time(),
            {name: procs.cpu_seconds(pid) for name, pid in pids.items()},
            procs.machine_busy_seconds(),
            procs.machine_steal_seconds(),
        )

    def until(self, later: _Snapshot) -> Cpu:
        client = later.client - self.client
        watched = {name: later.watched[name] - self.watched[name] for name in self.watched}
        return Cpu(
            wall=later.wall - self.wall,
            client=client,
            watched=watched,
            other=max(later.machine - self.machine - client - sum(watched.values()), 0.0),
            steal=later.steal - self.steal,
        )


@dataclass(frozen=True)
class Window:
    """One target at one number of streams, once."""

    target: str
    concurrency: int
    requests: tuple[Request, ...]
    cpu: Cpu

    @property
    def seconds(self) -> float:
        """From the first request sent to the last one done."""
        return max(r.done for r in self.requests) - min(r.sent for r in self.requests)

    @property
    def tokens(self) -> int:
        return sum(r.tokens for r in self.requests)

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def other_cores(self) -> float:
        return self.cpu.other / self.cpu.wall if self.cpu.wall else 0.0

    @property
    def steal_cores(self) -> float:
        return self.cpu.steal / self.cpu.wall if self.cpu.wall else 0.0

    @property
    def clean(self) -> bool:
        return self.other_cores <= DISTURBED_CORES


def _percentile_ms(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return 1000.0 * ordered[min(len(ordered) - 1, int(q / 100.0 * len(ordered)))]


def summary(windows: Sequence[Window]) -> dict[str, Any]:
    """The figures of one or several windows (rounds) of a target at one number of streams, merged."""
    requests = [r for w in windows for r in w.requests]
    seconds = sum(w.seconds for w in windows)
    tokens = sum(w.tokens for w in windows)
    wall = sum(w.cpu.wall for w in windows) or 1.0

    def cores(name: str) -> float:
        return sum(w.cpu.watched.get(name, 0.0) for w in windows) / wall

    ttfts = [r.ttft for r in requests]
    return {
        "concurrency": windows[0].concurrency,
        "requests": len(requests),
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds, 2) if seconds else 0.0,
        "ttft_p50_ms": round(_percentile_ms(ttfts, 50), 1),
        "ttft_p99_ms": round(_percentile_ms(ttfts, 99), 1),
        "ttft_mean_ms": round(1000.0 * sum(ttfts) / len(ttfts), 1) if ttfts else float("nan"),
        "ms_per_token_p50": round(_percentile_ms([r.per_token for r in requests], 50), 2),
        "prompt_tokens": sorted({r.prompt_tokens for r in requests}),
        "engine_cores": round(cores("engine"), 3),
        "server_cores": round(cores("server"), 3),
        "gateway_cores": round(cores("gateway"), 3),
        "client_cores": round(sum(w.cpu.client for w in windows) / wall, 3),
        "other_cpu_cores": round(sum(w.cpu.other for w in windows) / wall, 3),
        "steal_cores": round(sum(w.cpu.steal for w in windows) / wall, 3),
    }


# --- the model ----------------------------------------------------------------------------------------------------


def bench_model(args: argparse.Namespace, log_dir: Path) -> Path:
    """``--model``, or the benchmark LLM built by the server tree's fixtures (cached per version of their code)."""
    if args.model is not None:
        return Path(args.model).resolve()
    sources = sorted((args.server_root / "ovms_grpc" / "genai").glob("fixtures*.py"))
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:12]
    models = RESULTS_DIR / "models"
    folder = models / f"{MODEL}-{digest}"
    if (folder / "openvino_model.xml").exists():
        return folder
    for stale in models.glob(f"{MODEL}-*"):  # 353 MiB each: keep only the current build
        shutil.rmtree(stale, ignore_errors=True)
    building = models / f"{MODEL}-{digest}.building"
    code = (
        "import sys, pathlib; from ovms_grpc.genai.fixtures import build_bench_llm as b; b(pathlib.Path(sys.argv[1]))"
    )
    print(f"building the benchmark LLM into {folder}", flush=True)
    procs.run("build-model", [sys.executable, "-c", code, str(building)], log_dir, timeout=900, root=args.server_root)
    building.rename(folder)
    return folder


# --- the in-process reference -------------------------------------------------------------------------------------


class ReferenceProcess:
    """`bench.genai_reference` running in its own process, one JSON line per command and answer."""

    def __init__(self, process: procs.Process) -> None:
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    @staticmethod
    @contextlib.contextmanager
    def started(args: argparse.Namespace, model: Path, log_dir: Path) -> Iterator[ReferenceProcess]:
        argv = procs.python_module(
            "bench.genai_reference",
            "--model", str(model),
            "--cache-size", str(args.cache_size),
            "--max-num-seqs", str(args.max_num_seqs),
            "--enable-prefix-caching", args.enable_prefix_caching,
        )  # fmt: skip
        reference = ReferenceProcess(procs.start("in-process", argv, log_dir, REPO, pipes=True))
        try:
            reference.answer(timeout=300)  # {"ready": true}
            yield reference
        finally:
            with contextlib.suppress(OSError):
                if reference.process.popen.stdin is not None:
                    reference.process.popen.stdin.close()  # the reference ends at the end of its input
            procs.stop(reference.process)

    def call(self, command: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        stdin = self.process.popen.stdin
        assert stdin is not None
        stdin.write(json.dumps(command).encode() + b"\n")
        stdin.flush()
        return self.answer(timeout)

    def answer(self, timeout: float) -> dict[str, Any]:
        stdout = self.process.popen.stdout
        assert stdout is not None
        readable, _, _ = select.select([stdout], [], [], timeout)
        line = stdout.readline() if readable else b""
        if not line:
            code = self.process.popen.poll()
            state = f"exited with {code}" if code is not None else f"did not answer in {timeout:.0f} s"
            raise procs.ProcessFailed(f"the in-process reference {state}:\n{self.process.log_tail()}")
        document: dict[str, Any] = json.loads(line)
        if "error" in document:
            raise RuntimeError(f"the in-process reference: {document['error']}")
        return document

    def window(self, key: str, concurrency: int, requests: int, max_tokens: int, words: int) -> Window:
        command = {"op": "window", "key": key, "concurrency": concurrency, "requests": requests,
                   "max_tokens": max_tokens, "prompt_words": words}  # fmt: skip
        before = _Snapshot.take({"engine": self.pid})
        answer = self.call(command, timeout=requests * REQUEST_TIMEOUT)
        cpu = before.until(_Snapshot.take({"engine": self.pid}))
        done = tuple(Request(s, f, d, int(t), int(p)) for s, f, d, t, p in answer["requests"])
        return Window(REFERENCE, concurrency, done, cpu)

    def text(self, prompt: str, max_tokens: int) -> str:
        return str(self.call({"op": "text", "prompt": prompt, "max_tokens": max_tokens}, REQUEST_TIMEOUT)["text"])


# --- the served targets -------------------------------------------------------------------------------------------

#: One request's (sent, first token, done) perf_counter times and its (completion, prompt) tokens.
Answer = tuple[float, float, float, int, int]
#: One request: the prompt and max_tokens in, its `Answer` out.
SendOne = Callable[[str, int], Awaitable[Answer]]


async def closed_streams(
    send: SendOne, key: str, concurrency: int, requests: int, max_tokens: int, words: int, pids: Mapping[str, int]
) -> tuple[tuple[Request, ...], Cpu]:
    """``concurrency`` streams, each sending ``requests`` requests one after the other."""
    clock = time.perf_counter
    before = _Snapshot.take(pids)
    start = clock()

    async def stream(index: int) -> list[Answer]:
        return [await send(prompt_text(f"{key}/{index}/{k}", words), max_tokens) for k in range(requests)]

    per_stream = await asyncio.gather(*(stream(index) for index in range(concurrency)))
    cpu = before.until(_Snapshot.take(pids))
    done = tuple(
        Request(sent - start, first - start, done - start, tokens, prompt_tokens)
        for answers in per_stream
        for sent, first, done, tokens, prompt_tokens in answers
    )
    return done, cpu


def complete_request(prompt: str, max_tokens: int) -> pb.CompleteRequest:
    sampling = pb.SamplingParams(max_tokens=max_tokens, ignore_eos=True, temperature=0.0)
    return pb.CompleteRequest(model=MODEL, prompt=prompt, sampling=sampling, include_usage=True)


@contextlib.asynccontextmanager
async def grpc_sender(target: str) -> Any:
    """A `SendOne` over gRPC ``Complete``, streamed; the text is dropped, the usage counted."""
    async with grpc.aio.insecure_channel(target) as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
        stub = pb_grpc.GenerationServiceStub(channel)
        clock = time.perf_counter

        async def send(prompt: str, max_tokens: int) -> Answer:
            first = 0.0
            usage = None
            sent = clock()
            async for message in stub.Complete(complete_request(prompt, max_tokens), timeout=REQUEST_TIMEOUT):
                if not first and message.choices:
                    first = clock()
                if message.HasField("usage"):
                    usage = message.usage
            done = clock()
            if usage is None or not first:
                raise RuntimeError("a gRPC Complete stream ended without tokens or usage")
            return sent, first, done, usage.completion_tokens, usage.prompt_tokens

        yield send


def completion_body(prompt: str, max_tokens: int) -> bytes:
    return json.dumps(
        {
            "model": MODEL,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
        }  # fmt: skip
    ).encode()


@contextlib.asynccontextmanager
async def sse_sender(url: str, connections: int) -> Any:
    """A `SendOne` over ``POST /v3/completions`` streamed as SSE (aiohttp); only the usage chunk is parsed."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    headers = {"Content-Type": "application/json"}
    clock = time.perf_counter
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(prompt: str, max_tokens: int) -> Answer:
            body = completion_body(prompt, max_tokens)
            first = 0.0
            usage = None
            sent = clock()
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    raise RuntimeError(f"/v3/completions answered {response.status}: {(await response.read())[:300]!r}")
                async for line in response.content:
                    if not line.startswith(b"data: {"):
                        continue
                    if not first and b'"choices":[{' in line:
                        first = clock()
                    elif b'"usage":{' in line:
                        usage = json.loads(line[6:])["usage"]
                    elif line.startswith(b'data: {"error"'):
                        raise RuntimeError(f"/v3/completions streamed an error: {line[6:300]!r}")
            done = clock()
            if usage is None or not first:
                raise RuntimeError("a /v3/completions stream ended without tokens or a usage chunk")
            return sent, first, done, int(usage["completion_tokens"]), int(usage["prompt_tokens"])

        yield send


@dataclass
class Server:
    """Our server with its gateway: where to reach them and which processes to watch."""

    grpc_target: str
    rest_base: str
    pids: dict[str, int] = field(default_factory=dict)

    def window(self, target: str, key: str, concurrency: int, requests: int, max_tokens: int, words: int) -> Window:
        async def measure() -> tuple[tuple[Request, ...], Cpu]:
            opened = (
                grpc_sender(self.grpc_target)
                if target == GRPC
                else sse_sender(f"{self.rest_base}/v3/completions", concurrency)
            )
            async with opened as send:
                return await closed_streams(send, key, concurrency, requests, max_tokens, words, self.pids)

        done, cpu = asyncio.run(measure())
        return Window(target, concurrency, done, cpu)

    def text(self, target: str, prompt: str, max_tokens: int) -> str:
        """One answer's text, to compare with the reference's."""

        async def over_grpc() -> str:
            async with grpc.aio.insecure_channel(self.grpc_target) as channel:
                call = pb_grpc.GenerationServiceStub(channel).Complete(complete_request(prompt, max_tokens))
                return "".join([choice.text async for message in call for choice in message.choices])

        async def over_rest() -> str:
            import aiohttp

            text = ""
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{self.rest_base}/v3/completions", data=completion_body(prompt, max_tokens)) as answer,
            ):
                async for line in answer.content:
                    if line.startswith(b"data: {"):
                        document = json.loads(line[6:])
                        if "error" in document:
                            raise RuntimeError(f"/v3/completions streamed an error: {document['error']}")
                        text += "".join(choice["text"] for choice in document["choices"])
            return text

        return asyncio.run(over_grpc() if target == GRPC else over_rest())


@contextlib.contextmanager
def start_server(args: argparse.Namespace, model: Path, log_dir: Path, profile_to: Path | None) -> Iterator[Server]:
    port, rest_port = procs.free_port(), procs.free_port()
    extra = [
        "--task", "text_generation",
        "--cache_size", str(args.cache_size),
        "--max_num_seqs", str(args.max_num_seqs),
        "--enable_prefix_caching", args.enable_prefix_caching,
        "--rest_port", str(rest_port),
        "--rest_bind_address", "127.0.0.1",
        *args.server_arg,
    ]  # fmt: skip
    argv = servers.ovms_grpc_argv(port, model, MODEL, extra=extra, profile_to=profile_to)
    with procs.serving("ovms-grpc", argv, port, log_dir, args.server_root, timeout=300) as process:
        server = Server(f"127.0.0.1:{port}", f"http://127.0.0.1:{rest_port}")
        procs.wait_http_ok(process, f"{server.rest_base}/v2/health/ready", timeout=300)
        server.pids = {
            "engine": procs.child_with_argument(process.pid, "spawn_main"),
            "server": process.pid,
            "gateway": procs.child_running(process.pid, "gateway"),
        }
        yield server


# --- the scenario -------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    concurrencies = [int(value) for value in args.concurrency.split(",")]
    targets = [REFERENCE, GRPC] if args.skip_gateway else [REFERENCE, GRPC, REST]
    profile_to = RESULTS_DIR / f"{NAME}-ovms_grpc.prof" if args.profile else None
    model = bench_model(args, log_dir)
    windows: dict[str, dict[int, list[Window]]] = {t: {c: [] for c in concurrencies} for t in targets}
    with (
        ReferenceProcess.started(args, model, log_dir) as reference,
        start_server(args, model, log_dir, profile_to) as server,
    ):

        def measure(target: str, key: str, concurrency: int, requests: int, max_tokens: int) -> Window:
            if target == REFERENCE:
                return reference.window(key, concurrency, requests, max_tokens, args.prompt_words)
            return server.window(target, key, concurrency, requests, max_tokens, args.prompt_words)

        check_answers(reference, server, targets)
        if args.warmup > 0:
            for target in targets:
                started = time.monotonic()
                for concurrency in concurrencies:
                    measure(target, f"warmup/{target}/{concurrency}", concurrency, 1, WARMUP_TOKENS)
                print(f"warm-up {target}: {time.monotonic() - started:.1f} s", flush=True)
        for round_index in range(args.rounds):
            print(f"round {round_index + 1}/{args.rounds}", flush=True)
            order = targets[round_index % len(targets) :] + targets[: round_index % len(targets)]
            for concurrency in concurrencies:
                for target in order:
                    attempt = 0
                    while True:
                        args.budget.wait_until_quiet()
                        key = f"{target}/{round_index}/{concurrency}/{attempt}"
                        window = measure(target, key, concurrency, args.requests, args.max_tokens)
                        check_window(window, args.max_tokens)
                        if window.clean or not args.budget.allow_retry(window.cpu.wall):
                            break
                        print(f"  (other processes used {window.other_cores:.2f} cores: measuring again)", flush=True)
                        attempt += 1
                    windows[target][concurrency].append(window)
                    s = summary([window])
                    print(
                        f"  {target} x{concurrency}: {s['tokens_per_second']:.1f} tokens/s, "
                        f"TTFT p50 {s['ttft_p50_ms']:.0f} ms, {s['requests']} requests "
                        f"(other load {s['other_cpu_cores']:.2f} cores, steal {s['steal_cores']:.2f})",
                        flush=True,
                    )
    return summarize(args, model, targets, concurrencies, windows, profile_to)


def check_answers(reference: ReferenceProcess, server: Server, targets: Sequence[str]) -> None:
    """The same greedy answer in-process, over gRPC and through the gateway (a prompt shorter than a KV block)."""
    prompt = prompt_text("check", 12)
    expected = reference.text(prompt, CHECK_TOKENS)
    for target in targets[1:]:
        text = server.text(target, prompt, CHECK_TOKENS)
        if text != expected:
            raise RuntimeError(f"{target} answered {text!r} where openvino_genai in-process answered {expected!r}")


def check_window(window: Window, max_tokens: int) -> None:
    wrong = [r.tokens for r in window.requests if r.tokens != max_tokens]
    if wrong:
        raise RuntimeError(f"{window.target}: requests generated {wrong[:5]} tokens, not {max_tokens} (ignore_eos)")


def summarize(
    args: argparse.Namespace,
    model: Path,
    targets: Sequence[str],
    concurrencies: Sequence[int],
    windows: dict[str, dict[int, list[Window]]],
    profile_to: Path | None,
) -> dict[str, Any]:
    results = {t: {str(c): summary(windows[t][c]) for c in concurrencies} for t in targets}
    prompt_tokens = sorted({n for t in targets for c in concurrencies for n in results[t][str(c)]["prompt_tokens"]})
    print()
    print(
        f"{model.name}: prompts of {'/'.join(map(str, prompt_tokens))} tokens, {args.max_tokens} tokens generated "
        f"per request (greedy, ignore_eos), {args.requests} request(s) per stream, {args.rounds} rounds; "
        f"cache_size {args.cache_size} GB, max_num_seqs {args.max_num_seqs}, prefix caching "
        f"{args.enable_prefix_caching}" + report.server_args_note(args.server_arg)
    )
    headers = ["target", "streams", "requests", "tokens/s", "TTFT p50 ms", "TTFT p99 ms", "TTFT mean", "ms/token p50"]
    headers += ["engine cores", "srv+gw cores", "cli cores", "other", "steal"]
    rows = []
    for concurrency in concurrencies:
        for target in targets:
            s = results[target][str(concurrency)]
            frontend = float("nan") if target == REFERENCE else s["server_cores"] + s["gateway_cores"]
            rows.append([target, concurrency, s["requests"], s["tokens_per_second"], s["ttft_p50_ms"],
                         s["ttft_p99_ms"], s["ttft_mean_ms"], s["ms_per_token_p50"], s["engine_cores"], frontend,
                         s["client_cores"], s["other_cpu_cores"], s["steal_cores"]])  # fmt: skip
    print(report.table(headers, rows))
    ratios: dict[str, dict[str, Any]] = {}
    for target in targets[1:]:
        ratios[target] = {}
        for concurrency in concurrencies:
            ours, ref = windows[target][concurrency], windows[REFERENCE][concurrency]
            per_round = [w.rate / max(r.rate, 1e-9) for w, r in zip(ours, ref, strict=True)]
            clean = [w.clean and r.clean for w, r in zip(ours, ref, strict=True)]
            served, alone = results[target][str(concurrency)], results[REFERENCE][str(concurrency)]
            ratio = served["tokens_per_second"] / max(alone["tokens_per_second"], 1e-9)
            ratios[target][str(concurrency)] = {
                "ratio": round(ratio, 4),
                "target": TARGET_RATIO,
                "round_ratios": [round(r, 4) for r in per_round],
                "round_undisturbed": clean,
                "undisturbed_ratio": report.clean_mean(per_round, clean),
                "added_ttft_p50_ms": round(served["ttft_p50_ms"] - alone["ttft_p50_ms"], 1),
                "added_ttft_p99_ms": round(served["ttft_p99_ms"] - alone["ttft_p99_ms"], 1),
                "added_ttft_mean_ms": round(served["ttft_mean_ms"] - alone["ttft_mean_ms"], 1),
            }
            print(
                report.ratio_line(f"{target}/in-process tokens/s x{concurrency}", ratio, TARGET_RATIO, per_round, clean)
            )
    for target in targets[1:]:
        by_c = ratios[target]
        added = ", ".join(
            f"x{c} {by_c[str(c)]['added_ttft_p50_ms']:+.0f} ms (mean {by_c[str(c)]['added_ttft_mean_ms']:+.0f})"
            for c in concurrencies
        )
        print(f"{target} added TTFT p50: {added}")
    every = [w for by_c in windows.values() for rounds in by_c.values() for w in rounds]
    report.warn_if_disturbed([w.other_cores for w in every], [w.steal_cores for w in every])
    if profile_to is not None:
        report.print_profile(profile_to)
    return {
        "passed": all(r["ratio"] >= TARGET_RATIO for by_c in ratios.values() for r in by_c.values()),
        "target_ratio": TARGET_RATIO,
        "model": str(model),
        "prompt_tokens": prompt_tokens,
        "ratios": ratios,
        "results": results,
        "rounds": {t: {str(c): [summary([w]) for w in windows[t][c]] for c in concurrencies} for t in targets},
    }
