"""The Python client (clients/python, ovms_grpc_client) against a live demo server: numbers,
errors with their code and kind, health, and streamed chat, blocking and asyncio."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from ovms_grpc_client import AsyncClient, Client, RequestFailed
from tests.server_process import ServerProcess

DATA = np.arange(10, dtype=np.float32).reshape(1, 10)


@pytest.fixture(scope="module")
def server(server_factory) -> ServerProcess:
    return server_factory("--demo")


@pytest.fixture
def client(server: ServerProcess):
    with Client(server.address) as client:
        yield client


def test_infer_numbers_by_version(client: Client) -> None:
    np.testing.assert_array_equal(client.infer("dummy", {"b": DATA}, version=1)["a"], DATA + 1)
    np.testing.assert_array_equal(client.infer("dummy", {"b": DATA}, version="2")["a"], DATA + 2)
    np.testing.assert_array_equal(client.infer("dummy", {"b": DATA})["a"], DATA + 2)  # the highest version


def test_health_and_metadata(client: Client) -> None:
    assert client.is_serving() and client.is_serving("inference.GRPCInferenceService")
    metadata = client.metadata("dummy")
    assert metadata.versions == ["1", "2"] and metadata.inputs[0].name == "b"


@pytest.mark.parametrize(
    ("model", "inputs", "code", "kind"),
    [
        ("nope", {"b": DATA}, grpc.StatusCode.NOT_FOUND, "MODEL_NAME_MISSING"),
        ("dummy", {"b": DATA[:, :5]}, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_SHAPE"),
        ("dummy", {"b": DATA.astype(np.int32)}, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PRECISION"),
    ],
)
def test_errors_keep_their_code_and_kind(client: Client, model: str, inputs: dict, code, kind: str) -> None:
    with pytest.raises(RequestFailed) as failed:
        client.infer(model, inputs)
    assert failed.value.code == code
    assert failed.value.kind is not None and failed.value.kind.name == kind
    assert failed.value.message.startswith(failed.value.kind.message)


def test_chat_stream_with_usage(client: Client) -> None:
    chunks = list(client.chat("llm", [{"role": "user", "content": "hi"}], max_tokens=8, ignore_eos=True))
    assert chunks[0].choices[0].role == "assistant"
    text = "".join(choice.content for chunk in chunks for choice in chunk.choices)
    assert text
    usage = chunks[-1].usage
    assert usage.completion_tokens == 8 and usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_leaving_a_stream_early_cancels_it(client: Client) -> None:
    stream = client.complete("llm", "Once upon a time", max_tokens=500, ignore_eos=True)
    first = next(iter(stream))
    assert first.choices
    stream.close()  # the generator's finally cancels the call
    # the server is still fine and the client still usable
    np.testing.assert_array_equal(client.infer("dummy", {"b": DATA}, version=1)["a"], DATA + 1)


def test_unknown_model_in_a_chat_is_not_found(client: Client) -> None:
    with pytest.raises(RequestFailed) as failed:
        list(client.chat("nope", [{"role": "user", "content": "hi"}], max_tokens=2))
    assert failed.value.code == grpc.StatusCode.NOT_FOUND


def test_asyncio_client(server: ServerProcess) -> None:
    async def scenario() -> tuple:
        async with AsyncClient(server.address) as client:
            serving = await client.is_serving()
            outputs = await asyncio.gather(*(client.infer("dummy", {"b": DATA}, version=v) for v in (1, 2)))
            chunks = [c async for c in client.chat("llm", [{"role": "user", "content": "hi"}], max_tokens=4,
                                                   ignore_eos=True)]  # fmt: skip
            with pytest.raises(RequestFailed) as failed:
                await client.metadata("nope")
            return serving, outputs, chunks, failed.value

    serving, (one, two), chunks, failure = asyncio.run(scenario())  # its own loop, in the test's thread
    assert serving
    np.testing.assert_array_equal(one["a"], DATA + 1)
    np.testing.assert_array_equal(two["a"], DATA + 2)
    assert chunks[-1].usage.completion_tokens == 4
    assert failure.code == grpc.StatusCode.NOT_FOUND and failure.kind.name == "MODEL_NAME_MISSING"
