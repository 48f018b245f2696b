"""How long a new model version or a new model takes to serve, while a client keeps inferring.

The server reads a config.json serving ``dummy`` (version policy ``all``: versions 1 and 2)
while a client infers on it without a version at concurrency 4 for the whole run; every
answer's values are checked against its ``model_version`` (version N of dummy adds N;
the added version 3 is a copy of version 1, so it adds 1). Then, ``--rounds`` times:

- a copy of version 1 is moved into place as version 3 (one atomic rename): time until
  ``GetServerStatus`` shows it AVAILABLE and until the first request without a version is
  answered by version 3; then the folder is moved away again: time until it is END;
- (``--model-rounds`` times) ``resnet_like`` is added to config.json (written next to it and
  renamed over it): time until it is AVAILABLE (read + compile); then removed again, until END.

Twice: with config.json and the folders polled every second (``--file_system_poll_wait_seconds 1``;
each change is made at a random moment of the interval, as a change made just after the
previous one was seen would always wait a whole interval), and with polling off and an
``ovms.admin.v1.AdminService/ReloadConfig`` call after each change (whose own duration is
shown too). No request may fail or get a wrong answer during either run.
``--seconds`` is the limit for each wait.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from bench import RESULTS_DIR, procs, report, servers
from bench.kserve import MODEL_INFER, infer_request
from bench.load import CHANNEL_OPTIONS, describe_error
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb
from ovms_grpc_client.genproto.ovms.admin.v1 import admin_pb2, admin_pb2_grpc

NAME = "reload"
DESCRIPTION = "time until a new version folder / a new config.json model serves under load (poll 1 s, ReloadConfig)"
DEFAULT_SECONDS = 60.0
DEFAULT_ROUNDS = 10
MODEL = "dummy"
NEW_VERSION = 3
COPIED_VERSION = 1
AVAILABLE = admin_pb2.VERSION_STATE_AVAILABLE
END = admin_pb2.VERSION_STATE_END
STATUS_INTERVAL = 0.01
POLL_SECONDS = 1
POLL, RPC = f"poll {POLL_SECONDS} s", "ReloadConfig"
DATA = np.arange(10, dtype=np.float32).reshape(1, 10)
CONFIG: dict[str, dict[str, object]] = {MODEL: {"base_path": MODEL, "model_version_policy": {"all": {}}}}
WITH_RESNET: dict[str, dict[str, object]] = {**CONFIG, "resnet_like": {"base_path": "resnet_like"}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=4, help="inferring client's concurrency (default 4)")
    parser.add_argument("--model-rounds", type=int, default=5, help="times resnet_like is added (default 5)")
    parser.add_argument("--modes", default=f"{POLL},{RPC}", help=f"comma-separated: {POLL!r} and/or {RPC!r}")


@dataclass
class Load:
    """A client inferring on ``dummy`` without a version from N coroutines, checking every answer."""

    count: int = 0
    failures: int = 0
    wrong: int = 0
    first_error: str = ""
    by_version: dict[str, int] = field(default_factory=dict)
    waiting_for: str = ""
    since: float = 0.0
    seen: asyncio.Event = field(default_factory=asyncio.Event)
    seen_at: float = 0.0
    stopping: bool = False

    def expect(self, version: str, since: float) -> None:
        """Note when the first answer from ``version`` completes after ``since``."""
        self.waiting_for, self.since, self.seen_at = version, since, 0.0
        self.seen.clear()

    async def worker(self, call: grpc.aio.UnaryUnaryMultiCallable, payload: bytes) -> None:
        while not self.stopping:
            try:
                answer = pb.ModelInferResponse.FromString(await call(payload, timeout=30))
            except grpc.aio.AioRpcError as exc:
                self.failures += 1
                self.first_error = self.first_error or describe_error(exc)
                continue
            done = time.perf_counter()
            self.count += 1
            version = answer.model_version
            self.by_version[version] = self.by_version.get(version, 0) + 1
            increment = COPIED_VERSION if version == str(NEW_VERSION) else int(version)
            values = np.frombuffer(answer.raw_output_contents[0], np.float32)
            if not np.array_equal(values, DATA.ravel() + increment):
                self.wrong += 1
                self.first_error = self.first_error or f"version {version} answered {values}"
            if version == self.waiting_for and done >= self.since and not self.seen.is_set():
                self.seen_at = done
                self.seen.set()


@dataclass
class Timings:
    """Seconds from a change on disk to each event, per repetition."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, event: str, seconds: float) -> None:
        self.values.setdefault(event, []).append(seconds)


