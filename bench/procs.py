"""Subprocesses for benchmarks: free ports, start, wait for gRPC health, stop, CPU time."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench import REPO

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python_module(module: str, *args: str) -> list[str]:
    """The command line that runs ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


@dataclass
class Process:
    """A started subprocess whose stdout and stderr go to ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class ProcessFailed(RuntimeError):
    """A subprocess exited or did not become ready; the message carries its log tail."""


def start(name: str, argv: Sequence[str], log_dir: Path, root: Path = REPO, *, pipes: bool = False) -> Process:
    """Start ``argv`` in ``root`` (a source tree, first on PYTHONPATH), output captured to ``log_dir/name.log``.

    With ``pipes``, its stdin and stdout are pipes (``process.popen.stdin``/``stdout``, binary) for a
    line protocol, and only its stderr goes to the log.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    env = dict(os.environ)
    # the tree's own client package (clients/python holds the stubs the server imports) before the installed one
    paths = (str(root), str(root / "clients" / "python"), str(REPO), env.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    with log_path.open("wb") as log:
        if pipes:
            popen = subprocess.Popen(
                list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=root, env=env
            )
        else:
            popen = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env)
    return Process(name, list(argv), log_path, popen)


def health_status(target: str, timeout: float = 1.0) -> int | None:
    """The overall gRPC health status at ``target``, or None when nothing answers."""
    with grpc.insecure_channel(target) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return None
    return int(response.status)


