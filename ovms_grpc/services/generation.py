"""`ovms.generation.v1.GenerationService`: streaming chat and completions over the generation engines."""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import json_format

from ovms_grpc.errors import ServingError, Unimplemented
from ovms_grpc.genai.engine import Admitted, Delta
from ovms_grpc.genai.sampling import sampling_options
from ovms_grpc.genproto.ovms.generation.v1 import generation_pb2 as pb
from ovms_grpc.genproto.ovms.generation.v1 import generation_pb2_grpc as pb_grpc
from ovms_grpc.models.manager import ModelManager, VersionState
from ovms_grpc.services.status import abort, as_serving_error, unary

FINISH = collections.defaultdict(
    lambda: pb.FINISH_REASON_UNSPECIFIED, {"stop": pb.FINISH_REASON_STOP, "length": pb.FINISH_REASON_LENGTH}
)
FINGERPRINT = "ovms-grpc"


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


class GenerationServicer(pb_grpc.GenerationServiceServicer):
    def __init__(self, manager: ModelManager) -> None:
        self._manager = manager

    async def _stream(
        self, context: grpc.aio.ServicerContext, model: str, kind: str, payload: Any, options: dict[str, Any]
    ) -> AsyncIterator[Admitted | Delta]:
        generator = self._manager.generator(model, "text_generation")
        async for event in generator.engine.generate(kind, payload, options):
            yield event

    async def Chat(self, request: pb.ChatRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ChatResponse]:
        header = pb.ChatResponse(id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=request.model,
                                 system_fingerprint=FINGERPRINT)  # fmt: skip
        try:
            if not request.messages:
                raise ServingError("messages must not be empty", kind_name="INVALID_ARGUMENT")
            options = sampling_options(request.sampling, streaming=True)
            if request.tools:
                options["tools"] = [
                    json_format.MessageToDict(tool, preserving_proto_field_name=True) for tool in request.tools
                ]
            if request.HasField("chat_template_kwargs"):
                options["chat_template_kwargs"] = json_format.MessageToDict(request.chat_template_kwargs)
            usage = pb.Usage()
            started: set[int] = set()
            async for event in self._stream(context, request.model, "chat", chat_messages(request), options):
                if isinstance(event, Admitted):
                    usage.prompt_tokens = event.prompt_tokens
                    continue
                chunk = pb.ChatResponse()
                chunk.CopyFrom(header)
                delta = chunk.choices.add(
                    index=event.choice, content=event.text, finish_reason=FINISH.get(event.finish)
                )
                if event.choice not in started:
                    started.add(event.choice)
                    delta.role = "assistant"
                usage.completion_tokens += event.tokens
                yield chunk
            if request.include_usage:
                usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
                header.usage.CopyFrom(usage)
                yield header
        except Exception as exc:
            await abort(context, as_serving_error(exc))

    async def Complete(
        self, request: pb.CompleteRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.CompleteResponse]:
        header = pb.CompleteResponse(id=f"cmpl-{uuid.uuid4().hex}", created=int(time.time()), model=request.model,
                                     system_fingerprint=FINGERPRINT)  # fmt: skip
        try:
            if request.echo:
                raise Unimplemented("echo is not supported by this server yet")
            options = sampling_options(request.sampling, streaming=True)
            usage = pb.Usage()
            async for event in self._stream(context, request.model, "completion", request.prompt, options):
                if isinstance(event, Admitted):
                    usage.prompt_tokens = event.prompt_tokens
                    continue
                usage.completion_tokens += event.tokens
                chunk = pb.CompleteResponse()
                chunk.CopyFrom(header)
                chunk.choices.add(index=event.choice, text=event.text, finish_reason=FINISH.get(event.finish))
                yield chunk
            if request.include_usage:
                usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
                header.usage.CopyFrom(usage)
                yield header
        except Exception as exc:
            await abort(context, as_serving_error(exc))

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
        raise Unimplemented("embeddings are not served by this server yet")

    @unary
    async def Rerank(self, request: pb.RerankRequest, context: grpc.aio.ServicerContext) -> pb.RerankResponse:
        raise Unimplemented("rerank is not served by this server yet")
