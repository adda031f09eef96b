"""Reading and rewriting the text of requests and replies, per wire format."""

from __future__ import annotations

import json

import msgspec
import pytest

from gateway.errors import BadRequest
from gateway.guards import request_texts
from gateway.guards.reply_texts import stream_texts, stream_usage, stream_with
from gateway.ir import FinishEvent, TextDelta, ThinkingDelta, ToolCallDelta, ToolCallStart, Usage, UsageEvent

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
