"""Throughput through the REST gateway vs direct gRPC, on one server process started with ``--rest_port``.

Cases, each measured over KServe gRPC ModelInfer and over the gateway's KServe REST
infer route at the same client concurrency, on the same server and models:

- ``resnet_like`` with the binary data extension (raw FP32 input after the JSON header,
  ``binary_data_output``) at concurrency 8: a compute-heavy model, where the gateway
  should cost little (target: REST/gRPC >= 0.8);
- ``dummy`` with JSON tensors at concurrency 1 and 8: the gateway's own cost per request.

The gateway is the server's child process; the CPU of both is reported per request.
gRPC and REST alternate within each round and their order flips every round.
``--profile`` starts the gateway alone (``python -m gateway``) under cProfile next to
the server (under cProfile too) and prints where both spend their time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import RESULTS_DIR, procs, report, servers
from bench.http_load import CLIENTS, HttpAnswer, http_post_once, run_http_load
from bench.kserve import MODEL_INFER, infer_once, infer_request, output_array
from bench.load import DISTURBED_CORES, LoadResult, measure, measure_with
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb

NAME = "gateway"
DESCRIPTION = "REST gateway vs direct gRPC on one server: resnet_like binary infer (target >= 0.8), dummy JSON"
DEFAULT_SECONDS = 6.0
DEFAULT_ROUNDS = 2
TARGET_RATIO = 0.8
GRPC, REST = "gRPC", "REST"
RESNET_SHAPE = (1, 3, 224, 224)
DUMMY_DATA = np.arange(10, dtype=np.float32).reshape(1, 10)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--http-client",
        choices=CLIENTS,
        default="aiohttp",
        help="HTTP client library (default aiohttp: about a quarter of httpx's client CPU per request)",
    )
    parser.add_argument("--resnet-concurrency", type=int, default=8, help="concurrency of the resnet_like case")
    parser.add_argument("--dummy-concurrency", default="1,8", help="comma-separated concurrencies for dummy JSON")
    parser.add_argument("--skip-resnet", action="store_true", help="only the dummy JSON cases")


@dataclass(frozen=True)
class Case:
    """One comparison: the same inference over gRPC and through the gateway."""

    label: str
    model: str
    concurrency: int
    grpc_payload: bytes
    http_body: bytes
    http_headers: dict[str, str]
    target: float | None

    @property
    def key(self) -> str:
        return f"{self.label} c={self.concurrency}"


def resnet_case(concurrency: int) -> Case:
    image = np.random.default_rng(0).random(RESNET_SHAPE, dtype=np.float32)
    header = {
        "inputs": [
            {
                "name": "input",
                "shape": list(RESNET_SHAPE),
                "datatype": "FP32",
                "parameters": {"binary_data_size": image.nbytes},
            }
        ],
        "parameters": {"binary_data_output": True},
    }
    header_bytes = json.dumps(header).encode()
    return Case(
        label="resnet_like binary",
        model="resnet_like",
        concurrency=concurrency,
        grpc_payload=infer_request("resnet_like", {"input": image}).SerializeToString(),
        http_body=header_bytes + image.tobytes(),
        http_headers={
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(len(header_bytes)),
        },
        target=TARGET_RATIO,
    )


def dummy_case(concurrency: int) -> Case:
    body = {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "data": DUMMY_DATA.ravel().tolist()}]}
    return Case(
        label="dummy JSON",
        model="dummy",
        concurrency=concurrency,
        grpc_payload=infer_request("dummy", {"b": DUMMY_DATA}).SerializeToString(),
        http_body=json.dumps(body).encode(),
        http_headers={"Content-Type": "application/json"},
        target=None,
    )


def rest_outputs(answer: HttpAnswer) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON header of a KServe REST infer answer and its FP32 outputs (binary or JSON)."""
    if answer.status != 200:
        raise RuntimeError(f"REST infer answered {answer.status}: {answer.body[:300]!r}")
    header_length = {k.lower(): v for k, v in answer.headers.items()}.get("inference-header-content-length")
    length = int(header_length) if header_length is not None else len(answer.body)
    document = json.loads(answer.body[:length])
    binary = answer.body[length:]
    outputs: dict[str, np.ndarray] = {}
    offset = 0
    for output in document["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is not None:
            values = np.frombuffer(binary[offset : offset + size], np.float32)
            offset += size
        else:
            values = np.asarray(output["data"], np.float32)
        outputs[output["name"]] = values.reshape(output["shape"])
    return document, outputs


def check(case: Case, grpc_target: str, rest_url: str) -> None:
    """One gRPC and one REST answer: right numbers, and the same over both."""
    output = "output" if case.model == "resnet_like" else "a"
    via_grpc = output_array(infer_once(grpc_target, pb.ModelInferRequest.FromString(case.grpc_payload)), output)
    document, outputs = rest_outputs(asyncio.run(http_post_once(rest_url, case.http_body, case.http_headers)))
    via_rest = outputs[output]
    if case.model == "resnet_like":
        if via_grpc.shape != (1, 1000) or not np.isclose(via_grpc.sum(), 1.0, atol=1e-2):
            raise RuntimeError(f"resnet_like answered shape {via_grpc.shape} summing to {via_grpc.sum()}")
    else:
        expected = DUMMY_DATA + float(document["model_version"])  # version N adds N
        if not np.allclose(via_grpc, expected):
            raise RuntimeError(f"dummy answered {via_grpc} over gRPC, expected {expected}")
    if via_rest.shape != via_grpc.shape or not np.allclose(via_rest, via_grpc, rtol=1e-5, atol=1e-6):
        raise RuntimeError(
            f"{case.key}: REST answer differs from gRPC's ({via_rest.ravel()[:5]} vs {via_grpc.ravel()[:5]})"
        )


@dataclass
class Stack:
    """The server and its gateway: where to reach them and which processes to watch."""

    grpc_target: str
    rest_base: str
    pids: list[int]


@contextmanager
def start_stack(args: argparse.Namespace, config: Path, log_dir: Path, profiles: dict[str, Path]) -> Iterator[Stack]:
    """The server with ``--rest_port`` (its child gateway), or under ``--profile`` the two as separate processes."""
    port, rest_port = procs.free_port(), procs.free_port()
    alone = bool(profiles)
    argv = servers.ovms_grpc_config_argv(
        port,
        config,
        rest_port=0 if alone else rest_port,
        poll_seconds=0,
        extra=args.server_arg,
        profile_to=profiles.get("ovms-grpc"),
    )
    grpc_target, rest_base = f"127.0.0.1:{port}", f"http://127.0.0.1:{rest_port}"
    with procs.serving("ovms-grpc", argv, port, log_dir, args.server_root) as server:
        if alone:
            gateway_args = ["--grpc_target", grpc_target, "--port", str(rest_port), "--bind_address", "127.0.0.1"]
            gateway_argv = procs.python_module("cProfile", "-o", str(profiles["gateway"]), "-m", "gateway")
            gateway = procs.start("gateway", gateway_argv + gateway_args, log_dir, args.server_root)
            try:
                procs.wait_http_ok(gateway, f"{rest_base}/v2/health/ready", timeout=60)
                yield Stack(grpc_target, rest_base, [server.pid, gateway.pid])
            finally:
                # uvicorn re-raises SIGTERM once it has shut down, which kills the process before cProfile
                # writes its file; SIGINT ends in a KeyboardInterrupt, and cProfile writes on the way out.
                procs.stop(gateway, signum=signal.SIGINT)
        else:
            procs.wait_http_ok(server, f"{rest_base}/v2/health/ready", timeout=60)
            gateway_pid = procs.child_running(server.pid, "gateway")
            yield Stack(grpc_target, rest_base, [server.pid, gateway_pid])


def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    cases = [] if args.skip_resnet else [resnet_case(args.resnet_concurrency)]
    cases += [dummy_case(int(c)) for c in args.dummy_concurrency.split(",")]
    profiles = {name: RESULTS_DIR / f"{NAME}-{name}.prof" for name in ("ovms-grpc", "gateway")} if args.profile else {}
    windows: dict[str, dict[str, list[LoadResult]]] = {case.key: {GRPC: [], REST: []} for case in cases}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        repository = servers.export_demo(Path(tmp) / "repo", log_dir, args.server_root)
        config = servers.write_config(
            repository / "config.json",
            {
                "dummy": {"base_path": "dummy", "model_version_policy": {"all": {}}},
                "resnet_like": {"base_path": "resnet_like", "plugin_config": {"PERFORMANCE_HINT": "THROUGHPUT"}},
            },
        )
        with start_stack(args, config, log_dir, profiles) as stack:
            for case in cases:
                check(case, stack.grpc_target, f"{stack.rest_base}/v2/models/{case.model}/infer")
            for round_index in range(args.rounds):
                print(f"round {round_index + 1}/{args.rounds}", flush=True)
                for case in cases:
                    order = (GRPC, REST) if round_index % 2 == 0 else (REST, GRPC)
                    for path in order:
                        result = measure_case(args, stack, case, path)
                        windows[case.key][path].append(result)
                        s = result.summary()
                        print(
                            f"  {case.key} {path}: {result.rate:.1f} req/s "
                            f"(other load {s['other_cpu_cores']:.2f} cores, steal {s['steal_cores']:.2f})",
                            flush=True,
                        )
    return summarize(args, cases, windows, profiles)


def measure_case(args: argparse.Namespace, stack: Stack, case: Case, path: str) -> LoadResult:
    if path == GRPC:
        return measure(
            stack.grpc_target,
            MODEL_INFER,
            case.grpc_payload,
            concurrency=case.concurrency,
            seconds=args.seconds,
            warmup=args.warmup,
            watch_pids=stack.pids,
            patience=args.budget,
        )
    url = f"{stack.rest_base}/v2/models/{case.model}/infer"
    return measure_with(
        lambda: run_http_load(
            args.http_client,
            url,
            case.http_body,
            case.http_headers,
            concurrency=case.concurrency,
            seconds=args.seconds,
            warmup=args.warmup,
            watch_pids=stack.pids,
        ),
        seconds=args.seconds,
        warmup=args.warmup,
        patience=args.budget,
    )


def _cpu_ms(result: LoadResult) -> tuple[float, float]:
    """Server and gateway CPU milliseconds per request."""
    count = max(result.count, 1)
    server, gateway = result.watched_cpu_seconds
    return 1000.0 * server / count, 1000.0 * gateway / count


def summarize(
    args: argparse.Namespace,
    cases: list[Case],
    windows: dict[str, dict[str, list[LoadResult]]],
    profiles: dict[str, Path],
) -> dict[str, Any]:
    headers = ["case", "path", "conc", "req/s", "p50 ms", "p99 ms", "srv cpu ms/req", "gw cpu ms/req"]
    headers += ["srv+gw ms/req", "cli cpu ms/req", "other", "steal", "errors"]
    rows = []
    results: dict[str, dict[str, Any]] = {}
    ratios: dict[str, dict[str, Any]] = {}
    print()
    print(
        f"REST gateway vs gRPC, one server with --rest_port, {args.rounds} x {args.seconds:g} s per row, "
        f"HTTP client {args.http_client}" + report.server_args_note(args.server_arg)
    )
    for case in cases:
        by_path = windows[case.key]
        merged = {path: LoadResult.merge(rounds) for path, rounds in by_path.items()}
        results[case.key] = {}
        for path, result in merged.items():
            s = result.summary()
            server_ms, gateway_ms = _cpu_ms(result)
            request_bytes = len(case.grpc_payload) if path == GRPC else len(case.http_body)
            results[case.key][path] = {**s, "server_only_cpu_ms_per_request": round(server_ms, 4),
                                       "gateway_cpu_ms_per_request": round(gateway_ms, 4),
                                       "request_bytes": request_bytes}  # fmt: skip
            rows.append([case.label, path, case.concurrency, s["rate"], s["p50_ms"], s["p99_ms"], server_ms,
                         gateway_ms, s["server_cpu_ms_per_request"], s["client_cpu_ms_per_request"],
                         s["other_cpu_cores"], s["steal_cores"], s["errors"]])  # fmt: skip
        per_round = [rest.rate / max(grpc.rate, 1e-9) for grpc, rest in zip(by_path[GRPC], by_path[REST], strict=True)]
        clean = [
            max(g.other_cpu_seconds / g.seconds, r.other_cpu_seconds / r.seconds) <= DISTURBED_CORES
            for g, r in zip(by_path[GRPC], by_path[REST], strict=True)
        ]
        ratio = merged[REST].rate / max(merged[GRPC].rate, 1e-9)
        ratios[case.key] = {
            "ratio": round(ratio, 4),
            "target": case.target,
            "round_ratios": [round(r, 4) for r in per_round],
            "round_undisturbed": clean,
            "undisturbed_ratio": report.clean_mean(per_round, clean),
        }
    print(report.table(headers, rows))
    for case in cases:
        r = ratios[case.key]
        print(
            report.ratio_line(
                f"REST/gRPC {case.key}", r["ratio"], case.target, r["round_ratios"], r["round_undisturbed"]
            )
        )
    every_window = [w.summary() for by_path in windows.values() for rounds in by_path.values() for w in rounds]
    report.warn_if_disturbed(
        [float(s["other_cpu_cores"]) for s in every_window], [float(s["steal_cores"]) for s in every_window]
    )
    for process, profile in profiles.items():
        report.print_profile(profile, process=process)
    errors = sum(int(s["errors"]) for s in every_window)
    return {
        "passed": errors == 0 and all(r["ratio"] >= r["target"] for r in ratios.values() if r["target"] is not None),
        "http_client": args.http_client,
        "ratios": ratios,
        "results": results,
        "request_bytes": {case.key: {GRPC: len(case.grpc_payload), REST: len(case.http_body)} for case in cases},
    }
