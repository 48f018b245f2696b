"""A lean closed-loop gRPC load generator: N coroutines on one channel, one prebuilt request.

The request is serialized once and sent as bytes, and responses are not parsed
(check one response before the run instead), so on a small machine the client
takes as little CPU as possible from the server it measures. The same client is
used for a server and its reference, so ratios are fair.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass

import grpc

from bench.procs import Patience, cpu_seconds, machine_busy_seconds, machine_steal_seconds

#: Large enough for any tensor a benchmark sends (same as the server's default limit).
MAX_MESSAGE_BYTES = 1024 * 1024 * 1024
CHANNEL_OPTIONS = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
)


@dataclass(frozen=True)
class LoadResult:
    """What one measured window saw."""

    concurrency: int
    seconds: float
    """Length of the measured window (after the warm-up)."""
    count: int
    """Requests that completed successfully inside the window."""
    errors: int
    first_error: str
    latencies: Sequence[float]
    """Seconds per successful request completed inside the window."""
    client_cpu_seconds: float
    server_cpu_seconds: float
    """CPU time of the watched processes during the window (0 when none were watched)."""
    other_cpu_seconds: float
    """CPU time the rest of the machine used during the window: high means a disturbed measurement."""
    steal_seconds: float
    """CPU time the hypervisor took away during the window (a virtual machine's noisy neighbours)."""
    watched_cpu_seconds: tuple[float, ...] = ()
    """CPU time of each watched process during the window, in the order they were given."""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000.0 * ordered[min(len(ordered) - 1, int(q / 100.0 * len(ordered)))]

    @staticmethod
    def merge(results: Sequence[LoadResult]) -> LoadResult:
        """Several windows at one concurrency as one (rounds of the same measurement)."""
        return LoadResult(
            concurrency=results[0].concurrency,
            seconds=sum(r.seconds for r in results),
            count=sum(r.count for r in results),
            errors=sum(r.errors for r in results),
            first_error=next((r.first_error for r in results if r.first_error), ""),
            latencies=[latency for r in results for latency in r.latencies],
            client_cpu_seconds=sum(r.client_cpu_seconds for r in results),
            server_cpu_seconds=sum(r.server_cpu_seconds for r in results),
            other_cpu_seconds=sum(r.other_cpu_seconds for r in results),
            steal_seconds=sum(r.steal_seconds for r in results),
            watched_cpu_seconds=tuple(map(sum, zip(*(r.watched_cpu_seconds for r in results), strict=True))),
        )

    def summary(self) -> dict[str, float | int | str]:
        """The figures reported in tables and JSON."""
        count = max(self.count, 1)
        return {
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 3),
            "count": self.count,
            "errors": self.errors,
            "first_error": self.first_error,
            "rate": round(self.rate, 2),
            "p50_ms": round(self.percentile_ms(50), 3),
            "p90_ms": round(self.percentile_ms(90), 3),
            "p99_ms": round(self.percentile_ms(99), 3),
            "mean_ms": round(1000.0 * statistics.fmean(self.latencies), 3) if self.latencies else float("nan"),
            "client_cpu_ms_per_request": round(1000.0 * self.client_cpu_seconds / count, 4),
            "server_cpu_ms_per_request": round(1000.0 * self.server_cpu_seconds / count, 4),
            "server_cpu_cores": round(self.server_cpu_seconds / self.seconds, 3) if self.seconds else 0.0,
            "other_cpu_cores": round(self.other_cpu_seconds / self.seconds, 3) if self.seconds else 0.0,
            "steal_cores": round(self.steal_seconds / self.seconds, 3) if self.seconds else 0.0,
        }


#: One request of a closed loop: returns when the answer is in, raises when the request failed.
Send = Callable[[], Awaitable[object]]


async def run_load(
    target: str,
    method: str,
    payload: bytes,
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
    timeout: float = 60.0,
    watch_pids: Sequence[int] = (),
) -> LoadResult:
    """Send ``payload`` (a serialized request) to ``method`` from ``concurrency`` coroutines.

    Every coroutine loops until the window closes; only requests that complete
    inside the window [start + warmup, start + warmup + seconds] are counted.
    """
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        call = channel.unary_unary(method)  # no serializers: bytes in, bytes out
        await asyncio.wait_for(channel.channel_ready(), timeout)
        return await closed_loop(
            lambda: call(payload, timeout=timeout),
            concurrency=concurrency,
            seconds=seconds,
            warmup=warmup,
            watch_pids=watch_pids,
        )


