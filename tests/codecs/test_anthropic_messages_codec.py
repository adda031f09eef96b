"""The Anthropic Messages client codec: request -> IR, IR result -> message, IR events -> SSE events.

Every body the codec emits is validated by the installed anthropic SDK's own models, and
streams are replayed through the SDK's stream accumulator (what ``client.messages.stream``
uses to build its final message), so a shape or a block order the SDK would mishandle
fails here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message as SDKMessage
from anthropic.types import MessageTokensCount, RawMessageStreamEvent
from pydantic import TypeAdapter

from gateway.codecs import anthropic_messages as codec
from gateway.errors import BadRequest, InvalidJSON, RateLimited
from gateway.ir import (
    ChatResult, FinishEvent, ImagePart, Message, TextDelta, TextPart, ThinkingDelta, ThinkingPart,
    ToolCallDelta, ToolCallPart, ToolCallStart, ToolChoice, ToolResultPart, Usage, UsageEvent,
)
from gateway.ir.result import estimate_tokens
from gateway.providers.anthropic import REDACTED_THINKING_PREFIX

_sdk_event = TypeAdapter(RawMessageStreamEvent)

READ_SCHEMA = {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}

# Fields of today's and tomorrow's API (and of other APIs) that translation has no place for.
UNKNOWN_FIELDS: dict[str, Any] = {
    "thinking": {"type": "enabled", "budget_tokens": 31999},
    "output_config": {"effort": "high"},
    "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
    "top_k": 5,
    "service_tier": "auto",
    "container": "cntr_011",
    "mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "ex"}],
    "inference_geo": "us",
    "speed": "fast",
    "output_format": {"type": "json_schema", "schema": {"type": "object"}},
    "betas": ["interleaved-thinking-2025-05-14"],
    "anthropic_version": "bedrock-2023-05-31",
    "cache_control": {"type": "ephemeral"},
    "diagnostics": {"enabled": True},
    "citations": {"enabled": True},
    "prompt_caching": True,
    "reasoning_effort": "high",
    "max_thinking_tokens": 1024,
    "user": "not-the-anthropic-way",
    "n": 3,
    "seed": 7,
    "response_format": {"type": "json_object"},
    "tool_config": {"mode": "ANY"},
    "x_future_field": [1, {"nested": None}],
}

CLAUDE_CODE_REQUEST: dict[str, Any] = {
    "model": "system.ai.claude-sonnet-4-5",
    "max_tokens": 32000,
    "stream": True,
    "system": [
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ],
    "messages": [
        {"role": "system", "content": [{"type": "text", "text": "Extra system note."}]},
        {"role": "user", "content": [
            {"type": "text", "text": "Fix the bug", "cache_control": {"type": "ephemeral"}},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "spec"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Look at a.py first.", "signature": "EqQBCkYIBxgCKkA="},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
            {"type": "text", "text": "Reading both files."},
            {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {"query": "x"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": []},
            {"type": "tool_use", "id": "toolu_01", "name": "Read", "input": {"file_path": "/a.py"}},
            {"type": "tool_use", "id": "toolu_02", "name": "Read", "input": {"file_path": "/b.py"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "print(1)"},
            {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": True, "content": [
                {"type": "text", "text": "No such file"},
                {"type": "search_result", "source": "s", "title": "t", "content": []},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/shot.png"}},
                {"type": "text", "text": "Try /c.py"},
            ]},
            {"type": "text", "text": "Continue"},
            {"type": "container_upload", "file_id": "file_011"},
        ]},
    ],
    "tools": [
        {"name": "Read", "description": "Read a file", "input_schema": READ_SCHEMA,
         "cache_control": {"type": "ephemeral"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"type": "bash_20250124", "name": "bash"},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
        {"type": "custom", "name": "Write", "input_schema": {"type": "object", "properties": {}}},
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "temperature": 1,
    "stop_sequences": ["</done>"],
    "metadata": {"user_id": "user_abc_account__session_1"},
    **UNKNOWN_FIELDS,
}


def decode(body: dict[str, Any]):
    return codec.decode_request(json.dumps(body).encode())


def minimal(**fields: Any) -> dict[str, Any]:
    return {"model": "ep", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **fields}


# ---- request decoding ----------------------------------------------------------------------

def test_claude_code_request_decodes_to_ir():
    req = decode(CLAUDE_CODE_REQUEST)
    assert req.model == "system.ai.claude-sonnet-4-5"
    assert req.system == ("You are Claude Code.", "Be terse.", "Extra system note.")
    assert req.max_tokens == 32000 and req.temperature == 1 and req.top_p is None
    assert req.stop == ("</done>",) and req.stream and req.include_usage
    assert req.user == "user_abc_account__session_1"
    assert req.seed is None and req.response_format is None  # unknown here, even if known elsewhere
    assert [m.role for m in req.messages] == ["user", "assistant", "tool", "tool", "user"]

    user, assistant, result1, result2, follow_up = req.messages
    assert user.parts == (TextPart("Fix the bug"), ImagePart(data="iVBORw0KGgo=", media_type="image/png"))
    thinking, redacted, text, call1, call2 = assistant.parts
    assert thinking == ThinkingPart("Look at a.py first.", "EqQBCkYIBxgCKkA=")
    assert redacted == ThinkingPart("", REDACTED_THINKING_PREFIX + "EmwKAhgBEgy3va3pzix/LafPsn4a")
    assert text == TextPart("Reading both files.")
    assert (call1.id, call1.name, json.loads(call1.arguments)) == ("toolu_01", "Read", {"file_path": "/a.py"})
    assert (call2.id, json.loads(call2.arguments)) == ("toolu_02", {"file_path": "/b.py"})
    assert result1.parts == (ToolResultPart("toolu_01", "print(1)", "Read", False),)
    assert result2.parts == (ToolResultPart("toolu_02", "No such file\nTry /c.py", "Read", True),)
    # The tool result's image cannot ride in an IR tool result: it leads the user turn that follows.
    assert follow_up.parts == (ImagePart(url="https://example.com/shot.png"), TextPart("Continue"))

    assert [t.name for t in req.tools] == ["Read", "Write"]  # server tools skipped
    assert req.tools[0].description == "Read a file"
    assert json.loads(bytes(req.tools[0].parameters)) == READ_SCHEMA
    assert req.tool_choice == ToolChoice("auto") and req.parallel_tool_calls is False


def test_plain_string_contents_and_system():
    req = decode(minimal(system="Be kind.", messages=[
        {"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "Bye"},
    ]))
    assert req.system == ("Be kind.",)
    assert req.messages == (
        Message("user", (TextPart("Hello"),)), Message("assistant", (TextPart("Hi!"),)),
        Message("user", (TextPart("Bye"),)),
    )
    assert req.tools == () and req.tool_choice is None and req.stream is False and req.user is None


def test_user_turn_of_only_tool_results_adds_no_empty_user_message():
    req = decode(minimal(messages=[
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
    ]))
    assert [m.role for m in req.messages] == ["user", "assistant", "tool"]
    assert req.messages[2].parts == (ToolResultPart("t1", "", "f", False),)


@pytest.mark.parametrize("choice,expected,parallel", [
    ({"type": "auto"}, ToolChoice("auto"), None),
    ({"type": "any"}, ToolChoice("required"), None),
    ({"type": "tool", "name": "Read"}, ToolChoice("required", "Read"), None),
    ({"type": "none"}, ToolChoice("none"), None),
    ({"type": "any", "disable_parallel_tool_use": True}, ToolChoice("required"), False),
    ({"type": "auto", "disable_parallel_tool_use": False}, ToolChoice("auto"), None),
    ({"type": "tool", "name": "web_search"}, None, None),  # forced a server tool that was dropped
])
def test_tool_choice_maps_to_ir(choice, expected, parallel):
    tools = [{"name": "Read", "input_schema": READ_SCHEMA}, {"type": "web_search_20250305", "name": "web_search"}]
    req = decode(minimal(tools=tools, tool_choice=choice))
    assert (req.tool_choice, req.parallel_tool_calls) == (expected, parallel)


def test_tool_choice_is_dropped_when_only_server_tools_were_offered():
    req = decode(minimal(tools=[{"type": "bash_20250124", "name": "bash"}], tool_choice={"type": "any"}))
    assert (req.tools, req.tool_choice, req.parallel_tool_calls) == ((), None, None)


def test_count_tokens_request_needs_no_max_tokens():
    body = {"model": "ep", "messages": [{"role": "user", "content": "hi"}]}
    assert codec.decode_count_tokens_request(json.dumps(body).encode()).max_tokens is None


def test_missing_max_tokens_is_a_clear_400():
    with pytest.raises(BadRequest) as exc:
        decode({"model": "ep", "messages": [{"role": "user", "content": "hi"}]})
    assert exc.value.message == "max_tokens: Field required" and exc.value.param == "max_tokens"


@pytest.mark.parametrize("body,param,fragment", [
    (minimal(max_tokens="ten"), "max_tokens", "Expected `int | null`, got `str`"),
    (minimal(messages="hi"), "messages", "Expected `array`, got `str`"),
    (minimal(messages=[{"role": "tool", "content": "x"}]), "messages[0].role", "Invalid enum value 'tool'"),
    (minimal(temperature="hot"), "temperature", "Expected `float | null`, got `str`"),
    (minimal(messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}]),
     "messages[0].content[0]", "missing required field `media_type`"),
    (minimal(messages=[{"role": "user", "content": [{"text": "no type"}]}]),
     "messages[0].content[0]", "missing required field `type`"),
    (minimal(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [7]}]}]),
     "messages[0].content[0].content[0]", "Expected `object`, got `int`"),
    (minimal(messages=[{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]),
     "messages[0].content[0]", "tool_result blocks belong in user messages"),
    (minimal(messages=[]), "messages", "at least one message"),
    ({"max_tokens": 5, "messages": []}, None, "missing required field `model`"),
])
def test_wrong_types_are_400s_naming_the_field(body, param, fragment):
    with pytest.raises(BadRequest) as exc:
        decode(body)
    assert fragment in exc.value.message
    if param is not None:
        assert exc.value.param == param


def test_broken_json_is_invalid_json():
    with pytest.raises(InvalidJSON):
        codec.decode_request(b'{"model": "ep", ')


def test_view_reads_model_and_stream_of_any_request():
    view = codec.decode_view(json.dumps(CLAUDE_CODE_REQUEST).encode())
    assert (view.model, view.stream, view.max_tokens) == ("system.ai.claude-sonnet-4-5", True, 32000)
    with pytest.raises(BadRequest) as exc:
        codec.decode_view(b'{"model": "ep", "stream": "yes"}')
    assert exc.value.param == "stream"


def test_count_tokens_estimate_counts_prompt_and_tool_schemas():
    body = minimal(system="s" * 40, tools=[{"name": "Read", "description": "Read a file", "input_schema": READ_SCHEMA}])
    req = decode(body)
    schema_chars = len(bytes(req.tools[0].parameters))
    assert codec.count_tokens_estimate(req) == estimate_tokens(40 + 2 + len("Read") + len("Read a file") + schema_chars)
    assert codec.count_tokens_estimate(req) > codec.count_tokens_estimate(decode(minimal(system="s" * 40)))
    count = MessageTokensCount.model_validate_json(codec.encode_count_tokens(42))
    assert count.input_tokens == 42


# ---- results -------------------------------------------------------------------------------

RESULT = ChatResult(
    id="chatcmpl-123",
    model="gpt-x",
    parts=[
        ThinkingPart("Weigh the files.", "sig-1"),
        ThinkingPart("", REDACTED_THINKING_PREFIX + "opaque=="),
        TextPart("Reading them."),
        ToolCallPart("toolu_a", "Read", '{"file_path": "/a.py"}'),
        ToolCallPart("call_b", "Read", '{"file_path": '),  # truncated by a max_tokens stop
    ],
    finish_reason="tool_calls",
    usage=Usage(input_tokens=1000, output_tokens=50, cache_read_tokens=600, cache_write_tokens=100),
)


def test_result_is_a_message_the_sdk_accepts_field_by_field():
    body = codec.encode_result(RESULT, "my-endpoint")
    msg = SDKMessage.model_validate_json(body)
    assert (msg.id, msg.type, msg.role, msg.model) == ("msg_chatcmpl-123", "message", "assistant", "my-endpoint")
    assert (msg.stop_reason, msg.stop_sequence) == ("tool_use", None)
    assert [b.type for b in msg.content] == ["thinking", "redacted_thinking", "text", "tool_use", "tool_use"]
    assert (msg.content[0].thinking, msg.content[0].signature) == ("Weigh the files.", "sig-1")
    assert msg.content[1].data == "opaque=="
    assert msg.content[2].text == "Reading them."
    assert (msg.content[3].id, msg.content[3].name, msg.content[3].input) == ("toolu_a", "Read", {"file_path": "/a.py"})
    assert (msg.content[4].id, msg.content[4].input) == ("call_b", {})
    # IR input counts cached tokens (OpenAI semantics); Anthropic's input_tokens does not.
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (300, 50)
    assert (msg.usage.cache_read_input_tokens, msg.usage.cache_creation_input_tokens) == (600, 100)
    assert json.loads(body)["stop_sequence"] is None  # present, as Anthropic sends it


@pytest.mark.parametrize("finish,parts,stop", [
    ("stop", [TextPart("x")], "end_turn"),
    ("length", [TextPart("x")], "max_tokens"),
    ("content_filter", [], "refusal"),
    ("error", [TextPart("x")], "end_turn"),
    ("tool_calls", [ToolCallPart("t", "f", "{}")], "tool_use"),
    ("stop", [ToolCallPart("t", "f", "{}")], "tool_use"),  # a provider that ends tool turns with "stop"
    ("length", [ToolCallPart("t", "f", "{")], "max_tokens"),
])
def test_stop_reasons(finish, parts, stop):
    msg = SDKMessage.model_validate_json(codec.encode_result(ChatResult("msg_1", "m", parts, finish), "ep"))
    assert msg.stop_reason == stop and msg.id == "msg_1"


def test_result_usage_is_never_negative_and_estimated_when_missing():
    over = ChatResult("r", "m", [TextPart("x")], "stop", Usage(input_tokens=10, output_tokens=1, cache_read_tokens=20))
    assert SDKMessage.model_validate_json(codec.encode_result(over, "ep")).usage.input_tokens == 0
    none = ChatResult("r", "m", [TextPart("x" * 39)], "stop")
    usage = SDKMessage.model_validate_json(codec.encode_result(none, "ep")).usage
    assert (usage.input_tokens, usage.output_tokens) == (0, 10)


def test_unsigned_thinking_goes_out_with_an_empty_signature():
    result = ChatResult("r", "m", [ThinkingPart("hmm"), TextPart("ok")], "stop")
    msg = SDKMessage.model_validate_json(codec.encode_result(result, "ep"))
    assert (msg.content[0].thinking, msg.content[0].signature) == ("hmm", "")


def test_result_sent_back_next_turn_decodes_to_the_same_parts():
    content = json.loads(codec.encode_result(RESULT, "ep"))["content"]
    req = decode(minimal(messages=[{"role": "user", "content": "go"}, {"role": "assistant", "content": content}]))
    parts = req.messages[1].parts
    assert parts[:3] == tuple(RESULT.parts[:3])
    assert (parts[3].id, json.loads(parts[3].arguments)) == ("toolu_a", {"file_path": "/a.py"})
    assert (parts[4].id, json.loads(parts[4].arguments)) == ("call_b", {})


# ---- streams -------------------------------------------------------------------------------

def parse_sse(data: bytes) -> list[dict[str, Any]]:
    """A tiny SSE parse: each frame has one ``event:`` and one ``data:`` line, named alike."""
    assert data.endswith(b"\n\n")
    events = []
    for frame in data.decode().split("\n\n")[:-1]:
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        event = json.loads(data_line[len("data: "):])
        assert event["type"] == event_line[len("event: "):]
        events.append(event)
    return events


def assert_well_formed(events: list[dict[str, Any]]) -> None:
    """message_start first, message_stop last, blocks numbered 0.. and never interleaved."""
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    open_index, next_index = None, 0
    for e in events[1:-2]:
        if e["type"] == "content_block_start":
            assert open_index is None and e["index"] == next_index
            open_index = e["index"]
        elif e["type"] == "content_block_delta":
            assert e["index"] == open_index
        else:
            assert e["type"] == "content_block_stop" and e["index"] == open_index
            open_index, next_index = None, next_index + 1
    assert open_index is None


def replay(batches: list[list[Any]], message_id: str = "chatcmpl-9", model: str = "my-endpoint"):
    """Run batches through the encoder; return its parsed events and the SDK's accumulated message."""
    encoder = codec.AnthropicStreamEncoder(message_id, model)
    data = b"".join(encoder.encode(batch) for batch in batches) + encoder.finish()
    events = parse_sse(data)
    assert_well_formed(events)
    snapshot, json_bufs = None, {}
    for event in events:
        snapshot = accumulate_event(
            event=_sdk_event.validate_python(event), current_snapshot=snapshot, json_bufs=json_bufs,
        )
    final = SDKMessage.model_validate(snapshot.model_dump())
    return encoder, events, final