async def wait_state(
    admin: admin_pb2_grpc.AdminServiceStub, model: str, version: int | None, states: tuple[int, ...], limit: float
) -> float:
    """Poll GetServerStatus until ``model`` (a given version, or any) is in one of ``states`` (absent counts as END)."""
    deadline = time.perf_counter() + limit
    while True:
        try:
            status = await admin.GetServerStatus(admin_pb2.GetServerStatusRequest(model_name=model), timeout=10)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:  # not configured (yet, or any more)
                raise
            status = admin_pb2.GetServerStatusResponse()
        versions = status.models[model].model_version_status if model in status.models else []
        found = [v.state for v in versions if version is None or v.version == version]
        if any(state in states for state in found) or (not found and END in states):
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise RuntimeError(
                f"{model} version {version or 'any'} not in state {states} after {limit:.0f} s: {status}"
            )
        await asyncio.sleep(STATUS_INTERVAL)


async def within(awaitable: Awaitable[Any], limit: float, what: str) -> Any:
    try:
        return await asyncio.wait_for(awaitable, limit)
    except TimeoutError:
        raise RuntimeError(f"no {what} after {limit:.0f} s") from None


async def exercise(
    args: argparse.Namespace, mode: str, target: str, server_pid: int, repository: Path, staging: Path
) -> dict[str, Any]:
    """Drive one server: the load for the whole time, the version and model changes meanwhile."""
    timings = Timings()
    load = Load()
    payload = infer_request(MODEL, {"b": DATA}).SerializeToString()
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        call = channel.unary_unary(MODEL_INFER)

        phases = random.Random(0)

        async def at_random_phase() -> None:
            """With polling, wait a random part of the interval: a change made right after the previous
            change was seen (itself just after a poll) would always wait a whole interval."""
            if mode == POLL:
                await asyncio.sleep(phases.uniform(0.0, POLL_SECONDS))

        async def changed(start: float, event: str) -> None:
            """After a change on disk: without polling, ask for a reload (and time it)."""
            if mode == RPC:
                await admin.ReloadConfig(admin_pb2.ReloadConfigRequest(), timeout=args.seconds)
                timings.add(f"{event}: ReloadConfig returned", time.perf_counter() - start)

        workers = [asyncio.create_task(load.worker(call, payload)) for _ in range(args.concurrency)]
        started = time.perf_counter()
        busy0, cpu0, server0 = procs.machine_busy_seconds(), time.process_time(), procs.cpu_seconds(server_pid)
        try:
            await asyncio.sleep(1.0)  # the load settles
            folder = repository / MODEL / str(NEW_VERSION)
            for _ in range(args.rounds):
                shutil.copytree(repository / MODEL / str(COPIED_VERSION), staging)
                await at_random_phase()
                start = time.perf_counter()
                staging.rename(folder)
                load.expect(str(NEW_VERSION), start)
                await changed(start, "new version")
                available = await wait_state(admin, MODEL, NEW_VERSION, (AVAILABLE,), args.seconds)
                timings.add("new version: AVAILABLE", available - start)
                await within(load.seen.wait(), args.seconds, f"answer from version {NEW_VERSION}")
                timings.add("new version: first answer", load.seen_at - start)
                await at_random_phase()
                start = time.perf_counter()
                folder.rename(staging)
                await changed(start, "version removed")
                ended = await wait_state(admin, MODEL, NEW_VERSION, (END,), args.seconds)
                timings.add("version removed: END", ended - start)
                shutil.rmtree(staging)
            config = repository / "config.json"
            for _ in range(args.model_rounds):
                await at_random_phase()
                start = time.perf_counter()
                servers.write_config(config, WITH_RESNET)
                await changed(start, "new model")
                available = await wait_state(admin, "resnet_like", None, (AVAILABLE,), args.seconds)
                timings.add("new model: AVAILABLE", available - start)
                await at_random_phase()
                start = time.perf_counter()
                servers.write_config(config, CONFIG)
                await changed(start, "model removed")
                ended = await wait_state(admin, "resnet_like", None, (END,), args.seconds)
                timings.add("model removed: END", ended - start)
            await asyncio.sleep(0.5)  # answers after the last change count too
        finally:
            load.stopping = True
            await asyncio.gather(*workers, return_exceptions=True)
    elapsed = time.perf_counter() - started
    server = procs.cpu_seconds(server_pid) - server0
    other = max(procs.machine_busy_seconds() - busy0 - (time.process_time() - cpu0) - server, 0.0) / elapsed
    return {
        "mode": mode,
        "seconds": round(elapsed, 2),
        "requests": load.count,
        "failed": load.failures,
        "wrong_answers": load.wrong,
        "first_error": load.first_error,
        "answers_by_version": dict(sorted(load.by_version.items())),
        "server_cpu_cores": round(server / elapsed, 3),
        "other_cpu_cores": round(other, 3),
        "timings": timings.values,
    }


