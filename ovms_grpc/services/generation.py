"""`ovms.generation.v1.GenerationService`: streaming chat and completions over the generation engines."""

from __future__ import annotations

import collections
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format

from ovms_grpc.genai.engine import Admitted, Delta
from ovms_grpc.genai.grammar import FORCEABLE_PARSERS
from ovms_grpc.genai.parsers import OutputParser
from ovms_grpc.genai.sampling import checked_schema, plain_json, sampling_options
from ovms_grpc.metrics import GraphRequest
from ovms_grpc.models.manager import ModelManager, VersionState
from ovms_grpc.services.interface import interface_of, method_of
from ovms_grpc.services.status import abort, as_serving_error, unary
from ovms_grpc_client.errors import InvalidArgument
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as pb
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2_grpc as pb_grpc

FINISH = collections.defaultdict(
    lambda: pb.FINISH_REASON_UNSPECIFIED, {"stop": pb.FINISH_REASON_STOP, "length": pb.FINISH_REASON_LENGTH}
)
FINGERPRINT = "ovms-grpc"

Response = TypeVar("Response", pb.ChatResponse, pb.CompleteResponse)


def chat_messages(request: pb.ChatRequest) -> list[dict[str, Any]]:
    messages = []
    for message in request.messages:
        content = message.content or "".join(part.text for part in message.parts if part.HasField("text"))
        item: dict[str, Any] = {"role": message.role, "content": content}
        if message.tool_call_id:
            item["tool_call_id"] = message.tool_call_id
        if message.name:
            item["name"] = message.name
        if message.tool_calls:
            item["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.function_name, "arguments": c.arguments}}
                for c in message.tool_calls
            ]
        messages.append(item)
    return messages


@contextlib.asynccontextmanager
async def tracking(tracked: GraphRequest | None) -> AsyncIterator[None]:
    """Count one unary call: accepted at once, one response when it succeeds."""
    if tracked is None:
        yield
        return
    tracked.accept()
    ok = False
    try:
        yield
        ok = True
    finally:
        tracked.done(ok)


def add_logprobs(target: Any, event: Delta, top: bool) -> None:
    """The delta's token logprobs; with ``top`` each lists the chosen token as its one top alternative."""
    for token, logprob in event.logprobs or ():
        item = target.add(token=token, bytes=token.encode())
        if logprob is not None:
            item.logprob = logprob
            if top:
                item.top_logprobs.add(token=token, logprob=logprob)


def tool_options(request: pb.ChatRequest, tool_parser: str | None, options: dict[str, Any]) -> str | None:
    """Put the request's tools and tool_choice into the engine options; returns the tool parser to apply.

    "none" hides the tools from the template and parses no calls; "required" or a function name
    constrains the output to a call (a grammar of the parser's format), so it needs a tool parser.
    """
    choice = request.tool_choice.WhichOneof("choice") if request.HasField("tool_choice") else None
    mode = request.tool_choice.mode if choice == "mode" else "auto"
    if mode not in ("none", "auto", "required"):
        raise InvalidArgument(f'tool_choice must be "none", "auto", "required" or a function, got "{mode}"')
    if not request.tools:
        if choice == "function_name" or mode == "required":
            raise InvalidArgument("tool_choice asks for a tool call, but the request has no tools")
        return tool_parser
    if mode == "none":
        return None
    options["tools"] = [
        plain_json(json_format.MessageToDict(tool, preserving_proto_field_name=True)) for tool in request.tools
    ]
    functions = {
        t.function.name: checked_schema(
            plain_json(json_format.MessageToDict(t.function.parameters)), f"the parameters of tool {t.function.name}"
        )
        for t in request.tools
    }
    forced: list[tuple[str, dict[str, Any]]] = []
    if choice == "function_name":
        name = request.tool_choice.function_name
        if name not in functions:
            raise InvalidArgument(f'tool_choice names function "{name}", which is not in tools: {sorted(functions)}')
        forced = [(name, functions[name])]
    elif mode == "required":
        forced = list(functions.items())
    if forced:
        if tool_parser is None:
            raise InvalidArgument(
                "tool_choice asks for a tool call, but the model has no tool parser (--tool_parser) to read it"
            )
        if tool_parser not in FORCEABLE_PARSERS:
            raise InvalidArgument(f"tool_choice cannot force a call with the {tool_parser} tool parser")
        options.update(forced_tools=forced, tool_parser=tool_parser)
    return tool_parser