def test_text_stream_accumulates_with_final_usage():
    encoder, events, msg = replay([
        [TextDelta("Hel"), TextDelta("")], [TextDelta("lo")], [FinishEvent("stop"), UsageEvent(Usage(12, 3))],
    ])
    assert (msg.id, msg.model, msg.stop_reason) == ("msg_chatcmpl-9", "my-endpoint", "end_turn")
    assert [(b.type, b.text) for b in msg.content] == [("text", "Hello")]
    assert events[0]["message"]["usage"]["input_tokens"] == 0  # not known yet when the stream opens
    assert events[-2]["usage"] == {
        "input_tokens": 12, "output_tokens": 3, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
    }
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (12, 3)
    assert encoder.usage == Usage(12, 3) and encoder.output_chars == 5


def test_thinking_with_signature_then_text():
    _, events, msg = replay([
        [ThinkingDelta("Let me "), ThinkingDelta("think.")],
        [ThinkingDelta(signature="sig-A"), ThinkingDelta("More."), ThinkingDelta(signature="sig-B")],
        [ThinkingDelta(signature=REDACTED_THINKING_PREFIX + "opaque"), TextDelta("Answer.")],
        [FinishEvent("stop")],
    ])
    assert [b.type for b in msg.content] == ["thinking", "thinking", "redacted_thinking", "text"]
    assert (msg.content[0].thinking, msg.content[0].signature) == ("Let me think.", "sig-A")
    assert (msg.content[1].thinking, msg.content[1].signature) == ("More.", "sig-B")
    assert msg.content[2].data == "opaque" and msg.content[3].text == "Answer."
    deltas = [e["delta"]["type"] for e in events if e["type"] == "content_block_delta"]
    assert deltas == ["thinking_delta"] * 2 + ["signature_delta", "thinking_delta", "signature_delta", "text_delta"]