def run_mode(args: argparse.Namespace, mode: str, log_dir: Path, profile_to: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        repository = servers.export_demo(Path(tmp) / "repo", log_dir, args.server_root)
        config = servers.write_config(repository / "config.json", CONFIG)
        port = procs.free_port()
        argv = servers.ovms_grpc_config_argv(
            port, config, poll_seconds=POLL_SECONDS if mode == POLL else 0, extra=args.server_arg, profile_to=profile_to
        )
        args.budget.wait_until_quiet()
        with procs.serving("ovms-grpc", argv, port, log_dir, args.server_root) as server:
            print(f"{mode}: {args.rounds} new versions, {args.model_rounds} new models", flush=True)
            target = f"127.0.0.1:{port}"
            return asyncio.run(exercise(args, mode, target, server.pid, repository, Path(tmp) / "staging"))


def _stats(values: list[float]) -> list[float]:
    return [1000 * min(values), 1000 * statistics.median(values), 1000 * max(values)]


def run(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    modes = [mode.strip() for mode in args.modes.split(",")]
    unknown = set(modes) - {POLL, RPC}
    if unknown:
        raise RuntimeError(f"unknown mode(s) {sorted(unknown)}; expected {POLL!r} and/or {RPC!r}")
    profile_to = RESULTS_DIR / f"{NAME}-ovms_grpc.prof" if args.profile else None
    runs = [run_mode(args, mode, log_dir, profile_to) for mode in modes]
    print()
    print(
        f"{MODEL} (policy all) under load at concurrency {args.concurrency}; version {NEW_VERSION} = copy of "
        f"{COPIED_VERSION} moved into place, resnet_like added to config.json; ms from the change"
        + report.server_args_note(args.server_arg)
    )
    rows = [[r["mode"], event, len(values), *_stats(values)] for r in runs for event, values in r["timings"].items()]
    print(report.table(["mode", "event", "n", "min ms", "median ms", "max ms"], rows))
    print()
    headers = ["mode", "seconds", "requests", "failed", "wrong", "answers by version", "srv cores", "other cores"]
    print(report.table(headers, [[r["mode"], r["seconds"], r["requests"], r["failed"], r["wrong_answers"],
                                  " ".join(f"v{v}:{n}" for v, n in r["answers_by_version"].items()),
                                  r["server_cpu_cores"], r["other_cpu_cores"]] for r in runs]))  # fmt: skip
    for r in runs:
        if r["first_error"]:
            print(f"{r['mode']}: first failure: {r['first_error']}")
    report.warn_if_disturbed([float(r["other_cpu_cores"]) for r in runs], [])
    if profile_to is not None:
        report.print_profile(profile_to)
    keys = ("min_ms", "median_ms", "max_ms")
    summary = {
        r["mode"]: {event: dict(zip(keys, (round(v, 1) for v in _stats(values)), strict=True))
                    for event, values in r["timings"].items()}
        for r in runs
    }  # fmt: skip
    return {
        "passed": all(r["failed"] == 0 and r["wrong_answers"] == 0 for r in runs),
        "summary": summary,
        "runs": runs,
    }
