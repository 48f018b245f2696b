"""Log probabilities and echo through the gateway: chat and completions, unary and streaming,
scored like in-process openvino_genai (the reference lm-evaluation-harness loglikelihood needs).

With prefix caching on (the default) the server scores echoed prompts with a forward pass of the
model's IR, because openvino_genai's echo has no logprobs for a cached prefix; with it off, the
scores come from openvino_genai's echo. Both must agree with an in-process run.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from openai import BadRequestError, OpenAI

from tests import genai_reference
from tests.server_process import ServerProcess

PROMPT = "the quick brown fox jumps over the lazy dog. " * 3


@pytest.fixture(scope="module", params=["prefix-caching", "no-prefix-caching"])
def server(request: pytest.FixtureRequest, server_factory, llm_dir: Path) -> ServerProcess:
    caching = "true" if request.param == "prefix-caching" else "false"
    return server_factory(
        "--task", "text_generation", "--model_path", str(llm_dir), "--model_name", "llm",
        "--enable_prefix_caching", caching, rest=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> OpenAI:
    return OpenAI(base_url=f"{server.rest_url}/v3", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def reference(llm_dir: Path):
    """Prompt-token logprobs from openvino_genai in this process (echo, no prefix caching)."""
    pipe = genai_reference.pipeline(llm_dir)
    return lambda prompt: genai_reference.prompt_logprobs(pipe, prompt)


def test_echo_with_max_tokens_0_scores_the_prompt_like_genai(client: OpenAI, reference) -> None:
    expected = reference(PROMPT)
    for _ in range(2):  # the second time the prompt is in the prefix cache (when it is on)
        answer = client.completions.create(model="llm", prompt=PROMPT, max_tokens=0, echo=True, logprobs=1)
        (choice,) = answer.choices
        assert choice.text == PROMPT and choice.finish_reason == "length"
        logprobs = choice.logprobs
        assert logprobs.token_logprobs[0] is None and logprobs.top_logprobs[0] is None
        assert len(logprobs.tokens) == answer.usage.prompt_tokens == len(expected) + 1
        assert logprobs.token_logprobs[1:] == pytest.approx(expected, rel=genai_reference.SCORE_TOLERANCE, abs=1e-3)
        assert "".join(logprobs.tokens) == PROMPT
        assert logprobs.text_offset == [sum(len(t) for t in logprobs.tokens[:i]) for i in range(len(logprobs.tokens))]
        assert answer.usage.completion_tokens == 0


def test_echo_then_generated_tokens_unary_and_streamed(client: OpenAI, reference) -> None:
    expected = reference(PROMPT)
    unary = client.completions.create(model="llm", prompt=PROMPT, max_tokens=4, echo=True, logprobs=1, temperature=0)
    (choice,) = unary.choices
    assert choice.text.startswith(PROMPT) and len(choice.text) > len(PROMPT)
    assert len(choice.logprobs.tokens) == unary.usage.prompt_tokens + 4 and unary.usage.completion_tokens == 4
    assert choice.logprobs.token_logprobs[1 : len(expected) + 1] == pytest.approx(
        expected, rel=genai_reference.SCORE_TOLERANCE, abs=1e-3
    )
    generated = choice.logprobs.token_logprobs[-4:]
    assert all(lp is not None and lp <= 0 for lp in generated)
    assert "".join(choice.logprobs.tokens[-4:]) == choice.text[len(PROMPT) :]

    chunks = list(
        client.completions.create(
            model="llm", prompt=PROMPT, max_tokens=4, echo=True, logprobs=1, temperature=0, stream=True
        )
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    tokens = [t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.tokens]
    offsets = [o for c in chunks if c.choices and c.choices[0].logprobs for o in c.choices[0].logprobs.text_offset]
    assert text == choice.text and tokens == choice.logprobs.tokens
    assert offsets == choice.logprobs.text_offset


def test_chat_logprobs_match_the_generated_tokens(client: OpenAI) -> None:
    messages = [{"role": "user", "content": "hi"}]
    answer = client.chat.completions.create(
        model="llm", messages=messages, max_tokens=5, logprobs=True, top_logprobs=1, temperature=0
    )
    (choice,) = answer.choices
    content = choice.logprobs.content
    assert len(content) == answer.usage.completion_tokens == 5
    assert "".join(item.token for item in content) == choice.message.content
    for item in content:
        assert item.logprob <= 0 and bytes(item.bytes).decode() == item.token
        assert [(top.token, top.logprob) for top in item.top_logprobs] == [(item.token, item.logprob)]
    streamed = [
        item
        for chunk in client.chat.completions.create(
            model="llm", messages=messages, max_tokens=5, logprobs=True, temperature=0, stream=True
        )
        if chunk.choices and chunk.choices[0].logprobs
        for item in chunk.choices[0].logprobs.content
    ]
    assert [(i.token, i.logprob) for i in streamed] == [(i.token, i.logprob) for i in content]
    plain = client.chat.completions.create(model="llm", messages=messages, max_tokens=2)
    assert plain.choices[0].logprobs is None


@pytest.mark.parametrize(
    ("route", "body", "message"),
    [
        ("completions", {"prompt": "a", "logprobs": 3}, "logprobs accepts 0 or 1"),
        ("completions", {"prompt": "a", "max_tokens": 0}, "max_tokens must be greater than 0"),
        ("chat/completions", {"messages": [{"role": "user", "content": "a"}], "logprobs": 1}, "must be a boolean"),
        (
            "chat/completions",
            {"messages": [{"role": "user", "content": "a"}], "logprobs": True, "top_logprobs": 2},
            "top_logprobs accepts 0 or 1, got 2",
        ),
    ],
)
def test_bad_logprob_requests(server: ServerProcess, route: str, body: dict, message: str) -> None:
    answer = httpx.post(f"{server.rest_url}/v3/{route}", json={"model": "llm", **body}, timeout=30)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]["message"]


def test_a_prompt_longer_than_the_context_names_both_lengths(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as caught:
        client.completions.create(model="llm", prompt="word " * 2100, max_tokens=1)
    text = str(caught.value)
    assert "the model's context is 2048 tokens" in text and re.search(r"the prompt has \d{4} tokens", text)
    assert client.completions.create(model="llm", prompt="still serving", max_tokens=1).choices


def test_a_prompt_longer_than_max_prompt_len_names_both_lengths(server_factory, llm_dir: Path) -> None:
    server = server_factory(
        "--task", "text_generation", "--model_path", str(llm_dir), "--model_name", "llm", "--max_prompt_len", "8",
        rest=True,
    )  # fmt: skip
    answer = httpx.post(
        f"{server.rest_url}/v3/completions", json={"model": "llm", "prompt": "one two three four five six seven " * 3}
    )
    assert answer.status_code == 400
    assert "more than max_prompt_len (8 tokens)" in answer.json()["error"]["message"]
    assert "the prompt has " in answer.json()["error"]["message"]
    ok = httpx.post(f"{server.rest_url}/v3/completions", json={"model": "llm", "prompt": "one", "max_tokens": 2})
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] == 2
