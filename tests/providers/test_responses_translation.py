"""The provider side of Responses (what an agent app that serves Responses is sent, and how
its replies and streams read back), pure over bytes."""

from __future__ import annotations

import json

import msgspec
import pytest

from gateway.errors import UpstreamError, UpstreamUnavailable
from gateway.ir import (
    AgentFieldsEvent, ChatRequest, FinishEvent, ImagePart, Message, ResponseFormat, TextDelta, TextPart,
    ThinkingDelta, ThinkingPart, ToolCallDelta, ToolCallPart, ToolCallStart, ToolChoice, ToolResultPart, ToolSpec,
    UsageEvent,
)
from gateway.providers.openai_responses_translation import ResponsesStreamDecoder, decode_result, encode_request


def test_a_request_becomes_responses_input_items_with_the_agent_fields_as_sent():
    req = ChatRequest(
        model="apps/a", system=("be brief", "be kind"),
        messages=(
            Message("user", (TextPart("weather?"), ImagePart(data="AAAA", media_type="image/png"))),
            Message("assistant", (ThinkingPart("hmm"), TextPart("checking"), ToolCallPart("c1", "get_weather", '{"c":1}'))),
            Message("tool", (ToolResultPart("c1", "sunny"),)),
        ),
        tools=(ToolSpec("get_weather", "the weather", msgspec.Raw(b'{"type":"object"}')),),
        tool_choice=ToolChoice("required", "get_weather"), temperature=0.5, max_tokens=99, stop=("END",), seed=3,
        response_format=ResponseFormat("json_schema", "w", msgspec.Raw(b'{"type":"object"}'), True),
        agent_fields={"custom_inputs": msgspec.Raw(b'{"tier": "gold"}')},
    )
    body = json.loads(encode_request(req, "apps/a", stream=True))
    assert body == {
        "model": "apps/a", "instructions": "be brief\n\nbe kind", "stream": True,
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"},
                                         {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
            {"role": "assistant", "content": "checking"},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"c":1}'},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        ],
        "tools": [{"type": "function", "name": "get_weather", "description": "the weather",
                   "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "get_weather"}, "temperature": 0.5, "max_output_tokens": 99,
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}},
        "custom_inputs": {"tier": "gold"},
    }  # stop, seed and thinking have no Responses form


def _message(item_id: str, text: str) -> dict:
    return {"type": "message", "id": item_id, "role": "assistant", "content": [{"type": "output_text", "text": text}]}


def test_a_response_reads_back_without_the_agents_own_tool_steps():
    body = {"id": "resp_1", "status": "completed", "output": [
        {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "plan"}]},
        _message("m1", "Let me look."),
        {"type": "function_call", "call_id": "own", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "own", "output": "42"},
        _message("m2", "It is 42."),
        {"type": "function_call", "call_id": "yours", "name": "notify", "arguments": '{"x":1}'},
    ], "usage": {"input_tokens": 5, "output_tokens": 3},
        "custom_outputs": {"k": "v"}, "databricks_output": {"trace": {"info": {}}}}
    result = decode_result(json.dumps(body).encode(), "app")
    assert result.parts == [ThinkingPart("plan"), TextPart("Let me look.\n\nIt is 42."),
                            ToolCallPart("yours", "notify", '{"x":1}')]
    assert result.finish_reason == "tool_calls" and result.usage.input_tokens == 5
    assert {k: json.loads(bytes(v)) for k, v in result.agent_fields.items()} == {
        "custom_outputs": {"k": "v"}, "databricks_output": {"trace": {"info": {}}}}
    cut = decode_result(b'{"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, '
                        b'"output": [], "custom_outputs": null}', "app")
    assert cut.finish_reason == "length" and cut.agent_fields == {}


def _sse(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


# An MLflow-agent-server-style stream: deltas, then each item whole; a tool step of the agent's own.
RECORDED = b"".join([
    _sse({"type": "response.output_text.delta", "item_id": "m1", "delta": "Let me"}),
    _sse({"type": "response.output_text.delta", "item_id": "m1", "delta": " look."}),
    _sse({"type": "response.output_item.done", "item": _message("m1", "Let me look.")}),
    _sse({"type": "response.output_item.done", "item": {"type": "function_call", "call_id": "own", "name": "lookup",
                                                        "arguments": "{}"}}),
    _sse({"type": "response.output_item.done", "item": {"type": "function_call_output", "call_id": "own",
                                                        "output": "42"}}),
    _sse({"type": "response.output_item.done", "item": _message("m2", "It is 42."), "custom_outputs": {"n": 1}}),
    _sse({"type": "response.reasoning_summary_text.delta", "item_id": "rs", "delta": "done"}),
    _sse({"type": "response.output_item.done", "item": {"type": "function_call", "call_id": "yours", "name": "notify",
                                                        "arguments": '{"x":1}'}}),
    _sse({"databricks_output": {"trace": {"info": {"trace_id": "t"}}}}),
    b"data: [DONE]\n\n",
])


def _fields(**kw: object) -> AgentFieldsEvent:
    return AgentFieldsEvent({k: msgspec.Raw(json.dumps(v, separators=(", ", ": ")).encode()) for k, v in kw.items()})


def _decode(*chunks: bytes) -> list:
    decoder = ResponsesStreamDecoder("app")
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.finish()


def _normal(events: list) -> list:
    """Events with agent fields compared by their JSON, not their bytes' spacing."""
    return [{k: json.loads(bytes(v)) for k, v in e.fields.items()} if isinstance(e, AgentFieldsEvent) else e
            for e in events]


EXPECTED = [
    TextDelta("Let me"), TextDelta(" look."), TextDelta("\n\n"), TextDelta("It is 42."), {"custom_outputs": {"n": 1}},
    ThinkingDelta("done"), {"databricks_output": {"trace": {"info": {"trace_id": "t"}}}},
    ToolCallStart(0, "yours", "notify"), ToolCallDelta(0, '{"x":1}'), FinishEvent("tool_calls"),
]


def test_stream_decoder_gives_the_same_events_split_at_every_byte_offset():
    for offset in range(len(RECORDED) + 1):
        assert _normal(_decode(RECORDED[:offset], RECORDED[offset:])) == EXPECTED, offset


def test_openai_style_stream_ends_with_usage_from_response_completed():
    events = _decode(
        _sse({"type": "response.created", "response": {"status": "in_progress", "output": []}}),
        _sse({"type": "response.output_text.delta", "item_id": "m", "delta": "hi"}),
        _sse({"type": "response.completed", "response": {"status": "completed", "output": [_message("m", "hi")],
                                                         "usage": {"input_tokens": 2, "output_tokens": 1}}}),
    )
    assert events[0] == TextDelta("hi") and isinstance(events[1], UsageEvent) and events[1].usage.output_tokens == 1
    assert events[-1] == FinishEvent("stop")


def test_an_error_event_or_a_stream_without_an_end_fails():
    with pytest.raises(UpstreamError, match="tool crashed"):
        _decode(_sse({"type": "response.output_text.delta", "delta": "a"}), _sse({"error": "tool crashed"}))
    with pytest.raises(UpstreamError, match="overloaded"):
        _decode(_sse({"type": "error", "message": "overloaded"}))
    with pytest.raises(UpstreamUnavailable):
        _decode(_sse({"type": "response.output_text.delta", "delta": "a"}))