INTERLEAVED = [
    ToolCallStart(0, "call_a", "get_weather"),
    ToolCallStart(1, "call_b", "get_time"),
    ToolCallDelta(0, '{"city": '),
    ToolCallDelta(1, '{"tz": '),
    ToolCallStart(2, "call_c", "noop"),
    ToolCallDelta(0, '"Paris"'),
    ToolCallDelta(1, '"CET", "fmt": "24h"'),
    ToolCallDelta(0, "}"),
    ToolCallDelta(1, "}"),
    FinishEvent("tool_calls"),
    UsageEvent(Usage(input_tokens=1000, output_tokens=7, cache_read_tokens=800, cache_write_tokens=150)),
]


@pytest.mark.parametrize("batching", ["one batch", "one event per batch"])
def test_parallel_interleaved_tool_calls_become_separate_blocks(batching):
    batches = [INTERLEAVED] if batching == "one batch" else [[e] for e in INTERLEAVED]
    encoder, events, msg = replay([[TextDelta("Checking.")], *batches])
    assert [b.type for b in msg.content] == ["text", "tool_use", "tool_use", "tool_use"]
    calls = [(b.id, b.name, b.input) for b in msg.content[1:]]
    assert calls == [
        ("call_a", "get_weather", {"city": "Paris"}),
        ("call_b", "get_time", {"tz": "CET", "fmt": "24h"}),
        ("call_c", "noop", {}),
    ]
    for index, expected in ((1, {"city": "Paris"}), (2, {"tz": "CET", "fmt": "24h"})):
        partial = "".join(
            e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta" and e["index"] == index
        )
        assert json.loads(partial) == expected
    assert msg.stop_reason == "tool_use"
    # Cumulative usage in message_delta, input without the cached tokens.
    assert events[-2]["usage"] == {
        "input_tokens": 50, "output_tokens": 7, "cache_creation_input_tokens": 150, "cache_read_input_tokens": 800,
    }
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.cache_creation_input_tokens) == (
        50, 800, 150)
    assert encoder.output_chars == len("Checking.") + len('{"city": "Paris"}') + len('{"tz": "CET", "fmt": "24h"}')


