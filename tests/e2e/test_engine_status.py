"""While a generation engine is down, every status agrees with ModelReady: admin status, TFS
GetModelStatus and the gateway's /v1/config say LOADING with the reason, not AVAILABLE (issue 12,
point 6); once the engine is back they say AVAILABLE again."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import grpc
import httpx
import pytest

from ovms_grpc_client.genproto.ovms.admin.v1 import admin_pb2, admin_pb2_grpc
from ovms_grpc_client.genproto.tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc
from tests.server_process import ServerProcess

AVAILABLE, LOADING = 30, 20


@pytest.fixture(scope="module")
def server(server_factory, llm_dir: Path) -> ServerProcess:
    return server_factory("--task", "text_generation", "--model_path", str(llm_dir), "--model_name", "llm", rest=True)


def admin_version(channel: grpc.Channel) -> admin_pb2.ModelVersionStatus:
    status = admin_pb2_grpc.AdminServiceStub(channel).GetServerStatus(admin_pb2.GetServerStatusRequest(), timeout=30)
    return status.models["llm"].model_version_status[0]


def test_a_dead_engine_is_reported_loading_everywhere_until_it_is_back(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.address) as channel, httpx.Client(base_url=server.rest_url, timeout=30) as http:
        version = admin_version(channel)
        assert version.state == AVAILABLE and version.error_code == "OK"
        pid = int(version.properties["ENGINE_PID"])
        os.kill(pid, signal.SIGKILL)
        tfs = model_service_pb2_grpc.ModelServiceStub(channel)
        seen_down = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            version = admin_version(channel)  # its state and properties come from one reading
            if version.properties["ENGINE_ALIVE"] == "YES" and version.properties["ENGINE_PID"] != str(pid):
                break
            if version.properties["ENGINE_ALIVE"] == "NO":
                assert version.state == LOADING, version
                assert version.error_code == "UNAVAILABLE" and "restarting" in version.error_message
                seen_down.append(version)
                request = get_model_status_pb2.GetModelStatusRequest()
                request.model_spec.name = "llm"
                tfs_state = tfs.GetModelStatus(request, timeout=30).model_version_status[0].state
                config = http.get("/v1/config").json()["llm"]["model_version_status"][0]
                # the engine may have come back in between; never AVAILABLE while the admin said down
                # unless it is alive by now
                if admin_version(channel).properties["ENGINE_ALIVE"] == "NO":
                    assert tfs_state == LOADING and config["state"] == "LOADING", (tfs_state, config)
            time.sleep(0.02)
        assert seen_down, "the engine restarted before any status was read"
        version = admin_version(channel)
        assert version.state == AVAILABLE and version.error_code == "OK"
        assert http.get("/v1/config").json()["llm"]["model_version_status"][0]["state"] == "AVAILABLE"
