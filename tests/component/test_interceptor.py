"""The server interceptor: request id, access log and deadlines, on a real grpc.aio server in this process.

Clients run in worker threads on synchronous channels, never on the server's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import openvino as ov
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ovms_grpc.interceptor import RequestInterceptor
from ovms_grpc.server import ModelServer
from ovms_grpc.services.status import request_id
from ovms_grpc_client.errors import ERROR_KIND_KEY
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2 as pb
from ovms_grpc_client.genproto.inference import grpc_predict_v2_pb2_grpc as pb_grpc
from ovms_grpc_client.metadata import REQUEST_ID_KEY
from tests.component.loop import run
from tests.component.test_server_component import dummy_request, make_server, output_of

ACCESS = "ovms_grpc.access"
#: Made at import: creating an OpenVINO core on the loop can trip the blocked-loop detector.
CORE = ov.Core()


def metadata_value(metadata: Any, key: str) -> str | None:
    return next((value for k, value in metadata or () if k == key), None)


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == ACCESS and r.levelno == logging.DEBUG]


def infer(address: str, request: pb.ModelInferRequest, metadata: tuple = ()) -> tuple[Any, Any, Any]:
    """(response or None, trailing metadata, RpcError or None) of one ModelInfer on a sync channel
    (a unary call's request id comes back with its status)."""
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        try:
            response, call = stub.ModelInfer.with_call(request, metadata=metadata, timeout=30)
        except grpc.RpcError as error:
            return None, error.trailing_metadata(), error  # type: ignore[attr-defined]
        return response, call.trailing_metadata(), None


def stream_infer(address: str, requests: list[pb.ModelInferRequest], metadata: tuple) -> tuple[list, Any]:
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        responses = stub.ModelStreamInfer(iter(requests), metadata=metadata, timeout=30)
        return list(responses), responses.initial_metadata()


def test_request_id_comes_back_given_generated_or_replaced(dummy_repo: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=ACCESS)
    too_long = "x" * 129

    async def scenario() -> None:
        server = make_server(dummy_repo)
        await server.start()
        address = f"127.0.0.1:{server.ports[0]}"
        try:
            given = await asyncio.to_thread(infer, address, dummy_request(1.0, "1"), ((REQUEST_ID_KEY, "abc-123"),))
            absent = await asyncio.to_thread(infer, address, dummy_request(2.0, "1"))
            replaced = await asyncio.to_thread(infer, address, dummy_request(3.0, "1"), ((REQUEST_ID_KEY, too_long),))
            streamed = await asyncio.to_thread(
                stream_infer, address, [dummy_request(4.0, "1"), dummy_request(5.0, "2")], ((REQUEST_ID_KEY, "s-1"),)
            )
        finally:
            await server.stop()

        response, initial, error = given
        assert error is None and metadata_value(initial, REQUEST_ID_KEY) == "abc-123"
        np.testing.assert_array_equal(output_of(response), np.full((1, 10), 2.0))
        for response, initial, error in (absent, replaced):
            assert error is None and response.outputs
            assert re.fullmatch("[0-9a-f]{32}", metadata_value(initial, REQUEST_ID_KEY) or "")
        assert metadata_value(absent[1], REQUEST_ID_KEY) != metadata_value(replaced[1], REQUEST_ID_KEY)
        responses, initial = streamed
        assert metadata_value(initial, REQUEST_ID_KEY) == "s-1"
        assert [output_of(r.infer_response)[0, 0] for r in responses] == [5.0, 7.0]

    run(scenario())
    lines = access_lines(caplog)
    infer_lines = [line for line in lines if line.startswith("/inference.GRPCInferenceService/ModelInfer ")]
    assert len(infer_lines) == 3
    assert re.fullmatch(
        r"/inference\.GRPCInferenceService/ModelInfer request_id=abc-123 status=OK duration_ms=\d+\.\d\d model=dummy",
        infer_lines[0],
    )
    assert any(
        line.startswith("/inference.GRPCInferenceService/ModelStreamInfer request_id=s-1 status=OK ") for line in lines
    )
    assert not any(too_long in line for line in lines)


def test_errors_keep_their_status_and_kind(dummy_repo: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=ACCESS)
    missing = pb.ModelInferRequest(model_name="nope")

    async def scenario() -> tuple[Any, Any, Any]:
        server = make_server(dummy_repo)
        await server.start()
        try:
            return await asyncio.to_thread(infer, f"127.0.0.1:{server.ports[0]}", missing, ((REQUEST_ID_KEY, "e-1"),))
        finally:
            await server.stop()

    response, initial, error = run(scenario())
    assert response is None and error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details().startswith("Model with requested name is not found")
    assert metadata_value(error.trailing_metadata(), ERROR_KIND_KEY) == "MODEL_NAME_MISSING"
    assert metadata_value(initial, REQUEST_ID_KEY) == "e-1"
    assert any(
        re.fullmatch(r"\S+/ModelInfer request_id=e-1 status=NOT_FOUND duration_ms=\S+ model=nope", line)
        for line in access_lines(caplog)
    )


class SlowService:
    """Handlers that never finish on their own; each records that it was cancelled and what it saw."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []
        self.request_ids: list[str] = []

    async def _hold(self, name: str) -> None:
        self.request_ids.append(request_id.get())
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(name)
            raise

    async def unary(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await self._hold("unary")
        return request

    async def unary_stream(self, request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        yield b"first"
        await self._hold("unary_stream")
        yield b"never"

    async def stream_stream(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for request in requests:
            yield request
        await self._hold("stream_stream")

    async def writer(self, request: bytes, context: grpc.aio.ServicerContext) -> None:
        await context.write(b"first")
        await self._hold("writer")

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler("test.Slow", {
            "Unary": grpc.unary_unary_rpc_method_handler(self.unary),
            "UnaryStream": grpc.unary_stream_rpc_method_handler(self.unary_stream),
            "StreamStream": grpc.stream_stream_rpc_method_handler(self.stream_stream),
            "Writer": grpc.unary_stream_rpc_method_handler(self.writer),
        })  # fmt: skip


def call_slow(address: str, method: str, timeout: float) -> tuple[list[bytes], grpc.RpcError]:
    """Call one SlowService method with a deadline: the messages received and the final error."""
    received: list[bytes] = []
    with grpc.insecure_channel(address) as channel:
        if method == "Unary":
            call: Callable[..., Any] = channel.unary_unary(f"/test.Slow/{method}")
            try:
                received.append(call(b"ping", timeout=timeout))
            except grpc.RpcError as error:
                return received, error
        else:
            kind = channel.stream_stream if method == "StreamStream" else channel.unary_stream
            argument: Any = iter([b"ping"]) if method == "StreamStream" else b"ping"
            try:
                for message in kind(f"/test.Slow/{method}")(argument, timeout=timeout):
                    received.append(message)
            except grpc.RpcError as error:
                return received, error
    raise AssertionError(f"{method} finished without an error: {received}")


METHODS = {"Unary": [], "UnaryStream": [b"first"], "StreamStream": [b"ping"], "Writer": [b"first"]}


async def slow_server(service: SlowService, margin: float) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(interceptors=[RequestInterceptor(deadline_margin=margin)])
    server.add_generic_rpc_handlers((service.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


def test_deadline_ends_every_kind_of_handler_with_its_status(caplog: pytest.LogCaptureFixture) -> None:
    """The interceptor stops the handler before the client's own timer fires: the client reads the
    server's status, message and kind, and each handler was cancelled."""
    caplog.set_level(logging.DEBUG)
    service = SlowService()

    async def scenario() -> list[tuple[list[bytes], grpc.RpcError]]:
        # a 2 s deadline: the handler is stopped 0.2 s before it, far more than this loop's jitter
        server, address = await slow_server(service, margin=1.0)
        try:
            return await asyncio.gather(*(asyncio.to_thread(call_slow, address, m, 2.0) for m in METHODS))
        finally:
            await server.stop(0)

    results = run(scenario())
    for (method, expected), (received, error) in zip(METHODS.items(), results, strict=True):
        assert received == expected, method
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, method
        assert error.details().startswith(f"Deadline exceeded - /test.Slow/{method} stopped after "), error.details()
        assert metadata_value(error.trailing_metadata(), ERROR_KIND_KEY) == "DEADLINE_EXCEEDED", method
        # a unary call's id comes back with the status, a stream's before its first message
        metadata = error.trailing_metadata() if method == "Unary" else error.initial_metadata()
        assert re.fullmatch("[0-9a-f]{32}", metadata_value(metadata, REQUEST_ID_KEY) or ""), method
    assert sorted(service.cancelled) == ["stream_stream", "unary", "unary_stream", "writer"]
    assert all(re.fullmatch("[0-9a-f]{32}", rid) for rid in service.request_ids)
    for method in METHODS:
        assert any(line.startswith(f"/test.Slow/{method} ") and "status=DEADLINE_EXCEEDED" in line
                   for line in access_lines(caplog)), method  # fmt: skip
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_deadline_reached_by_grpc_first_is_still_deadline_exceeded(caplog: pytest.LogCaptureFixture) -> None:
    """Without a margin, gRPC's own deadline and the interceptor's race: either way the client sees
    DEADLINE_EXCEEDED, the handler is cancelled, and the server logs no error or traceback."""
    caplog.set_level(logging.DEBUG)
    service = SlowService()

    async def scenario() -> list[tuple[list[bytes], grpc.RpcError]]:
        server, address = await slow_server(service, margin=0.0)
        try:
            results = await asyncio.gather(*(asyncio.to_thread(call_slow, address, m, 0.3) for m in METHODS))
            give_up = asyncio.get_running_loop().time() + 10
            while len(service.cancelled) < len(METHODS) and asyncio.get_running_loop().time() < give_up:
                await asyncio.sleep(0.01)  # the server side may end just after the client
            return results
        finally:
            await server.stop(0)

    results = run(scenario())
    assert [error.code() for _, error in results] == [grpc.StatusCode.DEADLINE_EXCEEDED] * len(METHODS)
    assert sorted(service.cancelled) == ["stream_stream", "unary", "unary_stream", "writer"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_health_answers_through_the_interceptor(dummy_repo: Path) -> None:
    async def scenario() -> tuple[int, Any]:
        server = make_server(dummy_repo)
        await server.start()

        def check() -> tuple[int, Any]:
            with grpc.insecure_channel(f"127.0.0.1:{server.ports[0]}") as channel:
                answer, call = health_pb2_grpc.HealthStub(channel).Check.with_call(
                    health_pb2.HealthCheckRequest(), timeout=30
                )
                return answer.status, call.trailing_metadata()

        try:
            return await asyncio.to_thread(check)
        finally:
            await server.stop()

    status, initial = run(scenario())
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert metadata_value(initial, REQUEST_ID_KEY)


def test_max_concurrent_rpcs_refuses_calls_past_the_limit(dummy_repo: Path) -> None:
    async def scenario() -> tuple[Any, Any]:
        server = ModelServer(replace(make_server(dummy_repo).config, max_concurrent_rpcs=1), core=CORE)
        await server.start()
        address = f"127.0.0.1:{server.ports[0]}"

        def watch_then_infer() -> Any:
            with grpc.insecure_channel(address) as channel:
                watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=30)
                assert next(watch).status == health_pb2.HealthCheckResponse.SERVING  # it holds the one slot now
                refused = infer(address, dummy_request(1.0, "1"))[2]
                watch.cancel()
            return refused

        try:
            refused = await asyncio.to_thread(watch_then_infer)
            # the slot is free again once the watch ended
            give_up = asyncio.get_running_loop().time() + 10
            while asyncio.get_running_loop().time() < give_up:
                response, _, error = await asyncio.to_thread(infer, address, dummy_request(2.0, "1"))
                if error is None:
                    return refused, response
                await asyncio.sleep(0.05)
            raise AssertionError(f"still refused: {error}")
        finally:
            await server.stop()

    refused, response = run(scenario())
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Concurrent RPC limit exceeded" in refused.details()
    np.testing.assert_array_equal(output_of(response), np.full((1, 10), 3.0))