def test_sequential_tool_calls_stream_live():
    encoder = codec.AnthropicStreamEncoder("msg_1", "ep")
    first = parse_sse(encoder.encode([ToolCallStart(0, "t0", "f"), ToolCallDelta(0, '{"a": 1}')]))
    assert first[-1]["delta"] == {"type": "input_json_delta", "partial_json": '{"a": 1}'}
    second = parse_sse(encoder.encode([ToolCallStart(1, "t1", "g"), ToolCallDelta(1, '{"b"')]))
    assert [e["type"] for e in second] == ["content_block_stop", "content_block_start", "content_block_delta"]
    assert second[1]["content_block"] == {"type": "tool_use", "id": "t1", "name": "g", "input": {}}
    assert second[2]["index"] == 1


def test_text_after_tool_calls_closes_them_in_order():
    _, _, msg = replay([[
        ToolCallStart(0, "t0", "f"), ToolCallStart(1, "t1", "g"), ToolCallDelta(1, '{"x": 2}'),
        ToolCallDelta(0, '{"y": 3}'), TextDelta("done"),
    ]])
    assert [(b.type, getattr(b, "input", None)) for b in msg.content] == [
        ("tool_use", {"y": 3}), ("tool_use", {"x": 2}), ("text", None),
    ]


def test_empty_stream_is_still_a_complete_message():
    _, events, msg = replay([])
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]
    assert msg.content == [] and msg.stop_reason == "end_turn" and msg.id == "msg_chatcmpl-9"


def test_stream_error_event_is_anthropic_shaped():
    data = codec.stream_error_event(RateLimited("slow down"))
    assert data.startswith(b"event: error\ndata: ")
    (event,) = parse_sse(data)
    assert event == {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
