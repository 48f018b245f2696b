"""tritonclient registers the `inference.*` protobuf symbols, as our generated KServe stubs do,
so these tests run in their own pytest process and never import `ovms_grpc_client.genproto.inference`."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def _no_generated_kserve_stubs() -> None:
    assert "ovms_grpc_client.genproto.inference.grpc_predict_v2_pb2" not in sys.modules
