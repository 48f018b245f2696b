"""The NPU engine (LLMPipeline, one request at a time, in a worker thread), driven on CPU here
because no NPU exists on this machine: the device is the only thing that differs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ovms_grpc.genai.engine import Admitted, Delta
from ovms_grpc.genai.serial_engine import SerialEngine
from ovms_grpc.genai.servable import uses_serial_engine
from ovms_grpc.models.config import GenaiOptions
from ovms_grpc_client.errors import InvalidArgument
from tests.component.loop import run


def test_npu_devices_use_the_serial_engine() -> None:
    assert uses_serial_engine("NPU") and uses_serial_engine("NPU.0")
    assert not uses_serial_engine("CPU") and not uses_serial_engine("AUTO:NPU,CPU")


def test_requests_are_served_one_by_one_with_exact_token_counts(llm_dir: Path) -> None:
    async def main() -> None:
        engine = SerialEngine("llm", str(llm_dir), "CPU", GenaiOptions().engine_options())
        await engine.start()
        order: list[str] = []

        async def one(tag: str, max_tokens: int) -> tuple[int, int, str, str]:
            prompt_tokens = tokens = 0
            text = finish = ""
            async for event in engine.generate("completion", f"{tag} once upon a time", {"max_tokens": max_tokens}):
                if isinstance(event, Admitted):
                    order.append(f"{tag} admitted")
                    prompt_tokens = event.prompt_tokens
                else:
                    assert isinstance(event, Delta) and event.choice == 0
                    tokens, text, finish = tokens + event.tokens, text + event.text, event.finish or finish
            order.append(f"{tag} done")
            return prompt_tokens, tokens, text, finish

        spans: list[tuple[str, float, float]] = []  # each generation's run in the worker thread
        generate = engine._generate

        def timed(kind: str, payload: object, *args: object) -> str:
            started = time.monotonic()
            try:
                return generate(kind, payload, *args)  # type: ignore[arg-type]
            finally:
                spans.append((str(payload).split()[0], started, time.monotonic()))

        engine._generate = timed  # type: ignore[method-assign]
        first, second = await asyncio.gather(one("a", 12), one("b", 5))
        assert [tag for tag, _, _ in spans[:2]] == ["a", "b"] and spans[0][2] <= spans[1][1]  # one by one, in order
        assert sorted(order) == ["a admitted", "a done", "b admitted", "b done"]
        assert first[1] == 12 and first[3] == "length" and first[0] > 3 and first[2]
        assert second[1] == 5 and second[3] == "length"
        chat = [e async for e in engine.generate("chat", [{"role": "user", "content": "hi"}], {"max_tokens": 3})]
        assert isinstance(chat[0], Admitted) and sum(e.tokens for e in chat[1:] if isinstance(e, Delta)) == 3
        await engine.stop()

    run(main())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n": 2}, "n greater than 1 is not supported on NPU"),
        ({"best_of": 3}, "best_of (beam search) is not supported on NPU"),
        ({"logprobs": True}, "logprobs are not supported on NPU"),
        ({"echo": True}, "echo is not supported on NPU"),
        ({"json_schema": "{}"}, "response_format and forced tool calls are not supported on NPU"),
    ],
)
def test_npu_limits_are_clear_errors(llm_dir: Path, options: dict, message: str) -> None:
    async def main() -> None:
        engine = SerialEngine("llm", str(llm_dir), "NPU", GenaiOptions().engine_options())
        with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
            async for _ in engine.generate("completion", "x", options):
                pass

    run(main())


def test_a_cancelled_request_stops_and_the_next_one_runs(llm_dir: Path) -> None:
    async def main() -> None:
        engine = SerialEngine("llm", str(llm_dir), "CPU", GenaiOptions().engine_options())
        await engine.start()
        stream = engine.generate("completion", "tell me", {"max_tokens": 500, "ignore_eos": True})
        seen = 0
        async for event in stream:
            seen += isinstance(event, Delta)
            if seen == 3:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        events = [e async for e in engine.generate("completion", "next", {"max_tokens": 4})]
        assert sum(e.tokens for e in events if isinstance(e, Delta)) == 4
        assert engine.running_requests == 0
        await engine.stop()

    run(main())


def test_an_absent_npu_fails_the_load_with_openvinos_reason(llm_dir: Path) -> None:
    async def main() -> None:
        engine = SerialEngine("llm", str(llm_dir), "NPU", GenaiOptions().engine_options())
        with pytest.raises(Exception, match="cannot load LLMPipeline on NPU") as caught:
            await engine.start()
        assert "device NPU is not available here (OpenVINO sees CPU" in str(caught.value) and not engine.alive

    run(main())
