"""OpenAI-style JSON (chat/completions, completions, models) <-> ovms.generation.v1 messages."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from gateway.http_errors import HttpError
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as pb

FINISH_NAMES = {
    pb.FINISH_REASON_STOP: "stop",
    pb.FINISH_REASON_LENGTH: "length",
    pb.FINISH_REASON_TOOL_CALLS: "tool_calls",
}


def bad_request(message: str, param: str | None = None) -> HttpError:
    return HttpError("INVALID_ARGUMENT", message, param=param)


def _number(body: dict, key: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise bad_request(f"{key} must be a {'integer' if kind is int else 'number'}, got {value!r}", key)
    return value


def sampling(body: dict) -> pb.SamplingParams:
    """SamplingParams from an OpenAI request body (types checked here, ranges by the server)."""
    params = pb.SamplingParams()
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
            raise bad_request(f"max_tokens must be a non-negative integer, got {max_tokens!r}", "max_tokens")
        if max_tokens > 4294967295:
            raise bad_request("max_tokens value can't be greater than 4294967295", "max_tokens")
        params.max_tokens = max_tokens
    for key in ("temperature", "top_p", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty",
                "length_penalty"):  # fmt: skip
        value = _number(body, key, (int, float))
        if value is not None:
            setattr(params, key, value)
    for key in ("top_k", "seed"):
        value = _number(body, key, int)
        if value is not None:
            if key == "seed" and not 0 <= value <= 4294967295:
                raise bad_request(f"seed must be between 0 and 4294967295, got {value}", "seed")
            setattr(params, key, value)
    stop = body.get("stop")
    if isinstance(stop, str):
        params.stop.append(stop)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        params.stop.extend(stop)
    elif stop is not None:
        raise bad_request("stop is not a string or array of strings", "stop")
    for key in ("ignore_eos", "include_stop_str_in_output"):
        value = body.get(key)
        if value is not None and not isinstance(value, bool):
            raise bad_request(f"{key} must be a boolean", key)
    params.ignore_eos = bool(body.get("ignore_eos"))
    if body.get("include_stop_str_in_output") is not None:
        params.include_stop_str_in_output = body["include_stop_str_in_output"]
    for key, least in (("n", 1), ("best_of", 1), ("top_logprobs", 0)):
        value = _number(body, key, int)
        if value is not None:
            if value < least:  # OpenAI: n and best_of are at least 1 (0 is "unset" on the gRPC side)
                raise bad_request(f"{key} must be an integer of at least {least}, got {value}", key)
            setattr(params, key, value)
    response_format = body.get("response_format")
    if response_format is not None:
        if not isinstance(response_format, dict) or not isinstance(response_format.get("type"), str):
            raise bad_request("response_format must be an object with a type", "response_format")
        params.response_format.type = response_format["type"]
        if response_format["type"] == "json_schema":  # OpenAI: {"json_schema": {"name", "schema", "strict"}}
            wrapper = response_format.get("json_schema")
            if not isinstance(wrapper, dict) or not isinstance(wrapper.get("schema", {}), dict):
                raise bad_request("response_format.json_schema must be an object with a schema", "response_format")
            schema = wrapper.get("schema", wrapper)
            params.response_format.json_schema.CopyFrom(_struct(schema, "response_format"))
    return params


def _struct(value: Any, key: str) -> struct_pb2.Struct:
    if not isinstance(value, dict):
        raise bad_request(f"{key} must be an object", key)
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def _message(item: Any, index: int) -> pb.ChatMessage:
    if not isinstance(item, dict) or not isinstance(item.get("role"), str):
        raise bad_request(f"messages[{index}] must be an object with a role", "messages")
    message = pb.ChatMessage(
        role=item["role"], tool_call_id=item.get("tool_call_id") or "", name=item.get("name") or ""
    )
    content = item.get("content")
    if isinstance(content, str):
        message.content = content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                message.parts.add(text=part["text"])
            elif isinstance(part, dict) and part.get("type") == "image_url":
                raise bad_request("image inputs are not supported by this server yet", "messages")
            else:
                raise bad_request(f"messages[{index}].content has a part that is not text", "messages")
    elif content is not None:
        raise bad_request(f"messages[{index}].content must be a string or an array of parts", "messages")
    for call in item.get("tool_calls") or []:
        function = call.get("function", {}) if isinstance(call, dict) else {}
        message.tool_calls.add(
            id=str(call.get("id", "")), type="function", function_name=str(function.get("name", "")),
            arguments=str(function.get("arguments", "")),
        )  # fmt: skip
    return message


def chat_request(body: dict) -> pb.ChatRequest:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages must be a non-empty array", "messages")
    request = pb.ChatRequest(
        model=body["model"], messages=[_message(m, i) for i, m in enumerate(messages)], sampling=sampling(body)
    )
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise bad_request("logprobs must be a boolean", "logprobs")
    request.sampling.logprobs = bool(logprobs)
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            raise bad_request('tools must be objects of type "function"', "tools")
        json_format.ParseDict(tool, request.tools.add(), ignore_unknown_fields=True)
    tool_choice = body.get("tool_choice")
    if isinstance(tool_choice, str):
        request.tool_choice.mode = tool_choice
    elif isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        if tool_choice.get("type") != "function" or not isinstance(function, dict) or not function.get("name"):
            raise bad_request('tool_choice must be a string or {"type": "function", "function": {"name": ...}}')
        request.tool_choice.function_name = str(function["name"])
    elif tool_choice is not None:
        raise bad_request("tool_choice must be a string or an object", "tool_choice")
    if body.get("chat_template_kwargs") is not None:
        request.chat_template_kwargs.CopyFrom(_struct(body["chat_template_kwargs"], "chat_template_kwargs"))
    request.include_usage = True
    return request


#: Prompts one completions request may carry.
MAX_PROMPTS = 64


PROMPT_FORMS = "a string, an array of strings, an array of token ids or an array of arrays of token ids"


def _token_ids(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 2**31 for t in value)
    )


def completion_requests(body: dict) -> list[pb.CompleteRequest]:
    """One CompleteRequest per prompt: OpenAI accepts a string, an array of strings, token ids
    (``[int]``) or an array of them (``[[int]]``)."""
    prompts = body.get("prompt")
    if prompts is None:
        raise bad_request("prompt is missing", "prompt")
    if isinstance(prompts, str) or _token_ids(prompts):
        prompts = [prompts]
    if (
        not isinstance(prompts, list)
        or not prompts
        or not (all(isinstance(p, str) for p in prompts) or all(_token_ids(p) for p in prompts))
    ):
        raise bad_request(f"prompt must be {PROMPT_FORMS} (token ids between 0 and 2^31-1)", "prompt")
    if len(prompts) > MAX_PROMPTS:
        raise bad_request(f"prompt has {len(prompts)} prompts; at most {MAX_PROMPTS} are accepted", "prompt")
    first = completion_request(body, prompts[0])
    requests = [first]
    for prompt in prompts[1:]:
        request = pb.CompleteRequest()
        request.CopyFrom(first)
        _set_prompt(request, prompt)
        requests.append(request)
    return requests


def _set_prompt(request: pb.CompleteRequest, prompt: str | list[int]) -> None:
    if isinstance(prompt, str):
        request.prompt = prompt
    else:
        request.prompt_token_ids.ids[:] = prompt


def completion_request(body: dict, prompt: str | list[int]) -> pb.CompleteRequest:
    echo = body.get("echo", False)
    if not isinstance(echo, bool):
        raise bad_request("echo must be a boolean", "echo")
    request = pb.CompleteRequest(model=body["model"], sampling=sampling(body), echo=echo, include_usage=True)
    _set_prompt(request, prompt)
    # completions' logprobs is a count of alternatives; openvino_genai gives the chosen token's only
    logprobs = body.get("logprobs")
    if logprobs is not None:
        if isinstance(logprobs, bool) or not isinstance(logprobs, int) or not 0 <= logprobs <= 1:
            raise bad_request(
                f"logprobs accepts 0 or 1 (the chosen token's log probability), got {logprobs!r}", "logprobs"
            )
        request.sampling.logprobs = True
        request.sampling.top_logprobs = logprobs
    return request


def _is_ids(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def embed_request(body: dict) -> pb.EmbedRequest:
    """OpenAI embeddings input: a string, strings, token ids, or lists of token ids."""
    value = body.get("input")
    if value is None:
        raise bad_request("input field is required", "input")
    request = pb.EmbedRequest(model=body["model"])
    if isinstance(value, str):
        request.input.append(value)
    elif isinstance(value, list) and value and _is_ids(value):
        request.token_inputs.add(ids=value)
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        request.input.extend(value)
    elif isinstance(value, list) and value and all(_is_ids(v) for v in value):
        for ids in value:
            request.token_inputs.add(ids=ids)
    elif isinstance(value, list) and value and all(isinstance(v, str) or _is_ids(v) for v in value):
        raise bad_request("input must be homogeneous", "input")
    else:
        raise bad_request("input should be string, array of strings or array of integers", "input")
    return request


def usage_json(usage: pb.Usage) -> dict:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def chat_logprobs(items: Any) -> list[dict[str, Any]]:
    """OpenAI chat ``logprobs.content`` entries of TokenLogprob messages."""
    return [
        {
            "token": item.token,
            "logprob": item.logprob if item.HasField("logprob") else None,
            "bytes": list(item.bytes),
            "top_logprobs": [
                {"token": top.token, "logprob": top.logprob, "bytes": list(top.token.encode())}
                for top in item.top_logprobs
            ],
        }
        for item in items
    ]


class CompletionLogprobs:
    """OpenAI completions ``logprobs`` (tokens, token_logprobs, top_logprobs, text_offset) of one choice,
    built over a stream: text offsets continue from one message to the next."""

    def __init__(self) -> None:
        self.offset = 0

    def render(self, items: Any) -> dict[str, Any]:
        document: dict[str, list] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
        for item in items:
            document["tokens"].append(item.token)
            document["token_logprobs"].append(item.logprob if item.HasField("logprob") else None)
            # an echoed prompt's first token has no logprob: null in both lists, as OpenAI answers
            # (its SDK types say float, its API says null)
            alternatives = {top.token: top.logprob for top in item.top_logprobs}
            document["top_logprobs"].append(alternatives if item.HasField("logprob") else None)
            document["text_offset"].append(self.offset)
            self.offset += len(item.token)
        return document


def finish_name(reason: int) -> str | None:
    return FINISH_NAMES.get(reason)  # type: ignore[call-overload]
