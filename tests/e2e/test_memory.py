"""Unloading a version gives its memory back: load and unload a ResNet-50-sized model 10 times."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from tests.e2e.kserve_client import Client


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


def settled_rss_mb(pid: int, below: float | None, timeout: float = 15.0) -> float:
    """RSS once it is under ``below`` (OpenVINO's threads may free a model's buffers a moment after
    the unload returned; on a loaded machine that moment is longer), or the lowest seen by the deadline."""
    lowest = rss_mb(pid)
    deadline = time.monotonic() + timeout
    while below is not None and lowest >= below and time.monotonic() < deadline:
        time.sleep(0.1)
        lowest = min(lowest, rss_mb(pid))
    return lowest


def test_rss_returns_near_baseline_after_each_unload(server_factory, demo_repo: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"

    def serve(*names: str) -> None:
        entries = [{"config": {"name": name, "base_path": str(demo_repo / name)}} for name in names]
        config.write_text(json.dumps({"model_config_list": entries}))

    serve("dummy")
    server = server_factory("--config_path", str(config), "--file_system_poll_wait_seconds", "0")
    client = Client(server.address)
    image = np.ones((1, 3, 224, 224), np.float32)
    loaded, unloaded = [], []
    try:
        for _ in range(10):
            serve("dummy", "resnet_like")
            assert client.reload().reloaded
            assert client.infer("resnet_like", {"input": image})["output"].shape == (1, 1000)
            loaded.append(rss_mb(server.process.pid))
            serve("dummy")
            assert client.reload().reloaded
            assert client.states("resnet_like") == {1: "END"}
            unloaded.append(settled_rss_mb(server.process.pid, unloaded[0] + 40 if unloaded else None))
    finally:
        client.close()
    # the model is big enough that a leak would show: ~100 MB of weights per load
    assert min(loaded) - max(unloaded) > 80, (loaded, unloaded)
    # after ten cycles the server is where it was after the first
    assert unloaded[-1] - unloaded[0] < 40, unloaded
