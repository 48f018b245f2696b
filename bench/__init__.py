"""Benchmarks that compare the server with a reference in one run.

Run ``python -m bench --list`` for the scenarios and ``python -m bench SCENARIO --help``
for their options. Each scenario starts what it needs as subprocesses on loopback,
prints a table with ratios, and writes ``bench/results/<scenario>.json``.
"""

from pathlib import Path

#: The repository root: subprocesses run here so ``-m ovms_grpc`` and ``-m bench.*`` resolve.
REPO = Path(__file__).resolve().parent.parent

#: Where scenarios write their JSON results and server logs (git-ignored).
RESULTS_DIR = Path(__file__).resolve().parent / "results"
