"""The OpenAI SDK against the gateway's /v3 routes, on the tiny random LLM."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import pytest
from openai import BadRequestError, NotFoundError, OpenAI

from ovms_grpc_client.genproto.ovms.admin.v1 import admin_pb2, admin_pb2_grpc
from tests.server_process import ServerProcess

HI = [{"role": "user", "content": "hi there"}]


@pytest.fixture(scope="module")
def server(server_factory, llm_dir: Path) -> ServerProcess:
    return server_factory("--task", "text_generation", "--model_path", str(llm_dir), "--model_name", "llm", rest=True)


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=f"{server.rest_url}/v3", api_key="unused", max_retries=0)


def running_requests(server: ServerProcess) -> int:
    with grpc.insecure_channel(server.address) as channel:
        status = admin_pb2_grpc.AdminServiceStub(channel).GetServerStatus(admin_pb2.GetServerStatusRequest())
    return int(status.models["llm"].model_version_status[0].properties["RUNNING_REQUESTS"])


def test_chat_unary_has_openai_shape_and_exact_usage(client: OpenAI) -> None:
    answer = client.chat.completions.create(model="llm", messages=HI, max_tokens=7)
    assert answer.object == "chat.completion" and answer.id.startswith("chatcmpl-")
    assert answer.created > 0 and answer.system_fingerprint and answer.model == "llm"
    (choice,) = answer.choices
    assert choice.finish_reason == "length" and choice.message.role == "assistant"
    assert choice.message.refusal is None and choice.message.content
    assert answer.usage.completion_tokens == 7
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 7 and answer.usage.prompt_tokens > 5


def test_chat_stream_matches_unary_and_reports_usage(client: OpenAI) -> None:
    unary = client.chat.completions.create(model="llm", messages=HI, max_tokens=9).choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            model="llm", messages=HI, max_tokens=9, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == unary
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 9
    assert all(c.usage is None for c in chunks[:-1])


def test_completions_unary_and_stream(client: OpenAI) -> None:
    answer = client.completions.create(model="llm", prompt="hello world", max_tokens=5)
    assert answer.object == "text_completion" and answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 5 and answer.usage.prompt_tokens > 0
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(model="llm", prompt="hello world", max_tokens=5, stream=True)
    )
    assert streamed == answer.choices[0].text


def test_stop_n_seed_and_template_kwargs(client: OpenAI) -> None:
    text = client.completions.create(model="llm", prompt="abc", max_tokens=20).choices[0].text
    word = text.split()[1]
    stopped = client.completions.create(model="llm", prompt="abc", max_tokens=20, stop=[word])
    assert stopped.choices[0].finish_reason == "stop" and word not in stopped.choices[0].text
    several = client.chat.completions.create(model="llm", messages=HI, max_tokens=4, n=2, temperature=1.5, seed=3)
    assert [c.index for c in several.choices] == [0, 1] and several.usage.completion_tokens == 8
    again = client.chat.completions.create(model="llm", messages=HI, max_tokens=4, n=2, temperature=1.5, seed=3)
    assert [c.message.content for c in again.choices] == [c.message.content for c in several.choices]
    kwargs = client.chat.completions.create(
        model="llm", messages=HI, max_tokens=3, extra_body={"chat_template_kwargs": {"enable_thinking": False}}
    )
    assert kwargs.choices[0].message.content


def test_models(client: OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == ["llm"]
    assert client.models.retrieve("llm").owned_by == "OVMS"
    with pytest.raises(NotFoundError):
        client.models.retrieve("nope")


def test_errors_have_openai_bodies(client: OpenAI, server: ServerProcess) -> None:
    with pytest.raises(BadRequestError) as info:
        client.chat.completions.create(model="llm", messages=HI, temperature=5)
    assert "temperature out of range(0.0, 2.0)" in info.value.body["message"]
    assert info.value.body["type"] == "invalid_request_error"
    with pytest.raises(NotFoundError):
        client.chat.completions.create(model="nope", messages=HI)
    answer = httpx.post(f"{server.rest_url}/v3/chat/completions", json={"model": "llm", "messages": HI,
                        "stream_options": {"include_usage": True}}, timeout=10)  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == "stream_options provided, but stream not set to true"
    answer = httpx.post(f"{server.rest_url}/v3/completions", content=b"{nope", timeout=10)
    assert answer.status_code == 400 and "Cannot parse JSON body" in answer.json()["error"]["message"]
    answer = httpx.post(f"{server.rest_url}/v3/completions", json={"model": "llm"}, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "prompt"


def test_aliases(server: ServerProcess) -> None:
    for path in ("/v3/v1/chat/completions", "/v1/chat/completions"):
        answer = httpx.post(
            f"{server.rest_url}{path}", json={"model": "llm", "messages": HI, "max_tokens": 2}, timeout=10
        )
        assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] == 2


def test_client_disconnect_frees_the_slot(client: OpenAI, server: ServerProcess) -> None:
    stream = client.completions.create(
        model="llm", prompt="long", max_tokens=2000, stream=True, extra_body={"ignore_eos": True}
    )
    for _, _chunk in zip(range(3), stream, strict=False):
        pass
    assert running_requests(server) == 1
    stream.close()
    deadline = time.monotonic() + 30
    while running_requests(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running_requests(server) == 0


def test_too_many_waiting_generations_are_429(server_factory, llm_dir: Path) -> None:
    server = server_factory(
        "--task", "text_generation", "--model_path", str(llm_dir), "--model_name", "llm",
        "--max_queued_requests", "2", rest=True,
    )  # fmt: skip
    body = {"model": "llm", "prompt": "go on", "max_tokens": 1500, "ignore_eos": True, "n": 4}

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{server.rest_url}/v3/completions", json=body, timeout=120)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    codes = sorted(a.status_code for a in answers)
    assert set(codes) == {200, 429} and codes.count(200) >= 2, codes
    for answer in answers:
        if answer.status_code == 429:
            assert "requests are already generating or waiting" in answer.json()["error"]["message"]
        else:
            assert all(c["finish_reason"] == "length" for c in answer.json()["choices"])
    answer = httpx.post(f"{server.rest_url}/v3/completions", json={"model": "llm", "prompt": "x", "max_tokens": 2})
    assert answer.status_code == 200


def test_completions_with_several_prompts_number_choices_like_openai(client: OpenAI) -> None:
    prompts = ["one two", "three four five", "six"]
    alone = [client.completions.create(model="llm", prompt=p, max_tokens=5, echo=True) for p in prompts]
    together = client.completions.create(model="llm", prompt=prompts, max_tokens=5, echo=True)
    assert [c.index for c in together.choices] == [0, 1, 2]
    assert [c.text for c in together.choices] == [a.choices[0].text for a in alone]
    assert together.usage.prompt_tokens == sum(a.usage.prompt_tokens for a in alone)
    assert together.usage.completion_tokens == 15
    sampled = client.completions.create(model="llm", prompt=prompts, max_tokens=5, n=2, seed=1)
    assert [c.index for c in sampled.choices] == list(range(6)) and sampled.usage.completion_tokens == 30
    chunks = list(
        client.completions.create(
            model="llm", prompt=prompts, max_tokens=5, stream=True, stream_options={"include_usage": True}
        )
    )
    assert len({c.id for c in chunks}) == 1
    texts = {i: "".join(c.choices[0].text for c in chunks if c.choices and c.choices[0].index == i) for i in range(3)}
    assert [texts[i] for i in range(3)] == [a.choices[0].text[len(p) :] for a, p in zip(alone, prompts, strict=True)]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 15
    with pytest.raises(BadRequestError, match="prompt must be a string, an array of strings, an array of token ids"):
        client.completions.create(model="llm", prompt=[], max_tokens=5)


@pytest.mark.parametrize("field", ["n", "best_of"])
def test_n_and_best_of_below_1_are_400(client: OpenAI, field: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        client.completions.create(model="llm", prompt="hi", max_tokens=2, **{field: 0})
    assert caught.value.body["param"] == field
    assert f"{field} must be an integer of at least 1, got 0" in caught.value.body["message"]


def test_max_tokens_beyond_the_context_is_400_naming_both_numbers(client: OpenAI) -> None:
    prompt = client.completions.create(model="llm", prompt="word " * 40, max_tokens=1).usage.prompt_tokens
    for create in (
        lambda: client.completions.create(model="llm", prompt="word " * 40, max_tokens=2048),
        lambda: client.chat.completions.create(
            model="llm", messages=[{"role": "user", "content": "word " * 40}], max_completion_tokens=4000
        ),
    ):
        with pytest.raises(BadRequestError) as caught:
            create()
        message = caught.value.body["message"]
        assert "This model's maximum context length is 2048 tokens. However, you requested" in message
        found = re.search(r"you requested (\d+) tokens \((\d+) in the prompt, (2048|4000) in the completion\)", message)
        assert found and int(found[1]) == int(found[2]) + int(found[3]), message
    # a max_tokens that fits is served, and without one generation ends at the context
    fits = client.completions.create(model="llm", prompt="word " * 40, max_tokens=2048 - prompt)
    assert fits.choices[0].finish_reason in ("length", "stop")


def test_completions_take_token_id_prompts(client: OpenAI, llm_dir: Path) -> None:
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(str(llm_dir))("Once upon a time", add_special_tokens=False)["input_ids"]
    by_text = client.completions.create(model="llm", prompt="Once upon a time", max_tokens=6, temperature=0)
    by_ids = client.completions.create(model="llm", prompt=ids, max_tokens=6, temperature=0)
    assert by_ids.usage.prompt_tokens == len(ids) == by_text.usage.prompt_tokens
    assert by_ids.choices[0].text == by_text.choices[0].text
    both = client.completions.create(model="llm", prompt=[ids, ids[:2]], max_tokens=3, echo=True)
    assert [c.index for c in both.choices] == [0, 1] and both.choices[0].text.startswith("Once upon a time")
    assert both.usage.prompt_tokens == len(ids) + 2


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ([], "prompt must be a string, an array of strings, an array of token ids"),
        ([1, "a"], "prompt must be a string, an array of strings, an array of token ids"),
        ([[1, 2], "a"], "prompt must be a string"),
        ([-1], "token ids between 0 and 2^31-1"),
        ([10_000_000], "prompt[0] is token id 10000000, outside the vocabulary"),
    ],
)
def test_bad_token_id_prompts_are_400(client: OpenAI, prompt: list, message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        client.completions.create(model="llm", prompt=prompt, max_tokens=2)
    assert message in caught.value.body["message"]