class GenerationServicer(pb_grpc.GenerationServiceServicer):
    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    def _graph_request(self, model: str, context: grpc.aio.ServicerContext, method: str) -> GraphRequest | None:
        """Metrics of one call to a generative model (None when no such model is loaded)."""
        entry = self._manager.entries.get(model)
        record = entry.default_version() if entry is not None else None
        generator = record.generator if record is not None else None
        if generator is None:
            return None
        return generator.metrics.request(interface_of(context), method_of(context, method))

    async def _chunks(
        self,
        model: str,
        kind: str,
        payload: Any,
        options: dict[str, Any],
        header: Response,
        include_usage: bool,
        fill: Callable[[Response, Delta], None],
        opening: Callable[[Response, int], None] | None = None,
        tracked: GraphRequest | None = None,
    ) -> AsyncIterator[Response]:
        """One response per engine delta (``header`` copied, ``fill`` adds the choice); usage at the end.

        ``opening`` fills a first message sent as soon as the engine admitted the request.
        """
        generator = self._manager.llm(model)
        usage = pb.Usage()
        async for event in generator.engine.generate(kind, payload, options):
            chunk = type(header)()
            chunk.CopyFrom(header)
            if isinstance(event, Admitted):
                if tracked is not None:
                    tracked.accept()
                usage.prompt_tokens = event.prompt_tokens
                if opening is None:
                    continue
                opening(chunk, max(options.get("n") or 1, 1))
            else:
                usage.completion_tokens += event.tokens
                fill(chunk, event)
            if tracked is not None:
                tracked.respond()
            yield chunk
        if include_usage:
            usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
            header.usage.CopyFrom(usage)  # type: ignore[attr-defined]
            if tracked is not None:
                tracked.respond()
            yield header

    async def Chat(self, request: pb.ChatRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ChatResponse]:
        header = pb.ChatResponse(id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=request.model,
                                 system_fingerprint=FINGERPRINT)  # fmt: skip
        parsers: dict[int, OutputParser] = {}

        def opening(chunk: pb.ChatResponse, n: int) -> None:  # each choice's role, before any token
            for index in range(n):
                chunk.choices.add(index=index, role="assistant")

        def fill(chunk: pb.ChatResponse, event: Delta) -> None:
            delta = chunk.choices.add(index=event.choice, finish_reason=FINISH[event.finish])
            add_logprobs(delta.logprobs, event, top)
            parser = parsers.get(event.choice)
            if parser is None:
                delta.content = event.text
                return
            parsed = parser.feed(event.text, final=bool(event.finish))
            delta.content, delta.reasoning_content = parsed.content, parsed.reasoning
            for call in parsed.tool_calls:
                delta.tool_calls.add(id=call.id, type="function", function_name=call.name, arguments=call.arguments,
                                     index=len(parser_calls[event.choice]))  # fmt: skip
                parser_calls[event.choice].append(call.id)
            if event.finish == "stop" and parser.tool_calls_seen:
                delta.finish_reason = pb.FINISH_REASON_TOOL_CALLS

        parser_calls: dict[int, list[str]] = collections.defaultdict(list)
        tracked, ok = self._graph_request(request.model, context, "Stream"), False
        try:
            if not request.messages:
                raise InvalidArgument("messages must not be empty")
            options = sampling_options(request.sampling, streaming=True)
            top = request.sampling.top_logprobs > 0
            if request.HasField("chat_template_kwargs"):
                options["chat_template_kwargs"] = json_format.MessageToDict(request.chat_template_kwargs)
            llm = self._manager.llm(request.model)
            tool_parser = tool_options(request, llm.options.tool_parser, options)
            if tool_parser or llm.options.reasoning_parser:
                for index in range(max(options.get("n") or 1, 1)):
                    parsers[index] = OutputParser(llm.options.reasoning_parser, tool_parser)
            messages = chat_messages(request)
            async for chunk in self._chunks(
                request.model, "chat", messages, options, header, request.include_usage, fill, opening, tracked
            ):
                yield chunk
            ok = True
        except Exception as exc:
            await abort(context, as_serving_error(exc))
        finally:
            if tracked is not None:
                tracked.done(ok)

    async def Complete(
        self, request: pb.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.CompleteResponse]:
        header = pb.CompleteResponse(id=f"cmpl-{uuid.uuid4().hex}", created=int(time.time()), model=request.model,
                                     system_fingerprint=FINGERPRINT)  # fmt: skip

        def fill(chunk: pb.CompleteResponse, event: Delta) -> None:
            choice = chunk.choices.add(index=event.choice, text=event.text, finish_reason=FINISH[event.finish])
            add_logprobs(choice.logprobs, event, top)

        tracked, ok = self._graph_request(request.model, context, "Stream"), False
        try:
            options = sampling_options(request.sampling, streaming=True, echo=request.echo)
            top = request.sampling.top_logprobs > 0
            # token ids go to the engine as a list (the engine checks them against the vocabulary)
            prompt = list(request.prompt_token_ids.ids) if request.HasField("prompt_token_ids") else request.prompt
            chunks = self._chunks(
                request.model, "completion", prompt, options, header, request.include_usage, fill, None, tracked
            )
            async for chunk in chunks:
                yield chunk
            ok = True
        except Exception as exc:
            await abort(context, as_serving_error(exc))
        finally:
            if tracked is not None:
                tracked.done(ok)

    @unary
    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        cards = []
        for name, entry in sorted(self._manager.entries.items()):
            record = entry.default_version()
            if record is None or record.state != VersionState.AVAILABLE:
                continue
            task = record.generator.task if record.generator is not None else "inference"
            cards.append(pb.ModelCard(id=name, created=int(time.time()), owned_by="OVMS", task=task))
        return pb.ListModelsResponse(models=cards)

    @unary
    async def Embed(self, request: pb.EmbedRequest, context: grpc.aio.ServicerContext) -> pb.EmbedResponse:
        encoder = self._manager.encoder(request.model, "embeddings")
        async with tracking(self._graph_request(request.model, context, "Unary")):
            vectors, tokens = await encoder.embed(list(request.input), [list(t.ids) for t in request.token_inputs])
        return pb.EmbedResponse(
            model=request.model,
            data=[pb.Embedding(index=i, values=v) for i, v in enumerate(vectors)],
            usage=pb.Usage(prompt_tokens=tokens, total_tokens=tokens),
        )

    @unary
    async def Rerank(self, request: pb.RerankRequest, context: grpc.aio.ServicerContext) -> pb.RerankResponse:
        encoder = self._manager.encoder(request.model, "rerank")
        documents = list(request.documents)
        async with tracking(self._graph_request(request.model, context, "Unary")):
            scores, tokens = await encoder.rerank(request.query, documents)
        if request.top_n:
            scores = scores[: request.top_n]
        results = [
            pb.RerankResult(index=i, relevance_score=score, document=documents[i] if request.return_documents else "")
            for i, score in scores
        ]
        return pb.RerankResponse(
            model=request.model, results=results, usage=pb.Usage(prompt_tokens=tokens, total_tokens=tokens)
        )
