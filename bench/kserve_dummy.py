"""Requests/s of the tiny ``dummy`` model over KServe gRPC vs a bare grpc.aio server.

For a model this small the Python request path is all there is, so the
reference is `bench.echo_server`: ModelInfer returning a prebuilt answer of the
same size. Both are driven by the same client at each concurrency, one server
at a time, in rounds whose order alternates so that drift on a shared machine
hits both; each ratio is of the totals over the rounds.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench import REPO, RESULTS_DIR, procs, report, servers
from bench.kserve import MODEL_INFER, infer_once, infer_request, output_array
from bench.load import DISTURBED_CORES, LoadResult, measure
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb

NAME = "kserve_dummy"
DESCRIPTION = "dummy over KServe gRPC ModelInfer vs a bare grpc.aio server (req/s, p50/p99), concurrency 1 and 32"
DEFAULT_SECONDS = 6.0
DEFAULT_ROUNDS = 3
TARGET_RATIO = 0.9
MODEL = "dummy"
OURS = "ovms-grpc"
BARE = "bare grpc.aio"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", default="1,32", help="comma-separated client concurrencies (default 1,32)")


def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    concurrencies = [int(value) for value in args.concurrency.split(",")]
    data = np.arange(10, dtype=np.float32).reshape(1, 10)
    request = infer_request(MODEL, {"b": data})
    payload = request.SerializeToString()
    profile_to = RESULTS_DIR / f"{NAME}-ovms_grpc.prof" if args.profile else None
    windows: dict[str, dict[int, list[LoadResult]]] = {OURS: {}, BARE: {}}

    def serve_and_load(label: str, argv: list[str], port: int) -> pb.ModelInferResponse:
        name, root = ("ovms-grpc", args.server_root) if label == OURS else ("echo", REPO)
        with procs.serving(name, argv, port, log_dir, root) as process:
            target = f"127.0.0.1:{port}"
            answer = infer_once(target, request)
            for concurrency in concurrencies:
                result = measure(
                    target,
                    MODEL_INFER,
                    payload,
                    concurrency=concurrency,
                    seconds=args.seconds,
                    warmup=args.warmup,
                    watch_pids=[process.pid],
                    patience=args.budget,
                )
                windows[label].setdefault(concurrency, []).append(result)
                s = result.summary()
                print(
                    f"  {label} c={concurrency}: {result.rate:.0f} req/s "
                    f"(other load {s['other_cpu_cores']:.2f} cores, steal {s['steal_cores']:.2f})",
                    flush=True,
                )
        return answer

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        repository = servers.export_demo(Path(tmp) / "repo", log_dir, args.server_root)

        answers: dict[str, pb.ModelInferResponse] = {}

        def ours() -> None:
            port = procs.free_port()
            argv = servers.ovms_grpc_argv(port, repository / MODEL, MODEL, extra=args.server_arg, profile_to=profile_to)
            answer = answers[OURS] = serve_and_load(OURS, argv, port)
            expected = data + float(answer.model_version)  # version N adds N
            if not np.allclose(output_array(answer, "a"), expected):
                raise RuntimeError(f"dummy answered {output_array(answer, 'a')}, expected {expected}")

        def bare() -> None:
            like = answers[OURS]  # the echo server answers with the same names, version and shape
            port = procs.free_port()
            argv = servers.echo_argv(port, MODEL, like.model_version, "a", list(like.outputs[0].shape))
            answer = answers[BARE] = serve_and_load(BARE, argv, port)
            if answer.ByteSize() != like.ByteSize():
                raise RuntimeError(f"echo answer is {answer.ByteSize()} bytes, ours {like.ByteSize()}")

        for round_index in range(args.rounds):
            print(f"round {round_index + 1}/{args.rounds}", flush=True)
            for step in (ours, bare) if round_index % 2 == 0 else (bare, ours):
                step()
    return summarize(args, concurrencies, windows, answers[OURS].ByteSize(), profile_to)


def summarize(
    args: argparse.Namespace,
    concurrencies: list[int],
    windows: dict[str, dict[int, list[LoadResult]]],
    answer_bytes: int,
    profile_to: Path | None,
) -> dict[str, Any]:
    merged = {name: {c: LoadResult.merge(rounds) for c, rounds in by_c.items()} for name, by_c in windows.items()}
    summaries = {name: {c: result.summary() for c, result in by_c.items()} for name, by_c in merged.items()}
    keys = ["rate", "p50_ms", "p99_ms", "server_cpu_ms_per_request", "client_cpu_ms_per_request"]
    keys += ["other_cpu_cores", "steal_cores", "errors"]
    headers = ["server", "conc", "req/s", "p50 ms", "p99 ms", "srv cpu ms/req", "cli cpu ms/req", "other", "steal"]
    rows = [[name, c, *(s[key] for key in keys)] for name, by_c in summaries.items() for c, s in by_c.items()]
    print()
    print(
        f"{MODEL} over KServe gRPC, {args.rounds} x {args.seconds:g} s per row, answer {answer_bytes} bytes"
        + report.server_args_note(args.server_arg)
    )
    print(report.table([*headers, "errors"], rows))
    ratios = {c: merged[OURS][c].rate / max(merged[BARE][c].rate, 1e-9) for c in concurrencies}
    per_round = {
        c: [ours.rate / max(bare.rate, 1e-9) for ours, bare in zip(windows[OURS][c], windows[BARE][c], strict=True)]
        for c in concurrencies
    }
    clean = {
        c: [
            max(ours.other_cpu_seconds / ours.seconds, bare.other_cpu_seconds / bare.seconds) <= DISTURBED_CORES
            for ours, bare in zip(windows[OURS][c], windows[BARE][c], strict=True)
        ]
        for c in concurrencies
    }
    for c, ratio in ratios.items():
        print(report.ratio_line(f"ours/bare at concurrency {c}", ratio, TARGET_RATIO, per_round[c], clean[c]))
    every_window = [r.summary() for by_c in windows.values() for rounds in by_c.values() for r in rounds]
    report.warn_if_disturbed(
        [float(s["other_cpu_cores"]) for s in every_window], [float(s["steal_cores"]) for s in every_window]
    )
    if profile_to is not None:
        report.print_profile(profile_to)
    errors = sum(int(s["errors"]) for by_c in summaries.values() for s in by_c.values())
    return {
        "passed": errors == 0 and all(ratio >= TARGET_RATIO for ratio in ratios.values()),
        "target_ratio": TARGET_RATIO,
        "answer_bytes": answer_bytes,
        "ratios": {str(c): round(ratio, 4) for c, ratio in ratios.items()},
        "round_ratios": {str(c): [round(r, 4) for r in rs] for c, rs in per_round.items()},
        "round_undisturbed": {str(c): flags for c, flags in clean.items()},
        "undisturbed_ratios": {str(c): report.clean_mean(per_round[c], clean[c]) for c in concurrencies},
        "results": {name: list(by_c.values()) for name, by_c in summaries.items()},
    }
