"""OpenAI-compatible routes (``/v3/...``, ``/v3/v1/...`` and ``/v1/...`` for chat, completions, models):
unary JSON or SSE streams over GenerationService.

A stream answers 200 only after the first gRPC message arrived, so an early failure is a real
HTTP error; a later failure is one SSE error event and ``data: [DONE]``. A client that goes away
cancels the gRPC call, which aborts the generation.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.http_errors import HttpError, from_rpc_error
from gateway.openai_codec import (
    CompletionLogprobs,
    bad_request,
    chat_logprobs,
    chat_request,
    completion_requests,
    embed_request,
    finish_name,
    usage_json,
)
from gateway.responses import read_body
from gateway.upstream import Upstream
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as pb
from ovms_grpc_client.metadata import METHOD_KEY

SSE_HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive"}


def openai_errors(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def wrapper(request: Request) -> Response:
        try:
            return await handler(request)
        except HttpError as exc:
            return Response(orjson.dumps(exc.openai_body()), status_code=exc.status, media_type="application/json")

    return wrapper


async def _body(request: Request) -> dict:
    raw = await read_body(request)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("The file is not valid json - Cannot parse JSON body") from None
    if not isinstance(body, dict):
        raise bad_request("The file is not valid json - JSON body must be an object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise bad_request(
            "model field is missing in JSON body" if "model" not in body else "model field is not a string", "model"
        )
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("stream field is not a boolean", "stream")
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise bad_request("stream_options provided, but stream not set to true", "stream_options")
        if not isinstance(options, dict) or set(options) - {"include_usage"}:
            raise bad_request("Found unexpected stream options. Properties accepted in stream_options: include_usage")
    return body


def _chunk_base(first: Any, obj: str) -> dict[str, Any]:
    return {"id": first.id, "object": obj, "created": first.created, "model": first.model,
            "system_fingerprint": first.system_fingerprint}  # fmt: skip


async def _first(call: Any) -> Any:
    """The first message of a stream; a failure before it is an HTTP error."""
    try:
        return await call.read()
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None


def _sse(document: Any) -> bytes:
    return b"data: " + orjson.dumps(document) + b"\n\n"


async def _stream(
    call: Any, first: Any, render: Callable[[Any], list[dict]], include_usage: bool
) -> AsyncIterator[bytes]:
    message = first
    try:
        while message is not grpc.aio.EOF:
            for document in render(message):
                if include_usage or "usage" not in document or document.get("choices"):
                    if include_usage:
                        document.setdefault("usage", None)
                    else:
                        document.pop("usage", None)
                    yield _sse(document)
            message = await call.read()
    except grpc.aio.AioRpcError as exc:
        yield _sse(from_rpc_error(exc).openai_body())
    finally:
        call.cancel()  # a no-op when finished; aborts generation when the client went away
    yield b"data: [DONE]\n\n"


def _render_chat(message: pb.ChatResponse) -> list[dict]:
    base = _chunk_base(message, "chat.completion.chunk")
    if not message.choices:
        return [{**base, "choices": [], "usage": usage_json(message.usage)}]
    documents = []
    for choice in message.choices:
        delta: dict[str, Any] = {"role": choice.role} if choice.role else {}
        if choice.content or not (choice.finish_reason or choice.reasoning_content or choice.tool_calls):
            delta["content"] = choice.content
        if choice.reasoning_content:
            delta["reasoning_content"] = choice.reasoning_content
        if choice.tool_calls:
            delta["tool_calls"] = [_tool_call_json(call) for call in choice.tool_calls]
        finish = finish_name(choice.finish_reason)
        logprobs = {"content": chat_logprobs(choice.logprobs), "refusal": None} if choice.logprobs else None
        entry = {"index": choice.index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        documents.append({**base, "choices": [entry]})
    return documents


def _tool_call_json(call: pb.ToolCall) -> dict[str, Any]:
    return {"index": call.index, "id": call.id, "type": "function",
            "function": {"name": call.function_name, "arguments": call.arguments}}  # fmt: skip


def _completion_renderer() -> Callable[[pb.CompleteResponse], list[dict]]:
    """Renders the messages of one completions stream (logprob text offsets run on across messages)."""
    offsets: dict[int, CompletionLogprobs] = {}

    def render(message: pb.CompleteResponse) -> list[dict]:
        base = _chunk_base(message, "text_completion")
        if not message.choices:
            return [{**base, "choices": [], "usage": usage_json(message.usage)}]
        documents = []
        for c in message.choices:
            logprobs = offsets.setdefault(c.index, CompletionLogprobs()).render(c.logprobs) if c.logprobs else None
            finish = finish_name(c.finish_reason)
            choice = {"index": c.index, "text": c.text, "logprobs": logprobs, "finish_reason": finish}
            documents.append({**base, "choices": [choice]})
        return documents

    return render


async def _collect(call: Any, first: Any) -> tuple[Any, dict[int, dict[str, Any]], pb.Usage]:
    """Read a whole stream into per-choice text and finish reasons."""
    choices: dict[int, dict[str, Any]] = {}
    usage = pb.Usage()
    message = first
    try:
        while message is not grpc.aio.EOF:
            for choice in message.choices:
                entry = choices.setdefault(
                    choice.index, {"text": "", "finish": None, "reasoning": "", "tools": [], "logprobs": []}
                )
                entry["logprobs"].extend(choice.logprobs)
                if isinstance(choice, pb.ChatChoiceDelta):
                    entry["text"] += choice.content
                    entry["reasoning"] += choice.reasoning_content
                    entry["tools"] += [_tool_call_json(call) for call in choice.tool_calls]
                else:
                    entry["text"] += choice.text
                entry["finish"] = finish_name(choice.finish_reason) or entry["finish"]
            if message.HasField("usage"):
                usage = message.usage
            message = await call.read()
    except grpc.aio.AioRpcError as exc:
        raise from_rpc_error(exc) from None
    return first, choices, usage


async def _answer(
    body: dict,
    call: Any,
    render: Callable[[Any], list[dict]],
    unary: Callable[[Any, dict[int, dict[str, Any]], pb.Usage], dict],
) -> Response:
    """Answer a generation call as an SSE stream or, when not streaming, one JSON document."""
    first = await _first(call)
    if first is grpc.aio.EOF:
        raise HttpError("INTERNAL_ERROR", details="the server ended the stream without output")
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            _stream(call, first, render, include_usage), media_type="text/event-stream", headers=SSE_HEADERS
        )
    first, choices, usage = await _collect(call, first)
    return Response(orjson.dumps(unary(first, choices, usage)), media_type="application/json")


def _chat_message(choice: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": choice["text"], "refusal": None}
    if choice.get("reasoning"):
        message["reasoning_content"] = choice["reasoning"]
    if choice.get("tools"):
        message["tool_calls"] = [{k: v for k, v in call.items() if k != "index"} for call in choice["tools"]]
        message["content"] = choice["text"] or None
    return message


def _chat_document(first: Any, choices: dict[int, dict[str, Any]], usage: pb.Usage) -> dict:
    return {
        **_chunk_base(first, "chat.completion"),
        "choices": [
            {
                "index": i,
                "message": _chat_message(c),
                "logprobs": {"content": chat_logprobs(c["logprobs"]), "refusal": None} if c.get("logprobs") else None,
                "finish_reason": c["finish"],
            }
            for i, c in sorted(choices.items())
        ],
        "usage": usage_json(usage),
    }


def _completion_document(first: Any, choices: dict[int, dict[str, Any]], usage: pb.Usage) -> dict:
    return {
        **_chunk_base(first, "text_completion"),
        "choices": [
            {
                "index": i,
                "text": c["text"],
                "logprobs": CompletionLogprobs().render(c["logprobs"]) if c.get("logprobs") else None,
                "finish_reason": c["finish"],
            }
            for i, c in sorted(choices.items())
        ],
        "usage": usage_json(usage),
    }


class MergedCall:
    """Several Complete streams (one per prompt) read as one: choice ``index`` of prompt ``i`` becomes
    ``i * n + index`` (OpenAI's numbering), every message takes the first stream's id, and the usage
    of all of them comes last, summed. Any stream's error ends the whole call."""

    def __init__(self, calls: list[Any], n: int) -> None:
        self._calls = calls
        self._queue: asyncio.Queue = asyncio.Queue()
        self._open = len(calls)
        self._usage: Any = None
        self._header: Any = None
        self._tasks = [asyncio.create_task(self._pump(i * n, call)) for i, call in enumerate(calls)]

    async def _pump(self, offset: int, call: Any) -> None:
        try:
            while (message := await call.read()) is not grpc.aio.EOF:
                for choice in message.choices:
                    choice.index += offset
                self._queue.put_nowait(message)
        except grpc.aio.AioRpcError as exc:
            self._queue.put_nowait(exc)
        finally:
            self._queue.put_nowait(None)

    async def read(self) -> Any:
        while self._open:
            item = await self._queue.get()
            if item is None:
                self._open -= 1
                continue
            if isinstance(item, Exception):
                self.cancel()
                raise item
            if self._header is None:
                self._header = item
            item.id = self._header.id
            if item.choices:
                return item
            if self._usage is None:  # a usage-only message: kept for the end
                self._usage = item
            else:
                for field in ("prompt_tokens", "completion_tokens", "total_tokens"):
                    setattr(self._usage.usage, field, getattr(self._usage.usage, field) + getattr(item.usage, field))
        if self._usage is not None:
            usage, self._usage = self._usage, None
            return usage
        return grpc.aio.EOF

    def cancel(self) -> None:
        for call in self._calls:
            call.cancel()
        for task in self._tasks:
            task.cancel()


def _metadata(body: dict) -> tuple[tuple[str, str], ...]:
    """The gateway's metadata and OVMS's method label (an HTTP client that asked for no stream made a unary call)."""
    return Upstream.metadata((METHOD_KEY, "Stream" if body.get("stream") else "Unary"))


@openai_errors
async def chat_completions(request: Request) -> Response:
    body = await _body(request)
    upstream: Upstream = request.app.state.upstream
    call = upstream.generation.Chat(chat_request(body), metadata=_metadata(body))
    return await _answer(body, call, _render_chat, _chat_document)


@openai_errors
async def completions(request: Request) -> Response:
    body = await _body(request)
    upstream: Upstream = request.app.state.upstream
    requests = completion_requests(body)
    calls = [upstream.generation.Complete(r, metadata=_metadata(body)) for r in requests]
    call = calls[0] if len(calls) == 1 else MergedCall(calls, max(requests[0].sampling.n, 1))
    return await _answer(body, call, _completion_renderer(), _completion_document)


@openai_errors
async def embeddings(request: Request) -> Response:
    body = await _body(request)
    message = embed_request(body)
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise bad_request("encoding_format should either base64 or float", "encoding_format")
    upstream: Upstream = request.app.state.upstream
    answer = await upstream.call(upstream.generation.Embed, message)
    data = []
    for item in answer.data:
        values: Any = list(item.values)
        if encoding == "base64":
            values = base64.b64encode(np.asarray(item.values, dtype="<f4").tobytes()).decode()
        data.append({"object": "embedding", "embedding": values, "index": item.index})
    usage = {"prompt_tokens": answer.usage.prompt_tokens, "total_tokens": answer.usage.total_tokens}
    document = {"object": "list", "data": data, "model": body["model"], "usage": usage}
    return Response(orjson.dumps(document), media_type="application/json")


@openai_errors
async def rerank(request: Request) -> Response:
    body = await _body(request)
    query, documents = body.get("query"), body.get("documents")
    if not isinstance(query, str):
        raise bad_request("query field is missing in request", "query")
    if documents is None:
        raise bad_request("documents field is missing in request", "documents")
    if not isinstance(documents, list):
        raise bad_request("documents is not an array", "documents")
    texts: list[str] = []
    for document in documents:
        text = document.get("text") if isinstance(document, dict) else document
        if not isinstance(text, str):
            raise bad_request("documents must be strings or objects with a text field", "documents")
        texts.append(text)
    top_n = body.get("top_n", 0)
    if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 0:
        raise bad_request("top_n accepts integer values", "top_n")
    return_documents = body.get("return_documents", False)
    if not isinstance(return_documents, bool):
        raise bad_request("return_documents accepts boolean values", "return_documents")
    upstream: Upstream = request.app.state.upstream
    answer = await upstream.call(
        upstream.generation.Rerank,
        pb.RerankRequest(
            model=body["model"], query=query, documents=texts, top_n=top_n, return_documents=return_documents
        ),
    )
    results = []
    for item in answer.results:
        result: dict[str, Any] = {"index": item.index, "relevance_score": item.relevance_score}
        if return_documents:
            result["document"] = {"text": item.document}
        results.append(result)
    return Response(orjson.dumps({"results": results}), media_type="application/json")


async def _models(request: Request) -> list[dict]:
    upstream: Upstream = request.app.state.upstream
    answer = await upstream.call(upstream.generation.ListModels, pb.ListModelsRequest())
    return [{"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by} for m in answer.models]


@openai_errors
async def list_models(request: Request) -> Response:
    return Response(orjson.dumps({"object": "list", "data": await _models(request)}), media_type="application/json")


@openai_errors
async def retrieve_model(request: Request) -> Response:
    wanted = request.path_params["model"]
    for card in await _models(request):
        if card["id"] == wanted:
            return Response(orjson.dumps(card), media_type="application/json")
    raise HttpError("MODEL_NAME_MISSING", f"Model not found - {wanted}", param="model")


def _routes() -> list[Route]:
    routes = []
    for prefix in ("/v3", "/v3/v1"):
        routes += [
            Route(f"{prefix}/chat/completions", chat_completions, methods=["POST"]),
            Route(f"{prefix}/completions", completions, methods=["POST"]),
            Route(f"{prefix}/embeddings", embeddings, methods=["POST"]),
            Route(f"{prefix}/rerank", rerank, methods=["POST"]),
            Route(f"{prefix}/models", list_models, methods=["GET"]),
            Route(f"{prefix}/models/{{model}}", retrieve_model, methods=["GET"]),
        ]
    routes += [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
    ]
    return routes


ROUTES = _routes()
