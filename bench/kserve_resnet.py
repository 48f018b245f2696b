"""Served throughput of ``resnet_like`` over KServe gRPC vs OpenVINO's ``benchmark_app``.

Both read the same exported model.xml with the same settings (device, the
THROUGHPUT hint, number of infer requests). benchmark_app runs first; when no
``--nireq`` is given it picks OpenVINO's optimal number, and the server is then
started with the number benchmark_app reported, so the two always match. They
never run at the same time; they alternate in rounds so that drift on a shared
machine hits both, and the ratio is of the means over the rounds.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import RESULTS_DIR, procs, report, servers
from bench.kserve import MODEL_INFER, infer_once, infer_request, output_array
from bench.load import DISTURBED_CORES, LoadResult, measure
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb

NAME = "kserve_resnet"
DESCRIPTION = "resnet_like served over KServe gRPC vs OpenVINO benchmark_app (FPS, same IR and settings)"
DEFAULT_SECONDS = 12.0
DEFAULT_ROUNDS = 3
TARGET_RATIO = 0.95
MODEL = "resnet_like"
SHAPE = (1, 3, 224, 224)

_THROUGHPUT = re.compile(r"Throughput:\s*([0-9.]+)\s*FPS")
_NIREQ = re.compile(r"(\d+) inference requests")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nireq", type=int, default=0, help="infer requests (default: OpenVINO's optimal number)")
    parser.add_argument("--concurrency", type=int, default=0, help="client concurrency (default: 2 x nireq)")
    parser.add_argument("--device", default="CPU", help="target device for both (default CPU)")


def parse_benchmark_app(output: str) -> tuple[float, int]:
    """(throughput in FPS, number of infer requests used) from benchmark_app's report."""
    throughput = _THROUGHPUT.search(output)
    nireq = _NIREQ.search(output)
    if throughput is None or nireq is None:
        raise RuntimeError("benchmark_app printed no 'Throughput: X FPS' or 'N inference requests' line")
    return float(throughput.group(1)), int(nireq.group(1))


@dataclass(frozen=True)
class AppRun:
    """One benchmark_app run."""

    fps: float
    nireq: int
    argv: list[str]
    other_cpu_cores: float
    steal_cores: float


def run_benchmark_app(model_xml: Path, args: argparse.Namespace, nireq: int, log_dir: Path) -> AppRun:
    """benchmark_app with the scenario's settings; ``nireq`` 0 lets it choose."""
    executable = shutil.which("benchmark_app")
    if executable is None:
        raise RuntimeError("benchmark_app not found on PATH (it comes with the openvino package)")
    argv = [
        executable, "-m", str(model_xml), "-d", args.device, "-hint", "throughput", "-api", "async",
        "-t", str(int(args.seconds)), "-shape", "[" + ",".join(str(d) for d in SHAPE) + "]",
    ]  # fmt: skip
    if nireq:
        argv += ["-nireq", str(nireq)]
    while True:
        args.budget.wait_until_quiet()
        completed = procs.run("benchmark_app", argv, log_dir, timeout=args.seconds + 300)
        if completed.other_cpu_cores <= DISTURBED_CORES or not args.budget.allow_retry(completed.seconds):
            break
        print(f"  (other processes used {completed.other_cpu_cores:.2f} cores: measuring again)", flush=True)
    fps, used = parse_benchmark_app(completed.output)
    note = _load_note(completed.other_cpu_cores, completed.steal_cores)
    print(f"  benchmark_app: {fps:.2f} FPS, {used} infer requests{note}", flush=True)
    return AppRun(fps, used, argv, completed.other_cpu_cores, completed.steal_cores)


def run_server(
    repository: Path, args: argparse.Namespace, nireq: int, payload: bytes, log_dir: Path, profile_to: Path | None
) -> LoadResult:
    """Start our server on the model, check one answer, measure it, stop it."""
    concurrency = args.concurrency or 2 * nireq
    port = procs.free_port()
    argv = servers.ovms_grpc_argv(
        port,
        repository / MODEL,
        MODEL,
        target_device=args.device,
        plugin_config={"PERFORMANCE_HINT": "THROUGHPUT"},
        nireq=nireq,
        extra=args.server_arg,
        profile_to=profile_to,
    )
    with procs.serving("ovms-grpc", argv, port, log_dir, args.server_root) as process:
        target = f"127.0.0.1:{port}"
        response = infer_once(target, pb.ModelInferRequest.FromString(payload))
        scores = output_array(response, "output")
        if scores.shape != (1, 1000) or not np.isclose(scores.sum(), 1.0, atol=1e-2):
            raise RuntimeError(f"resnet_like answered shape {scores.shape} summing to {scores.sum()}")
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
    s = result.summary()
    print(
        f"  ovms-grpc c={concurrency}: {result.rate:.2f} FPS"
        + _load_note(float(s["other_cpu_cores"]), float(s["steal_cores"])),
        flush=True,
    )
    return result