async def closed_loop(
    send: Send,
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
    watch_pids: Sequence[int] = (),
) -> LoadResult:
    """Call ``send`` from ``concurrency`` coroutines in a loop, whatever the protocol.

    Only requests that complete inside the window [start + warmup, start + warmup + seconds]
    are counted; the CPU of this process, of ``watch_pids`` and of the machine is sampled
    over the same window.
    """
    clock = time.perf_counter
    window_start = clock() + warmup
    window_end = window_start + seconds
    latencies: list[float] = []
    errors = 0
    first_error = ""

    async def worker() -> None:
        nonlocal errors, first_error
        while True:
            sent = clock()
            if sent >= window_end:
                return
            try:
                await send()
            except Exception as exc:  # any failed request is counted, not raised
                done = clock()
                if window_start <= done <= window_end:
                    errors += 1
                    first_error = first_error or describe_error(exc)
                continue
            done = clock()
            if window_start <= done <= window_end:
                latencies.append(done - sent)

    async def sample_cpu() -> tuple[float, list[float], float, float]:
        await asyncio.sleep(max(0.0, window_start - clock()))
        client0, watched0 = time.process_time(), _cpu_each(watch_pids)
        machine0, steal0 = machine_busy_seconds(), machine_steal_seconds()
        await asyncio.sleep(max(0.0, window_end - clock()))
        client = time.process_time() - client0
        watched = [after - before for after, before in zip(_cpu_each(watch_pids), watched0, strict=True)]
        other = machine_busy_seconds() - machine0 - client - sum(watched)
        return client, watched, other, machine_steal_seconds() - steal0

    sampler = asyncio.create_task(sample_cpu())
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    client_cpu, watched_cpu, other_cpu, steal = await sampler
    return LoadResult(
        concurrency=concurrency,
        seconds=seconds,
        count=len(latencies),
        errors=errors,
        first_error=first_error,
        latencies=latencies,
        client_cpu_seconds=client_cpu,
        server_cpu_seconds=sum(watched_cpu),
        other_cpu_seconds=max(other_cpu, 0.0),
        steal_seconds=steal,
        watched_cpu_seconds=tuple(watched_cpu),
    )


def describe_error(exc: BaseException) -> str:
    """One line for a failed request: the gRPC status, or the exception."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"


def _cpu_each(pids: Sequence[int]) -> list[float]:
    return [cpu_seconds(pid) for pid in pids]


#: Other processes using more than this many cores during a window make its figures doubtful.
DISTURBED_CORES = 0.2


def measure(
    target: str,
    method: str,
    payload: bytes,
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
    watch_pids: Sequence[int] = (),
    patience: Patience | None = None,
) -> LoadResult:
    """Blocking `run_load` (one fresh event loop per window), with `measure_with`'s patience."""
    return measure_with(
        lambda: run_load(
            target,
            method,
            payload,
            concurrency=concurrency,
            seconds=seconds,
            warmup=warmup,
            watch_pids=watch_pids,
        ),
        seconds=seconds,
        warmup=warmup,
        patience=patience,
    )


def measure_with(
    window: Callable[[], Coroutine[object, object, LoadResult]],
    *,
    seconds: float,
    warmup: float,
    patience: Patience | None = None,
) -> LoadResult:
    """Run one measured window (a coroutine such as `run_load`'s) in a fresh event loop.

    With ``patience``, first wait for a quiet machine, and measure a window
    again when other processes used more than `DISTURBED_CORES` during it,
    while the patience lasts.
    """
    patience = patience or Patience(0.0)
    while True:
        patience.wait_until_quiet()
        result = asyncio.run(window())
        other = result.other_cpu_seconds / seconds
        if other <= DISTURBED_CORES or not patience.allow_retry(warmup + seconds):
            return result
        print(f"  (other processes used {other:.2f} cores: measuring again)", flush=True)
