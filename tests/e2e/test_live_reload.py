"""Live changes while a client keeps inferring: models added, changed and removed in config.json,
versions added and removed on disk, a bad edit; zero failed requests on the model that stays."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import pytest

from tests import models
from tests.e2e.kserve_client import Client

ONES = np.ones((1, 10), np.float32)


def write_atomically(path: Path, text: str) -> None:
    staging = path.with_suffix(".tmp")
    staging.write_text(text)
    os.replace(staging, path)


def write_entries(path: Path, entries: list[dict]) -> None:
    write_atomically(path, json.dumps({"model_config_list": [{"config": e} for e in entries]}))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> float:
    """Poll ``condition`` until it holds; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class InferLoop(threading.Thread):
    """Infers on one model without pause and records every failure."""

    def __init__(self, address: str, model: str) -> None:
        super().__init__(daemon=True)
        self.client = Client(address)
        self.model = model
        self.stop = threading.Event()
        self.answers: list[float] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.answers.append(float(self.client.infer(self.model, {"b": ONES})["a"][0, 0]))
            except grpc.RpcError as exc:
                self.failures.append(f"{exc.code()}: {exc.details()}")


def test_live_changes_under_load(server_factory, tmp_path: Path) -> None:
    root = tmp_path
    models.save(models.build_add([1, 10], 1.0), root / "a", 1)
    models.save(models.build_add([1, 10], 10.0), root / "b", 1)
    version_two = models.save(models.build_add([1, 10], 2.0), root / "staging" / "a", 2) / "2"
    config = root / "config.json"
    entry_a = {"name": "a", "base_path": "a", "model_version_policy": {"all": {}}}
    write_entries(config, [entry_a])
    server = server_factory("--config_path", str(config), "--file_system_poll_wait_seconds", "1")
    client = Client(server.address)
    loop = InferLoop(server.address, "a")
    loop.start()
    try:
        # add model b
        write_entries(config, [entry_a, {"name": "b", "base_path": "b", "nireq": 1}])
        wait_until(lambda: client.states("b") == {1: "AVAILABLE"} if "b" in client.status().models else False, "b")
        assert client.infer("b", {"b": ONES})["a"][0, 0] == 11

        # change b: new nireq and device, switched over once compiled
        write_entries(config, [entry_a, {"name": "b", "base_path": "b", "nireq": 3, "target_device": "AUTO:CPU"}])
        wait_until(lambda: client.status("b").models["b"].model_version_status[0].nireq == 3, "b's new nireq")
        assert client.status("b").models["b"].target_device == "AUTO:CPU"
        assert client.infer("b", {"b": ONES})["a"][0, 0] == 11

        # a new version folder for a
        shutil.move(str(version_two), str(root / "a" / "2"))
        took = wait_until(lambda: client.states("a").get(2) == "AVAILABLE", "version 2 of a")
        print(f"\nnew version AVAILABLE {took:.2f} s after its folder appeared (poll interval 1 s)")
        assert client.infer("a", {"b": ONES})["a"][0, 0] == 3

        # a bad edit keeps the previous configuration serving and is reported
        write_atomically(config, '{"model_config_list": [ {"config": ')
        wait_until(lambda: "not valid JSON" in client.status().config_error, "the config error in status")
        assert client.infer("b", {"b": ONES})["a"][0, 0] == 11
        write_atomically(config, json.dumps({"model_config_list": [{"config": {**entry_a, "nireq": "x"}}]}))
        wait_until(lambda: "config.nireq: expected a non-negative integer" in client.status().config_error, "2nd error")

        # remove b; and version 1 of a disappears from disk
        write_entries(config, [entry_a])
        wait_until(lambda: client.states("b") == {1: "END"}, "b retired")
        assert client.status().config_error == ""
        shutil.rmtree(root / "a" / "1")
        wait_until(lambda: client.states("a") == {1: "END", 2: "AVAILABLE"}, "version 1 of a retired")
        with pytest.raises(grpc.RpcError) as info:
            client.infer("a", {"b": ONES}, version="1")
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert 'model "a" version 1 is retired' in info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            client.infer("b", {"b": ONES})
        assert info.value.code() == grpc.StatusCode.NOT_FOUND and 'model "b" was removed' in info.value.details()
    finally:
        loop.stop.set()
        loop.join(10)
        client.close()
    assert loop.failures == []
    assert len(loop.answers) > 50
    assert set(loop.answers) == {2.0, 3.0}  # version 1 (+1), then version 2 (+2)


def test_reload_rpc_applies_changes_when_polling_is_off(server_factory, tmp_path: Path) -> None:
    models.save(models.build_add([1, 10], 1.0), tmp_path / "a", 1)
    config = tmp_path / "config.json"
    write_entries(config, [{"name": "a", "base_path": "a"}])
    server = server_factory("--config_path", str(config), "--file_system_poll_wait_seconds", "0")
    client = Client(server.address)
    try:
        assert not client.reload().reloaded
        models.save(models.build_add([1, 10], 5.0), tmp_path / "c", 1)
        write_entries(config, [{"name": "a", "base_path": "a"}, {"name": "c", "base_path": "c"}])
        time.sleep(1.5)  # polling is off: nothing may change by itself
        assert "c" not in client.status().models
        answer = client.reload()
        assert answer.reloaded and answer.status.models["c"].model_version_status[0].state == 30
        assert client.infer("c", {"b": ONES})["a"][0, 0] == 6
        write_atomically(config, "not json")
        with pytest.raises(grpc.RpcError) as info:
            client.reload()
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert info.value.details().startswith(f"The file is not valid json - {config}: not valid JSON")
        assert client.infer("c", {"b": ONES})["a"][0, 0] == 6
    finally:
        client.close()


def test_a_missing_base_path_is_logged_once_until_its_reason_changes(
    server_factory, dummy_repo: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.json"
    missing = tmp_path / "not-yet"
    write_entries(
        config, [{"name": "dummy", "base_path": str(dummy_repo)}, {"name": "later", "base_path": str(missing)}]
    )
    server = server_factory("--config_path", str(config), "--file_system_poll_wait_seconds", "0")
    client = Client(server.address)
    for _ in range(3):  # each reload rechecks every base path, as a poll does
        client.reload()
    assert client.status("later").models["later"].error
    assert server.log.count(f'model "later": model path {missing}') == 1, server.log
    shutil.copytree(dummy_repo, missing)
    client.reload()
    assert client.states("later") == {2: "AVAILABLE"}
    shutil.rmtree(missing)
    client.reload()
    client.reload()
    # Logged again after it recovered and failed anew, and still only once for the new failure.
    assert server.log.count(f'model "later": model path {missing}') == 2, server.log
