"""``python -m bench --list`` / ``python -m bench SCENARIO [options]``."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import grpc

from bench import REPO, RESULTS_DIR, procs, report
from bench.procs import ProcessFailed

#: Scenario name -> module in this package. Each module defines NAME, DESCRIPTION,
#: DEFAULT_SECONDS, DEFAULT_ROUNDS, add_arguments(parser) and run(args, log_dir) -> dict with "passed";
#: args also carries server_root (the source tree servers run from) and budget (a procs.Patience).
SCENARIOS = ("kserve_resnet", "kserve_dummy", "gateway", "images", "reload", "generation")


def scenario_module(name: str) -> ModuleType:
    return importlib.import_module(f"bench.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Compare the server with a reference.")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    subparsers = parser.add_subparsers(dest="scenario", metavar="SCENARIO")
    for name in SCENARIOS:
        module = scenario_module(name)
        sub = subparsers.add_parser(name, help=module.DESCRIPTION, description=module.__doc__)
        sub.add_argument(
            "--seconds",
            type=float,
            default=module.DEFAULT_SECONDS,
            help=f"measured seconds per target and setting (default {module.DEFAULT_SECONDS:g})",
        )
        sub.add_argument(
            "--rounds",
            type=int,
            default=module.DEFAULT_ROUNDS,
            help=f"alternate target and reference this many times (default {module.DEFAULT_ROUNDS})",
        )
        sub.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring (default 2)")
        sub.add_argument(
            "--patience",
            type=float,
            default=60.0,
            help="at most this many extra seconds per run spent waiting for other processes to go quiet and "
            "measuring disturbed windows again (default 60, 0 = never)",
        )
        source = sub.add_mutually_exclusive_group()
        source.add_argument(
            "--server-rev",
            metavar="REV",
            help="run the servers from this git revision (git archive) instead of the working tree",
        )
        source.add_argument(
            "--server-src",
            metavar="DIR",
            type=Path,
            help="run the servers from this source tree (holding ovms_grpc/) instead of the working tree",
        )
        sub.add_argument(
            "--server-arg",
            action="append",
            default=[],
            metavar="ARG",
            help="extra argument for our server, repeatable (e.g. --server-arg=--nireq=4); last one wins",
        )
        sub.add_argument("--profile", action="store_true", help="run our server under cProfile and print the top")
        sub.add_argument("--check", action="store_true", help="exit with 1 when a ratio is below its target")
        module.add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list or args.scenario is None:
        for name in SCENARIOS:
            print(f"{name:16} {scenario_module(name).DESCRIPTION}")
        return 0 if args.list else 2
    module = scenario_module(args.scenario)
    log_dir = RESULTS_DIR / "logs" / args.scenario
    try:
        with tempfile.TemporaryDirectory(prefix="bench-src-") as tmp:
            if args.server_rev:
                args.server_root = procs.snapshot(args.server_rev, Path(tmp))
                source = f"revision {args.server_rev} ({git('rev-parse', '--short', args.server_rev)})"
            elif args.server_src:
                args.server_root = args.server_src.resolve()
                source = f"source tree {args.server_root}"
            else:
                args.server_root = REPO
                source = describe_working_tree()
            args.budget = procs.Patience(args.patience)
            print(f"servers from {source}", flush=True)
            result = module.run(args, log_dir)
    except (ProcessFailed, RuntimeError, grpc.RpcError) as exc:
        print(f"bench {args.scenario}: {exc}", file=sys.stderr)
        print(f"(logs in {log_dir})", file=sys.stderr)
        return 1
    path = report.write_json(args.scenario, {"settings": _settings(args), "server_source": source, **result})
    print(f"results: {path}")
    return 1 if args.check and not result["passed"] else 0


def git(*argv: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *argv], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def describe_working_tree() -> str:
    """The working tree's HEAD, and whether the server code has uncommitted edits."""
    edited = bool(git("status", "--porcelain", "--untracked-files=no", "--", "ovms_grpc"))
    return f"working tree at {git('rev-parse', '--short', 'HEAD')}" + (" with uncommitted changes" if edited else "")


def _settings(args: argparse.Namespace) -> dict[str, object]:
    return {key: value for key, value in vars(args).items() if key not in ("list", "scenario", "server_root", "budget")}


if __name__ == "__main__":
    raise SystemExit(main())