def _load_note(other: float, steal: float) -> str:
    return f" (other load {other:.2f} cores, steal {steal:.2f})"


def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    image = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    payload = infer_request(MODEL, {"input": image}).SerializeToString()
    profile_to = RESULTS_DIR / f"{NAME}-ovms_grpc.prof" if args.profile else None
    app_runs: list[AppRun] = []
    served: list[LoadResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        repository = servers.export_demo(Path(tmp) / "repo", log_dir, args.server_root)
        model_xml = repository / MODEL / "1" / "model.xml"
        nireq = args.nireq
        for round_index in range(args.rounds):
            print(f"round {round_index + 1}/{args.rounds}", flush=True)
            # benchmark_app first in the first round (it picks nireq), then the order alternates.
            if round_index % 2 == 0:
                app_runs.append(run_benchmark_app(model_xml, args, nireq, log_dir))
                nireq = app_runs[-1].nireq
                served.append(run_server(repository, args, nireq, payload, log_dir, profile_to))
            else:
                served.append(run_server(repository, args, nireq, payload, log_dir, profile_to))
                app_runs.append(run_benchmark_app(model_xml, args, nireq, log_dir))

    app_fps = statistics.fmean(run.fps for run in app_runs)
    app_other = statistics.fmean(run.other_cpu_cores for run in app_runs)
    app_steal = statistics.fmean(run.steal_cores for run in app_runs)
    summary = LoadResult.merge(served).summary()
    ratio = float(summary["rate"]) / app_fps
    per_round = [result.rate / run.fps for result, run in zip(served, app_runs, strict=True)]
    concurrency = served[0].concurrency
    print()
    print(
        f"{MODEL} {list(SHAPE)} on {args.device}, THROUGHPUT hint, nireq {nireq}, "
        f"{args.rounds} x {args.seconds:g} s each" + report.server_args_note(args.server_arg)
    )
    nan = float("nan")
    headers = ["runner", "FPS", "p50 ms", "p99 ms", "srv cpu cores", "cli cpu ms/req", "other cores", "steal", "errors"]
    print(
        report.table(
            headers,
            [
                ["benchmark_app", app_fps, nan, nan, nan, nan, app_other, app_steal, 0],
                [f"ovms-grpc c={concurrency}", summary["rate"], summary["p50_ms"], summary["p99_ms"],
                 summary["server_cpu_cores"], summary["client_cpu_ms_per_request"], summary["other_cpu_cores"],
                 summary["steal_cores"], summary["errors"]],
            ],
        )
    )  # fmt: skip
    clean = [
        run.other_cpu_cores <= DISTURBED_CORES and result.other_cpu_seconds / result.seconds <= DISTURBED_CORES
        for result, run in zip(served, app_runs, strict=True)
    ]
    print(report.ratio_line("served/benchmark_app", ratio, TARGET_RATIO, per_round, clean))
    report.warn_if_disturbed(
        [run.other_cpu_cores for run in app_runs] + [float(r.summary()["other_cpu_cores"]) for r in served],
        [run.steal_cores for run in app_runs] + [float(r.summary()["steal_cores"]) for r in served],
    )
    if profile_to is not None:
        report.print_profile(profile_to)
    return {
        "passed": summary["errors"] == 0 and ratio >= TARGET_RATIO,
        "target_ratio": TARGET_RATIO,
        "ratio": round(ratio, 4),
        "round_ratios": [round(r, 4) for r in per_round],
        "round_undisturbed": clean,
        "undisturbed_ratio": report.clean_mean(per_round, clean),
        "nireq": nireq,
        "concurrency": concurrency,
        "benchmark_app": {"fps": round(app_fps, 2), "runs": [asdict(run) for run in app_runs]},
        "served": summary,
        "served_rounds": [result.summary() for result in served],
    }