def wait_serving(process: Process, target: str, timeout: float) -> float:
    """Poll gRPC health until SERVING; returns the seconds it took. Raises ProcessFailed."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise ProcessFailed(
                f"{process.name} exited with {process.popen.returncode} before serving:\n{process.log_tail()}"
            )
        if health_status(target) == health_pb2.HealthCheckResponse.SERVING:
            return time.monotonic() - started
        time.sleep(0.1)
    raise ProcessFailed(f"{process.name} not SERVING at {target} after {timeout:.0f} s:\n{process.log_tail()}")


def stop(process: Process, grace: float = 15.0, signum: int = signal.SIGTERM) -> int:
    """SIGTERM (or ``signum``), wait up to ``grace`` seconds, then SIGKILL; returns the exit code."""
    if process.popen.poll() is None:
        process.popen.send_signal(signum)
        try:
            process.popen.wait(grace)
        except subprocess.TimeoutExpired:
            process.popen.kill()
            process.popen.wait()
    return int(process.popen.returncode)


def wait_http_ok(process: Process, url: str, timeout: float) -> float:
    """Poll ``GET url`` until it answers 200 (e.g. a REST readiness route); returns the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise ProcessFailed(f"{process.name} exited with {process.popen.returncode}:\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as answer:
                if answer.status == 200:
                    return time.monotonic() - started
        except OSError:  # refused, reset, timed out, or an HTTP error status
            pass
        time.sleep(0.1)
    raise ProcessFailed(f"{url} did not answer 200 after {timeout:.0f} s:\n{process.log_tail()}")


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (all its threads'), from /proc."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            children += [int(child) for child in (task / "children").read_text().split()]
    return children


def child_running(pid: int, module: str, timeout: float = 10.0) -> int:
    """The pid of the child of ``pid`` that runs ``python -m module`` (waits for it up to ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        for child in child_pids(pid):
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                if b"-m" in argv and argv[argv.index(b"-m") + 1 :][:1] == [module.encode()]:
                    return child
        if time.monotonic() >= deadline:
            raise ProcessFailed(f"process {pid} has no child running -m {module}")
        time.sleep(0.1)


def child_with_argument(pid: int, fragment: str, timeout: float = 10.0) -> int:
    """The pid of the child of ``pid`` one of whose arguments contains ``fragment`` (waits up to ``timeout``).

    For children that are not ``python -m`` modules, e.g. ``multiprocessing`` spawn children (``spawn_main``).
    """
    deadline = time.monotonic() + timeout
    while True:
        for child in child_pids(pid):
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                if any(fragment.encode() in argument for argument in argv):
                    return child
        if time.monotonic() >= deadline:
            raise ProcessFailed(f"process {pid} has no child with an argument containing {fragment!r}")
        time.sleep(0.1)


@contextlib.contextmanager
def serving(
    name: str, argv: Sequence[str], port: int, log_dir: Path, root: Path = REPO, timeout: float = 180.0
) -> Iterator[Process]:
    """Start a gRPC server process in ``root``, wait until it is SERVING on 127.0.0.1:port, stop it on exit."""
    process = start(name, argv, log_dir, root)
    try:
        wait_serving(process, f"127.0.0.1:{port}", timeout)
        yield process
    finally:
        stop(process)


@dataclass(frozen=True)
class Completed:
    """A finished command: its output, and the CPU it and the rest of the machine used meanwhile."""

    output: str
    seconds: float
    cpu_seconds: float
    other_cpu_seconds: float
    steal_seconds: float

    @property
    def other_cpu_cores(self) -> float:
        return self.other_cpu_seconds / self.seconds if self.seconds else 0.0

    @property
    def steal_cores(self) -> float:
        return self.steal_seconds / self.seconds if self.seconds else 0.0


def run(name: str, argv: Sequence[str], log_dir: Path, timeout: float, root: Path = REPO) -> Completed:
    """Run a command to completion (output also kept in ``log_dir/name.log``). Raises ProcessFailed."""
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine0, steal0, started = machine_busy_seconds(), machine_steal_seconds(), time.monotonic()
    process = start(name, argv, log_dir, root)
    try:
        code = process.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        stop(process, grace=5.0)
        raise ProcessFailed(f"{name} did not finish in {timeout:.0f} s:\n{process.log_tail()}") from None
    if code != 0:
        raise ProcessFailed(f"{name} exited with {code}:\n{process.log_tail()}")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = children.ru_utime + children.ru_stime - children0.ru_utime - children0.ru_stime
    machine = machine_busy_seconds() - machine0
    return Completed(
        output=process.log_path.read_text(errors="replace"),
        seconds=time.monotonic() - started,
        cpu_seconds=cpu,
        other_cpu_seconds=max(machine - cpu, 0.0),
        steal_seconds=machine_steal_seconds() - steal0,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # After "pid (comm)": fields[11] is utime and fields[12] is stime, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _machine_ticks() -> list[int]:
    with open("/proc/stat", encoding="ascii") as stat:
        return [int(value) for value in stat.readline().split()[1:9]]


def machine_busy_seconds() -> float:
    """CPU time all processes on the machine have used so far (user, nice, system, irq, softirq)."""
    user, nice, system, _idle, _iowait, irq, softirq, _steal = _machine_ticks()
    return (user + nice + system + irq + softirq) / _CLOCK_TICKS


def machine_steal_seconds() -> float:
    """CPU time the hypervisor gave to other guests while this one wanted to run (0 on bare metal)."""
    return _machine_ticks()[7] / _CLOCK_TICKS


class Patience:
    """A time budget, shared by a whole run, for waiting out other load on the machine.

    Other work on a small machine (a test run, a build) distorts a measurement.
    Before each window we wait for a quiet moment, and a disturbed window may be
    measured again, but only while the budget lasts, so a run stays bounded.
    """

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    def wait_until_quiet(self, longest: float = 10.0) -> None:
        self.left -= wait_until_quiet(timeout=min(longest, self.left))

    def allow_retry(self, cost: float) -> bool:
        """Whether a window costing ``cost`` seconds may be measured again (and charge it if so)."""
        if self.left < cost:
            return False
        self.left -= cost
        return True


def wait_until_quiet(max_cores: float = 0.25, timeout: float = 30.0, interval: float = 0.5) -> float:
    """Wait (up to ``timeout``) until the machine uses less than ``max_cores``; returns the seconds waited."""
    started = time.monotonic()
    while timeout > 0:
        before = machine_busy_seconds()
        time.sleep(interval)
        if (machine_busy_seconds() - before) / interval < max_cores or time.monotonic() - started >= timeout:
            break
    return time.monotonic() - started


def snapshot(revision: str, destination: Path) -> Path:
    """The repository's tree at ``revision`` (``git archive``) unpacked in ``destination``.

    Servers run from a snapshot are immune to edits in the working tree while a
    benchmark runs, and two revisions can be compared.
    """
    destination.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", revision], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise ProcessFailed(f"git archive {revision}: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive.stdout, check=True)
    return destination
