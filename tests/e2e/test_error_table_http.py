"""Every error kind of the one table reaches the HTTP client with the table's status, OVMS's body on
/v2 and OpenAI's error type on /v3; a bare gRPC status with the status the table gives it.

The real gateway runs in front of a stand-in gRPC server that fails each call with the kind its
model name says, so no condition has to be provoked for real.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import httpx
import pytest

from ovms_grpc_client.errors import ERROR_KIND_KEY, KINDS, STATUS_KINDS
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as kserve_pb
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as generation_pb
from tests.server_process import REPO, free_port

BARE = "BARE_"  # model names "BARE_<CODE>": fail with that status and no kind


def fail(model: str, context: grpc.ServicerContext) -> None:
    if model.startswith(BARE):
        context.abort(grpc.StatusCode[model.removeprefix(BARE)], "no kind sent")
    kind = KINDS[model]
    context.set_trailing_metadata(((ERROR_KIND_KEY, kind.name),))
    context.abort(grpc.StatusCode[kind.grpc_code], f"{kind.message} - stand-in for {kind.name}")


def infer(request: kserve_pb.ModelInferRequest, context: grpc.ServicerContext) -> kserve_pb.ModelInferResponse:
    fail(request.model_name, context)
    raise AssertionError("unreachable")


def chat(request: generation_pb.ChatRequest, context: grpc.ServicerContext) -> Iterator[generation_pb.ChatResponse]:
    fail(request.model, context)
    yield generation_pb.ChatResponse()


@pytest.fixture(scope="module")
def stand_in() -> Iterator[int]:
    """The stand-in gRPC server's port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {
            "ModelInfer": grpc.unary_unary_rpc_method_handler(
                infer, kserve_pb.ModelInferRequest.FromString, kserve_pb.ModelInferResponse.SerializeToString),
        }),
        grpc.method_handlers_generic_handler("ovms.generation.v1.GenerationService", {
            "Chat": grpc.unary_stream_rpc_method_handler(
                chat, generation_pb.ChatRequest.FromString, generation_pb.ChatResponse.SerializeToString),
        }),
    ))  # fmt: skip
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield grpc_port
    server.stop(0)


def start_gateway(grpc_port: int, *args: str) -> Iterator[str]:
    port = free_port()
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--grpc_target", f"127.0.0.1:{grpc_port}", "--port", str(port),
         "--bind_address", "127.0.0.1", "--log_level", "ERROR", *args],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # the gateway answers at once; /openapi.json needs no upstream
            try:
                if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert gateway.poll() is None and time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.1)
        yield url
    finally:
        gateway.terminate()
        gateway.wait(30)


@pytest.fixture(scope="module")
def gateway_url(stand_in: int) -> Iterator[str]:
    yield from start_gateway(stand_in)


INFER = {"inputs": [{"name": "b", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]}
# Kinds a server sends over gRPC (the REST-only ones are the gateway's own).
SENT = [name for name, kind in KINDS.items() if not name.startswith("REST_")]


@pytest.mark.parametrize("name", SENT)
def test_kind_reaches_rest_and_openai_clients_with_the_tables_status(gateway_url: str, name: str) -> None:
    kind = KINDS[name]
    answer = httpx.post(f"{gateway_url}/v2/models/{name}/infer", json=INFER, timeout=30)
    assert answer.status_code == kind.http_status
    assert answer.json() == {"error": f"{kind.message} - stand-in for {name}"}

    answer = httpx.post(
        f"{gateway_url}/v3/chat/completions",
        json={"model": name, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert answer.status_code == kind.http_status
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == (kind.openai_type, name)
    assert error["message"] == f"{kind.message} - stand-in for {name}"


@pytest.mark.parametrize("code", sorted(STATUS_KINDS))
def test_a_bare_status_gets_the_status_the_table_gives_it(gateway_url: str, code: str) -> None:
    kind = KINDS[STATUS_KINDS[code]]
    answer = httpx.post(f"{gateway_url}/v2/models/{BARE}{code}/infer", json=INFER, timeout=30)
    assert answer.status_code == kind.http_status
    assert answer.json() == {"error": f"{kind.message} - no kind sent"}
    answer = httpx.post(
        f"{gateway_url}/v3/chat/completions",
        json={"model": f"{BARE}{code}", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert answer.status_code == kind.http_status and answer.json()["error"]["type"] == kind.openai_type


def test_rest_only_kinds(gateway_url: str) -> None:
    answer = httpx.get(f"{gateway_url}/no/such/route", timeout=30)
    assert answer.status_code == KINDS["REST_INVALID_URL"].http_status
    assert answer.json()["error"] == "Invalid request URL - /no/such/route"
    answer = httpx.delete(f"{gateway_url}/v2/models/x/infer", timeout=30)
    assert answer.status_code == KINDS["REST_UNSUPPORTED_METHOD"].http_status


LIMIT = 1000
POST_ROUTES = [
    *(f"{prefix}/{route}" for prefix in ("/v3", "/v3/v1") for route in ("chat/completions", "completions",
                                                                        "embeddings", "rerank")),
    "/v1/chat/completions", "/v1/completions", "/v1/embeddings",
    "/v2/models/dummy/infer", "/v2/models/dummy/versions/1/infer", "/v1/models/dummy:predict",
]  # fmt: skip


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_every_post_route_refuses_a_body_over_the_limit_with_413(stand_in: int, chunked: bool) -> None:
    body = b'{"model": "' + b"x" * (2 * LIMIT) + b'"}'
    for url in start_gateway(stand_in, "--max_request_bytes", str(LIMIT)):
        for route in POST_ROUTES:
            content = iter([body[:500], body[500:]]) if chunked else body  # a generator: no Content-Length
            answer = httpx.post(f"{url}{route}", content=content, timeout=30)
            assert answer.status_code == 413, route
            error = answer.json()["error"]
            message = (
                error["message"]
                if route.startswith(("/v3", "/v1/chat", "/v1/completions", "/v1/embeddings"))
                else error
            )
            assert f"the limit is {LIMIT} bytes" in message, (route, error)
