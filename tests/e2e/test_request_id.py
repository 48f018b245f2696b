"""x-request-id round-trips over REST: the gateway answers with it and forwards it to the server,
whose access log (``--log_level DEBUG``) names it for the RPC the route called."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from tests.server_process import ServerProcess

INFER = "/inference.GRPCInferenceService/ModelInfer"
CHAT = "/ovms.generation.v1.GenerationService/Chat"
INFER_BODY = {"inputs": [{"name": "b", "shape": [1, 10], "datatype": "FP32", "data": list(range(10))}]}
CHAT_BODY = {"model": "llm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.fixture(scope="module")
def server(server_factory) -> ServerProcess:
    return server_factory("--demo", "--log_level", "DEBUG", rest=True)


@pytest.fixture()
def http(server: ServerProcess):
    with httpx.Client(base_url=server.rest_url, timeout=60) as client:
        yield client


def fresh_id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def access_status(server: ServerProcess, method: str, rid: str, timeout: float = 15.0) -> str:
    """The status in the server's access line for ``method`` with ``rid`` (written when the RPC ends)."""
    pattern = re.compile(rf"{re.escape(method)} request_id={re.escape(rid)} status=(\w+)")
    deadline = time.monotonic() + timeout
    while True:
        found = pattern.search(server.log)
        if found:
            return found.group(1)
        if time.monotonic() > deadline:
            raise AssertionError(f"no access line for {method} request_id={rid}; log ends:\n{server.log[-4000:]}")
        time.sleep(0.05)


def test_given_id_comes_back_and_reaches_the_server_on_infer(server: ServerProcess, http: httpx.Client) -> None:
    rid = fresh_id("infer")
    answer = http.post("/v2/models/dummy/versions/1/infer", json=INFER_BODY, headers={"x-request-id": rid})
    assert answer.status_code == 200, answer.text
    assert answer.headers.get_list("x-request-id") == [rid]
    assert access_status(server, INFER, rid) == "OK"


def test_given_id_comes_back_on_an_error(server: ServerProcess, http: httpx.Client) -> None:
    rid = fresh_id("missing")
    answer = http.post("/v2/models/nothing/versions/1/infer", json=INFER_BODY, headers={"x-request-id": rid})
    assert answer.status_code == 404
    assert answer.headers["x-request-id"] == rid
    assert access_status(server, INFER, rid) == "NOT_FOUND"


def test_answers_the_gateway_makes_itself_carry_the_id(http: httpx.Client) -> None:
    unknown_route = http.get("/v2/no/such/route", headers={"x-request-id": "route-1"})
    assert unknown_route.status_code in (400, 404) and unknown_route.headers["x-request-id"] == "route-1"
    bad_json = http.post("/v2/models/dummy/infer", content=b"{", headers={"x-request-id": "json-1"})
    assert bad_json.status_code == 400 and bad_json.headers["x-request-id"] == "json-1"
    preflight = http.options("/v2/models/dummy/infer", headers={"x-request-id": "cors-1", "Origin": "http://a"})
    assert preflight.status_code == 200 and preflight.headers["x-request-id"] == "cors-1"


def test_chat_unary_forwards_the_id(server: ServerProcess, http: httpx.Client) -> None:
    rid = fresh_id("chat")
    answer = http.post("/v3/chat/completions", json=CHAT_BODY, headers={"x-request-id": rid})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-request-id"] == rid
    assert access_status(server, CHAT, rid) == "OK"


def test_chat_stream_forwards_the_id(server: ServerProcess, http: httpx.Client) -> None:
    rid = fresh_id("stream")
    body = {**CHAT_BODY, "stream": True}
    with http.stream("POST", "/v3/chat/completions", json=body, headers={"x-request-id": rid}) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert answer.headers["x-request-id"] == rid
        events = [line for line in answer.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert access_status(server, CHAT, rid) == "OK"


def test_without_an_id_one_is_generated_and_forwarded(server: ServerProcess, http: httpx.Client) -> None:
    answer = http.post("/v2/models/dummy/versions/1/infer", json=INFER_BODY)
    assert answer.status_code == 200
    rid = answer.headers["x-request-id"]
    assert re.fullmatch("[0-9a-f]{32}", rid)
    assert access_status(server, INFER, rid) == "OK"  # the server logs the gateway's id, not one of its own
    assert http.get("/v2/health/live").headers["x-request-id"] != rid


@pytest.mark.parametrize("rejected", ["x" * 129, "tab\tinside"], ids=["too-long", "non-printable"])
def test_an_invalid_id_is_replaced(server: ServerProcess, http: httpx.Client, rejected: str) -> None:
    answer = http.post("/v2/models/dummy/versions/1/infer", json=INFER_BODY, headers={"x-request-id": rejected})
    assert answer.status_code == 200
    rid = answer.headers["x-request-id"]
    assert rid != rejected and re.fullmatch("[0-9a-f]{32}", rid)
    assert access_status(server, INFER, rid) == "OK"


def test_longest_accepted_id_is_kept(server: ServerProcess, http: httpx.Client) -> None:
    rid = "k" * 120 + uuid.uuid4().hex[:8]
    answer = http.post("/v2/models/dummy/versions/1/infer", json=INFER_BODY, headers={"x-request-id": rid})
    assert answer.headers["x-request-id"] == rid
    assert access_status(server, INFER, rid) == "OK"
