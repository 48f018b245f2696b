"""OVMS's MediaPipe/LLM metric families for a generative model: accepted, rejected, responses,
errors, graphs in process and processing time, by interface and method (Unary or Stream)."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import httpx
from openai import OpenAI

from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as pb
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2_grpc as pb_grpc

HI = [{"role": "user", "content": "hi"}]


def series(text: str, family: str, **labels: str) -> float:
    """The value of the one series of ``family`` with exactly these labels."""
    order = ("api", "interface", "method", "name")
    wanted = ",".join(f'{k}="{labels[k]}"' for k in sorted(labels, key=order.index))
    match = re.search(rf"^{family}\{{{re.escape(wanted)}\}} (\S+)$", text, re.MULTILINE)
    assert match, f"no {family}{{{wanted}}} in\n{text}"
    return float(match.group(1))


def test_generation_requests_feed_the_graph_families(server_factory, llm_dir: Path) -> None:
    server = server_factory(
        "--task", "text_generation", "--model_path", str(llm_dir), "--model_name", "llm", "--metrics_enable",
        rest=True,
    )  # fmt: skip
    before = httpx.get(f"{server.rest_url}/metrics").text
    rest = {"api": "V3", "interface": "REST", "name": "llm"}
    for method in ("Unary", "Stream"):  # created at zero when the model loads
        assert series(before, "ovms_requests_accepted", method=method, **rest) == 0
    assert series(before, "ovms_current_graphs", name="llm") == 0

    client = OpenAI(base_url=f"{server.rest_url}/v3", api_key="unused", max_retries=0)
    client.chat.completions.create(model="llm", messages=HI, max_tokens=3)
    chunks = list(
        client.chat.completions.create(
            model="llm", messages=HI, max_tokens=3, stream=True, stream_options={"include_usage": True}
        )
    )
    bad = httpx.post(f"{server.rest_url}/v3/completions", json={"model": "llm", "prompt": "x", "temperature": 5})
    assert bad.status_code == 400
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.GenerationServiceStub(channel)
        request = pb.CompleteRequest(model="llm", prompt="x", sampling=pb.SamplingParams(max_tokens=2))
        messages = list(stub.Complete(request))

    text = httpx.get(f"{server.rest_url}/metrics").text
    assert series(text, "ovms_requests_accepted", method="Unary", **rest) == 1
    assert series(text, "ovms_responses", method="Unary", **rest) == 1
    assert series(text, "ovms_requests_accepted", method="Stream", **rest) == 1
    # every gRPC message of the stream: the role, one per token (the last carries the finish), usage
    assert series(text, "ovms_responses", method="Stream", **rest) == len(chunks)
    assert series(text, "ovms_requests_rejected", method="Unary", **rest) == 1
    assert series(text, "ovms_requests_success", method="Unary", **rest) == 1
    assert series(text, "ovms_requests_fail", method="Unary", **rest) == 1
    grpc_labels = {"api": "V3", "interface": "gRPC", "name": "llm"}
    assert series(text, "ovms_requests_accepted", method="Stream", **grpc_labels) == 1
    assert series(text, "ovms_responses", method="Stream", **grpc_labels) == len(messages)
    assert series(text, "ovms_graph_error", method="Stream", **grpc_labels) == 0
    assert series(text, "ovms_current_graphs", name="llm") == 0
    assert series(text, "ovms_graph_processing_time_us_count", method="Unary", name="llm") == 1
    assert series(text, "ovms_graph_processing_time_us_count", method="Stream", name="llm") == 2
