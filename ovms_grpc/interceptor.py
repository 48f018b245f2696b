"""The one server interceptor: request identity, one access-log line per RPC, and deadlines.

Every RPC, whatever its service, gets:

- an ``x-request-id``: the client's (at most 128 printable ASCII characters) or a new uuid4 hex,
  sent back in the response metadata: with the status (trailing metadata) for unary calls, where a
  separate initial-metadata message would cost about 0.2 ms of server CPU per tiny call, and in the
  initial metadata before the first message for streams. `services.status.abort` puts it in again,
  as an abort replaces the trailing metadata. Handler code reads it from the `request_id` contextvar.
- one DEBUG line on the ``ovms_grpc.access`` logger: method, request id, status, duration and, for a
  unary request naming one, the model. Never prompts or tensors.
- its client's deadline enforced: the handler runs under ``asyncio.timeout`` (each step of a
  streaming handler), so it is cancelled and frees what it held (an infer request goes back to its
  pool, a generation is aborted), and the RPC ends with DEADLINE_EXCEEDED and the kind in trailing
  metadata. The timeout fires a little before the deadline itself (`DEADLINE_MARGIN_SECONDS`, at
  most a tenth of the time the call had), so that this status, not the client's own timer, is what
  the client reads. When gRPC cancels the handler first, the line says DEADLINE_EXCEEDED as well.
- bytes that do not parse as its request message answered INVALID_ARGUMENT (kind
  INVALID_MESSAGE_STRUCTURE) naming the message type, with one short WARNING line per method at
  most every `UNDECODABLE_LOG_SECONDS` (how many came meanwhile), never a traceback. gRPC itself
  would answer UNKNOWN and log a traceback per message.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from ovms_grpc.services.status import abort, request_id
from ovms_grpc_client.errors import DeadlineExceeded, InvalidArgument, last_line
from ovms_grpc_client.metadata import REQUEST_ID_KEY, request_id_or_new

access_log = logging.getLogger("ovms_grpc.access")
log = logging.getLogger(__name__)

#: Undecodable messages are logged at most once per method in this many seconds.
UNDECODABLE_LOG_SECONDS = 10.0

#: At most this long before the client's deadline, the handler is stopped and the status sent.
DEADLINE_MARGIN_SECONDS = 0.01


_MODEL_FIELDS = ("model_name", "name", "model")
#: Per request message type: how to read the model it names (None: it names none).
_model_readers: dict[type, Callable[[Any], str] | None] = {}


def choose_request_id(metadata: Any) -> str:
    """The client's ``x-request-id`` if it is short printable ASCII, else a new one."""
    given = next((value for key, value in metadata or () if key == REQUEST_ID_KEY), None)
    return request_id_or_new(given if isinstance(given, str) else None)


def _field_text(message: Any, name: str) -> str:
    value = getattr(message, name)
    return value if isinstance(value, str) else ""  # a repeated field names no single model


def _model_reader(message_type: type) -> Callable[[Any], str] | None:
    fields = getattr(getattr(message_type, "DESCRIPTOR", None), "fields_by_name", {})
    for name in _MODEL_FIELDS:
        field = fields.get(name)
        if field is not None and field.type == field.TYPE_STRING:
            return functools.partial(_field_text, name=name)
    if "model_spec" in fields:  # TensorFlow Serving
        return lambda message: message.model_spec.name
    return None


def model_of(message: Any) -> str:
    """The model a request message names (``model_name``, ``name``, ``model``, TFS ``model_spec.name``)."""
    message_type = type(message)
    if message_type not in _model_readers:
        _model_readers[message_type] = _model_reader(message_type)
    reader = _model_readers[message_type]
    return reader(message) if reader is not None else ""


class Undecodable:
    """What the request deserializer gives for bytes that are not a valid message of its type."""

    __slots__ = ("error",)

    def __init__(self, error: InvalidArgument) -> None:
        self.error = error


