"""Reading and rewriting the text of requests and replies, per wire format."""

from __future__ import annotations

import json

import msgspec
import pytest

from gateway.errors import BadRequest
from gateway.guards import request_texts
from gateway.guards.reply_texts import stream_texts, stream_usage, stream_with
from gateway.guards.responses_reply import ResponsesStreamDecoder, decode_result
from gateway.ir import (
    FinishEvent, TextDelta, ThinkingDelta, ToolCallDelta, ToolCallPart, ToolCallStart, Usage, UsageEvent,
)

IMAGE = "data:image/png;base64," + "A" * 64


@pytest.mark.parametrize("texts_of,body,expected", [
    (request_texts.OPENAI_CHAT, {"model": "m", "messages": [
        {"role": "system", "content": "S"},
        {"role": "user", "content": [{"type": "text", "text": "U"},
                                     {"type": "image_url", "image_url": {"url": IMAGE}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": \"A\"}"}}]},
        {"role": "tool", "tool_call_id": "1", "content": "R"}]}, ["S", "U", "{\"a\": \"A\"}", "R"]),
    (request_texts.OPENAI_RESPONSES, {"model": "m", "instructions": "I", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "U"}, {"type": "input_image", "image_url": IMAGE}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "O"}]}, ["I", "U", "{}", "O"]),
    (request_texts.OPENAI_RESPONSES, {"model": "m", "input": "just text"}, ["just text"]),
    (request_texts.ANTHROPIC, {"model": "m", "max_tokens": 5, "system": [{"type": "text", "text": "S"}], "messages": [
        {"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "AAAA"}},
                                     {"type": "document", "source": {"type": "text", "data": "D"}}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "T", "signature": "sig"},
                                          {"type": "tool_use", "id": "t", "name": "f", "input": {"q": ["Q", 1]}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                      "content": [{"type": "text", "text": "R"}]}]}]}, ["S", "D", "Q", "R"]),
    (request_texts.GEMINI, {"system_instruction": {"parts": [{"text": "S"}]}, "contents": [
        {"role": "user", "parts": [{"text": "U"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"q": "Q"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"r": "R"}}}]}]},
     ["S", "U", "Q", "R"]),
    (request_texts.COMPLETIONS, {"prompt": "P", "max_tokens": 3}, ["P"]),
])
def test_request_texts_are_read_from_the_fields_that_hold_text(texts_of, body, expected):
    assert texts_of.read(json.dumps(body).encode()) == expected


def test_a_rewrite_changes_only_the_texts_and_keeps_every_other_byte():
    body = (b'{"model":"m","temperature":1e-1,"messages":[{"role":"user","content":"mail a@b.io",'
            b'"name":"x"}],"metadata":{"note":"mail a@b.io"},"tools":[{"type":"function"}]}')
    rewritten = request_texts.OPENAI_CHAT.rewrite(body, {"mail a@b.io": "mail [EMAIL_ADDRESS]"})
    fields = msgspec.json.decode(rewritten, type=dict[str, msgspec.Raw])
    assert bytes(fields["temperature"]) == b"1e-1" and bytes(fields["tools"]) == b'[{"type":"function"}]'
    assert bytes(fields["metadata"]) == b'{"note":"mail a@b.io"}'  # not a text field: as sent
    assert json.loads(bytes(fields["messages"])) == [{"role": "user", "content": "mail [EMAIL_ADDRESS]", "name": "x"}]


def test_a_body_whose_messages_cannot_be_read_is_refused():
    with pytest.raises(BadRequest, match="could not be read for the endpoint's guardrails"):
        request_texts.OPENAI_CHAT.read(b'{"messages": [{"role": "user", "content": 42}]}')


def test_a_masked_stream_sends_each_text_whole_so_no_piece_slips_out():
    events = [
        ThinkingDelta("think "), ThinkingDelta("jane@"), ThinkingDelta(signature="sig"),
        TextDelta("Mail jane.d"), TextDelta("oe@example"), TextDelta(".com now"),
        ToolCallStart(0, "c0", "f"), ToolCallStart(1, "c1", "g"),
        ToolCallDelta(0, '{"to": "a@'), ToolCallDelta(1, '{}'), ToolCallDelta(0, 'b.io"}'),
        UsageEvent(Usage(1, 2)), FinishEvent("tool_calls"),
    ]
    texts = stream_texts(events)
    assert texts == ["think jane@", "Mail jane.doe@example.com now", '{"to": "a@b.io"}', "{}"]
    masked = stream_with(events, ["think", "Mail [EMAIL_ADDRESS] now", '{"to": "[EMAIL_ADDRESS]"}', "{}"])
    assert masked == [
        ThinkingDelta("think"), ThinkingDelta(signature="sig"), TextDelta("Mail [EMAIL_ADDRESS] now"),
        ToolCallStart(0, "c0", "f"), ToolCallStart(1, "c1", "g"),
        ToolCallDelta(0, '{"to": "[EMAIL_ADDRESS]"}'), ToolCallDelta(1, "{}"),
        UsageEvent(Usage(1, 2)), FinishEvent("tool_calls"),
    ]
    assert stream_usage(events) == Usage(1, 2)


def _sse(obj: dict) -> bytes:  # type: ignore[type-arg]
    return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n".encode()


def test_a_responses_stream_and_body_are_read_as_the_ir():
    usage = {"input_tokens": 3, "output_tokens": 4}
    stream = b"".join([
        _sse({"type": "response.created", "response": {"status": "in_progress", "output": []}}),
        _sse({"type": "response.output_text.delta", "item_id": "m", "delta": "Hi "}),
        _sse({"type": "response.output_text.delta", "item_id": "m", "delta": "there"}),
        _sse({"type": "response.output_item.added", "item": {"type": "function_call", "id": "fc", "call_id": "c",
                                                             "name": "f", "arguments": ""}}),
        _sse({"type": "response.function_call_arguments.delta", "item_id": "fc", "delta": "{}"}),
        _sse({"type": "response.completed", "response": {"status": "completed", "usage": usage, "output": []}}),
    ])
    decoder = ResponsesStreamDecoder("openai")
    events = [ev for i in range(0, len(stream), 7) for ev in decoder.feed(stream[i:i + 7])] + decoder.finish()
    assert events == [TextDelta("Hi "), TextDelta("there"), ToolCallStart(0, "c", "f"), ToolCallDelta(0, "{}"),
                      UsageEvent(Usage(3, 4)), FinishEvent("tool_calls")]
    body = {"id": "resp_1", "model": "gpt", "status": "completed", "usage": usage, "output": [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "R"}]},
        {"type": "message", "content": [{"type": "output_text", "text": "Hi"}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]}
    result = decode_result(json.dumps(body).encode(), "openai")
    assert [getattr(p, "text", None) for p in result.parts[:2]] == ["R", "Hi"]
    assert result.parts[2] == ToolCallPart("c", "f", "{}") and result.finish_reason == "tool_calls"
