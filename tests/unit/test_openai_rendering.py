"""The gateway's OpenAI documents validate against the openai package's own types."""

from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from gateway.openai_routes import _chat_document, _completion_document, _render_chat
from ovms_grpc_client.genproto.ovms.generation.v1 import generation_pb2 as pb


def header() -> pb.ChatResponse:
    return pb.ChatResponse(id="chatcmpl-1", created=1700000000, model="m", system_fingerprint="fp")


def test_chunks_with_reasoning_and_tool_calls_validate() -> None:
    message = header()
    choice = message.choices.add(index=0, role="assistant", content="", reasoning_content="thinking")
    choice.tool_calls.add(id="call_1", type="function", function_name="f", arguments='{"a": 1}', index=0)
    choice.finish_reason = pb.FINISH_REASON_TOOL_CALLS
    (document,) = _render_chat(message)
    chunk = ChatCompletionChunk.model_validate(document)
    assert chunk.choices[0].finish_reason == "tool_calls"
    assert chunk.choices[0].delta.tool_calls[0].function.arguments == '{"a": 1}'
    assert document["choices"][0]["delta"]["reasoning_content"] == "thinking"


def test_unary_documents_validate() -> None:
    usage = pb.Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
    tools = [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    choices = {0: {"text": "", "finish": "tool_calls", "reasoning": "r", "tools": tools}}
    chat = ChatCompletion.model_validate(_chat_document(header(), choices, usage))
    assert chat.choices[0].message.content is None and chat.choices[0].message.tool_calls[0].id == "call_1"
    assert chat.choices[0].message.refusal is None and chat.usage.total_tokens == 5
    first = pb.CompleteResponse(id="cmpl-1", created=1700000000, model="m", system_fingerprint="fp")
    completion = Completion.model_validate(_completion_document(first, {0: {"text": "hi", "finish": "length"}}, usage))
    assert completion.choices[0].text == "hi" and completion.object == "text_completion"


def test_logprobs_validate_strictly() -> None:
    message = header()
    choice = message.choices.add(index=0, content=" G")
    item = choice.logprobs.add(token=" G", logprob=-0.5, bytes=b" G")
    item.top_logprobs.add(token=" G", logprob=-0.5)
    (document,) = _render_chat(message)
    chunk = ChatCompletionChunk.model_validate(document, strict=True)
    assert chunk.choices[0].logprobs.content[0].bytes == [32, 71]
    assert chunk.choices[0].logprobs.content[0].top_logprobs[0].logprob == -0.5

    usage = pb.Usage(prompt_tokens=2, completion_tokens=1, total_tokens=3)
    items = [pb.TokenLogprob(token="a"), pb.TokenLogprob(token=" b", logprob=-2.0, bytes=b" b")]
    items[1].top_logprobs.add(token=" b", logprob=-2.0)
    items.append(pb.TokenLogprob(token=" c", logprob=-1.0, bytes=b" c"))
    first = pb.CompleteResponse(id="cmpl-1", created=1700000000, model="m", system_fingerprint="fp")
    generated = _completion_document(first, {0: {"text": " b c", "finish": "length", "logprobs": items[1:]}}, usage)
    logprobs = Completion.model_validate(generated, strict=True).choices[0].logprobs
    assert logprobs.tokens == [" b", " c"] and logprobs.token_logprobs == [-2.0, -1.0]
    assert logprobs.text_offset == [0, 2] and logprobs.top_logprobs == [{" b": -2.0}, {}]
    # echo: the prompt's first token has null logprobs, as OpenAI's API answers (its SDK types say float)
    echoed = _completion_document(first, {0: {"text": "a b c", "finish": "length", "logprobs": items}}, usage)
    raw = echoed["choices"][0]["logprobs"]
    assert raw["token_logprobs"] == [None, -2.0, -1.0] and raw["top_logprobs"] == [None, {" b": -2.0}, {}]
    assert raw["text_offset"] == [0, 1, 3] and raw["tokens"] == ["a", " b", " c"]
    chat = ChatCompletion.model_validate(
        _chat_document(header(), {0: {"text": "x", "finish": "stop", "logprobs": items[1:]}}, usage), strict=True
    )
    assert [c.token for c in chat.choices[0].logprobs.content] == [" b", " c"]