class _UndecodableLog:
    """One WARNING line per method at most every UNDECODABLE_LOG_SECONDS, counting the others."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def note(self, method: str, error: InvalidArgument) -> None:
        now = time.monotonic()
        if now - self._last.get(method, -UNDECODABLE_LOG_SECONDS) < UNDECODABLE_LOG_SECONDS:
            self._quiet[method] = self._quiet.get(method, 0) + 1
            return
        quiet = self._quiet.pop(method, 0)
        self._last[method] = now
        more = f" ({quiet} more since the last line)" if quiet else ""
        log.warning("%s: undecodable request: %s%s", method, error.details, more)


def _tolerant(deserializer: Callable[[bytes], Any] | None, type_name: str) -> Callable[[bytes], Any] | None:
    """``deserializer``, answering `Undecodable` instead of raising for bytes that do not parse."""
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:
            reason = last_line(exc) if type_name in str(exc) else f"{type(exc).__name__}: {last_line(exc)}"
            error = InvalidArgument(f"the request is not a valid {type_name} ({len(data)} bytes): {reason}",
                                    kind_name="INVALID_MESSAGE_STRUCTURE")  # fmt: skip
            return Undecodable(error)

    return deserialize


def _type_name(deserializer: Callable[[bytes], Any] | None) -> str:
    """The full protobuf name of what ``deserializer`` parses (``Message.FromString``)."""
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    return getattr(descriptor, "full_name", "") or "request message"


class _Call:
    """One RPC as the interceptor sees it: identity, deadline, and the facts of its access line."""

    __slots__ = ("method", "context", "id", "started", "deadline", "timeout", "model")

    def __init__(self, method: str, context: grpc.aio.ServicerContext, margin: float) -> None:
        self.method = method
        self.context = context
        self.id = choose_request_id(context.invocation_metadata())
        request_id.set(self.id)
        self.started = time.perf_counter()
        self.model = ""
        remaining = context.time_remaining()
        self.deadline: float | None = None
        if remaining is not None:
            self.deadline = asyncio.get_running_loop().time() + remaining - min(margin, remaining / 10)
        self.timeout: asyncio.Timeout | None = None

    def step(self) -> asyncio.Timeout | None:
        """A timeout for the next await of the handler (None without a deadline)."""
        if self.deadline is None:
            return None
        self.timeout = asyncio.timeout_at(self.deadline)
        return self.timeout

    async def start(self, unary: bool) -> None:
        if unary:  # goes out with the status; an abort adds it again
            self.context.set_trailing_metadata(((REQUEST_ID_KEY, self.id),))
        else:
            await self.context.send_initial_metadata(((REQUEST_ID_KEY, self.id),))

    async def deadline_passed(self) -> None:
        """End the RPC with DEADLINE_EXCEEDED (raises the AbortError gRPC expects)."""
        if self.context.done():  # the handler's own status went out as the timeout fired: keep it
            raise asyncio.CancelledError
        remaining = self.context.time_remaining()
        waited = time.perf_counter() - self.started
        error = DeadlineExceeded(
            f"{self.method} stopped after {waited:.3f} s, {remaining or 0:.3f} s before the client's deadline"
        )
        await abort(self.context, error)

    def expired(self) -> bool:
        return self.timeout is not None and self.timeout.expired()

    def status(self, exc: BaseException | None) -> str:
        code = self.context.code()
        if isinstance(code, grpc.StatusCode):
            return code.name
        if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):  # gRPC stopped the handler
            return "DEADLINE_EXCEEDED" if self.context.time_remaining() == 0 else "CANCELLED"
        if exc is not None and not isinstance(exc, grpc.aio.AbortError):
            return "UNKNOWN"  # gRPC answers an exception that escaped the handler with UNKNOWN
        return "OK"

    def log(self, exc: BaseException | None) -> None:
        if not access_log.isEnabledFor(logging.DEBUG):
            return
        duration = (time.perf_counter() - self.started) * 1000
        model = f" model={self.model}" if self.model else ""
        access_log.debug(
            "%s request_id=%s status=%s duration_ms=%.2f%s", self.method, self.id, self.status(exc), duration, model
        )


class RequestInterceptor(grpc.aio.ServerInterceptor):
    """Request id, access log and deadline for every RPC, in one wrapper around each handler."""

    def __init__(self, deadline_margin: float = DEADLINE_MARGIN_SECONDS) -> None:
        self._margin = deadline_margin
        self._undecodable = _UndecodableLog()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        if handler.unary_unary is not None:
            behavior, make = handler.unary_unary, grpc.unary_unary_rpc_method_handler
        elif handler.unary_stream is not None:
            behavior, make = handler.unary_stream, grpc.unary_stream_rpc_method_handler
        elif handler.stream_unary is not None:
            behavior, make = handler.stream_unary, grpc.stream_unary_rpc_method_handler
        else:
            behavior, make = handler.stream_stream, grpc.stream_stream_rpc_method_handler
        if inspect.isasyncgenfunction(behavior):
            wrapped: Callable[..., Any] = self._wrap_generator(method, behavior, handler.request_streaming)
        elif inspect.iscoroutinefunction(behavior):
            unary = handler.unary_unary is not None
            wrapped = self._wrap_coroutine(method, behavior, handler.request_streaming, unary)
        else:  # a synchronous handler runs in gRPC's thread pool; this server registers none
            return handler
        deserializer = _tolerant(handler.request_deserializer, _type_name(handler.request_deserializer))
        return make(wrapped, request_deserializer=deserializer, response_serializer=handler.response_serializer)

    async def _refuse(self, call: _Call, request: Undecodable) -> None:
        self._undecodable.note(call.method, request.error)
        await abort(call.context, request.error)

    def _requests(self, call: _Call, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """A request stream that ends the RPC with INVALID_ARGUMENT at its first undecodable message."""

        async def checked() -> AsyncIterator[Any]:
            async for request in requests:
                if isinstance(request, Undecodable):
                    await self._refuse(call, request)
                yield request

        return checked()

    def _wrap_coroutine(
        self, method: str, behavior: Callable[..., Awaitable[Any]], request_streaming: bool, unary: bool
    ) -> Callable[..., Awaitable[Any]]:
        """A unary-response handler, or a streaming one that writes with ``context.write``."""
        margin = self._margin

        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            call = _Call(method, context, margin)
            if request_streaming:
                request = self._requests(call, request)
            elif not isinstance(request, Undecodable):
                call.model = model_of(request)
            failure: BaseException | None = None
            try:
                await call.start(unary)
                if isinstance(request, Undecodable):
                    await self._refuse(call, request)
                timeout = call.step()
                if timeout is None:
                    return await behavior(request, context)
                try:
                    async with timeout:
                        return await behavior(request, context)
                except TimeoutError:
                    if not call.expired():
                        raise
                await call.deadline_passed()
            except BaseException as exc:
                failure = exc
                raise
            finally:
                call.log(failure)

        return run

    def _wrap_generator(
        self, method: str, behavior: Callable[..., AsyncIterator[Any]], request_streaming: bool
    ) -> Callable[..., AsyncIterator[Any]]:
        """A streaming-response handler written as an async generator: each step under the deadline."""
        margin = self._margin

        async def run(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            call = _Call(method, context, margin)
            if request_streaming:
                request = self._requests(call, request)
            elif not isinstance(request, Undecodable):
                call.model = model_of(request)
            failure: BaseException | None = None
            responses = behavior(request, context)
            try:
                await call.start(unary=False)
                if isinstance(request, Undecodable):
                    await self._refuse(call, request)
                while True:
                    timeout = call.step()
                    try:
                        if timeout is None:
                            response = await anext(responses)
                        else:
                            async with timeout:
                                response = await anext(responses)
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        if not call.expired():
                            raise
                        await call.deadline_passed()
                    # The step's timeout ends before the yield: time spent sending is gRPC's to bound.
                    yield response
            except BaseException as exc:
                failure = exc
                raise
            finally:
                try:
                    await responses.aclose()  # type: ignore[attr-defined]
                finally:
                    call.log(failure)

        return run
