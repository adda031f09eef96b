"""The OpenAI Responses client codec: request -> IR, IR result -> Response, IR events -> SSE events.

Everything the codec emits is checked against the installed openai SDK's own types, and
streams are replayed through the SDK's stream accumulator (what ``client.responses.stream``
uses), so a shape the SDK would reject fails here.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import msgspec
import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from gateway.codecs import openai_responses as codec
from gateway.errors import BadRequest, InvalidJSON, RateLimited, UpstreamTimeout
from gateway.ir import (
    ChatResult,
    FinishEvent,
    ImagePart,
    ResponseFormat,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    Usage,
    UsageEvent,
)
from gateway.streaming.sse import SSEDecoder

STREAM_EVENT = TypeAdapter(ResponseStreamEvent)


def body(**fields: Any) -> bytes:
    return json.dumps({"model": "my-endpoint", **fields}).encode()


CODEX_TOOLS = [
    {"type": "function", "name": "shell", "description": "Run a command", "strict": False,
     "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                    "required": ["command"], "additionalProperties": False}},
    {"type": "namespace", "name": "mcp__docs", "description": "Docs server",
     "tools": [{"type": "function", "name": "search", "parameters": {"type": "object", "properties": {}}}]},
    {"type": "web_search", "external_web_access": False},
    {"type": "custom", "name": "apply_patch", "description": "Apply a patch",
     "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
    {"type": "local_shell"},
]

CODEX_INPUT = [
    {"type": "message", "role": "developer",
     "content": [{"type": "input_text", "text": "<permissions>read-only</permissions>"}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context/>"},
                                                    {"type": "input_text", "text": "List the files"}]},
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Thinking"}],
     "content": None, "encrypted_content": "gAAAAB-opaque"},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Running ls."}]},
    {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "shell",
     "arguments": "{\"command\":[\"ls\"]}"},
    {"type": "function_call", "call_id": "call_b", "name": "shell", "arguments": "{\"command\":[\"pwd\"]}"},
    {"type": "function_call_output", "call_id": "call_a", "output": "README.md\nsrc"},
    {"type": "function_call_output", "call_id": "call_b",
     "output": [{"type": "input_text", "text": "/repo"}, {"type": "input_image", "image_url": "https://x/y.png"}]},
    {"type": "custom_tool_call", "call_id": "call_c", "name": "apply_patch", "input": "*** Begin Patch"},
    {"type": "custom_tool_call_output", "call_id": "call_c", "output": "ok"},
    {"type": "item_reference", "id": "msg_old"},
    {"role": "user", "content": "Now summarise"},
]

CODEX_REQUEST = body(
    instructions="You are Codex.", input=CODEX_INPUT, tools=CODEX_TOOLS, tool_choice="auto",
    parallel_tool_calls=False, reasoning={"effort": "medium", "summary": "auto"}, store=False, stream=True,
    include=["reasoning.encrypted_content"], prompt_cache_key="session-42", text={"verbosity": "medium"},
)


# ---- request -> IR -----------------------------------------------------------------------

def test_codex_request_becomes_ir_conversation():
    req = codec.decode_request(CODEX_REQUEST)
    assert req.model == "my-endpoint"
    assert req.system == ("You are Codex.", "<permissions>read-only</permissions>")
    assert [m.role for m in req.messages] == ["user", "assistant", "tool", "tool", "user"]
    assert req.messages[0].parts == (TextPart("<environment_context/>"), TextPart("List the files"))
    assert req.messages[1].parts == (
        TextPart("Running ls."),
        ToolCallPart("call_a", "shell", '{"command":["ls"]}'),
        ToolCallPart("call_b", "shell", '{"command":["pwd"]}'),
    )
    assert req.messages[2].parts == (ToolResultPart("call_a", "README.md\nsrc", "shell"),)
    assert req.messages[3].parts == (ToolResultPart("call_b", "/repo", "shell"),)  # the image is dropped
    assert req.messages[4].parts == (TextPart("Now summarise"),)
    assert req.stream and req.include_usage
    assert req.parallel_tool_calls is False
    assert req.tool_choice == ToolChoice("auto")


def test_codex_request_drops_reasoning_items_and_built_in_tools():
    req = codec.decode_request(CODEX_REQUEST)
    assert not any(isinstance(p, ThinkingPart) for m in req.messages for p in m.parts)
    assert [t.name for t in req.tools] == ["shell"]
    assert msgspec.json.decode(req.tools[0].parameters)["required"] == ["command"]
    assert req.tools[0].description == "Run a command"


def test_function_calls_without_preceding_text_form_their_own_assistant_message():
    req = codec.decode_request(body(input=[
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ]))
    assert [m.role for m in req.messages] == ["user", "assistant", "tool"]
    assert [p.id for p in req.messages[1].parts] == ["c1", "c2"]


def test_string_input_becomes_one_user_message_with_sampling_settings():
    req = codec.decode_request(body(input="Hello", instructions="Be brief", max_output_tokens=64,
                                    temperature=0.2, top_p=0.9, user="u1"))
    assert [m.role for m in req.messages] == ["user"]
    assert req.messages[0].parts == (TextPart("Hello"),)
    assert req.system == ("Be brief",)
    assert (req.max_tokens, req.temperature, req.top_p, req.user) == (64, 0.2, 0.9, "u1")
    assert req.stream is False and req.tools == () and req.tool_choice is None


def test_text_format_becomes_response_format():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    req = codec.decode_request(body(input="x", text={"format": {
        "type": "json_schema", "name": "thing", "schema": schema, "strict": True}}))
    fmt = req.response_format
    assert (fmt.type, fmt.name, fmt.strict) == ("json_schema", "thing", True)
    assert msgspec.json.decode(fmt.schema) == schema
    req = codec.decode_request(body(input="x", text={"format": {"type": "json_object"}}))
    assert req.response_format == ResponseFormat("json_object")


def test_named_function_tool_choice_forces_that_function():
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    req = codec.decode_request(body(input="x", tools=tools, tool_choice={"type": "function", "name": "f"}))
    assert req.tool_choice == ToolChoice("required", "f")
    req = codec.decode_request(body(input="x", tools=tools, tool_choice={"type": "web_search"}))
    assert req.tool_choice is None


def test_input_images_by_url_and_data_url():
    req = codec.decode_request(body(input=[{"role": "user", "content": [
        {"type": "input_text", "text": "what is this"},
        {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"},
        {"type": "input_image", "image_url": "data:image/jpeg;base64,QUJD"},
    ]}]))
    assert req.messages[0].parts[1:] == (
        ImagePart(url="https://example.com/cat.png", detail="low"),
        ImagePart(data="QUJD", media_type="image/jpeg"),
    )


@pytest.mark.parametrize("raw,error,param", [
    (b"{not json", InvalidJSON, None),
    (json.dumps({"input": "hi"}).encode(), BadRequest, None),
    (body(input=[{"type": "function_call", "name": "f", "arguments": "{}"}]), BadRequest, "input[0]"),
    (body(input=[{"role": "user", "content": [{"type": "input_text", "text": 5}]}]), BadRequest,
     "input[0].content[0].text"),
    (body(input=[{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]), BadRequest, "input[1].role"),
    (body(input=[{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]), BadRequest,
     "input[0].content[0].type"),
    (body(input=[{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]), BadRequest,
     "input[0].content[0].image_url"),
    (body(input=[{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png,abc"}]}]),
     BadRequest, "input[0].content[0].image_url"),
    (body(input=[{"type": "reasoning", "id": "rs_1", "summary": []}]), BadRequest, "input"),
    (body(input=[]), BadRequest, "input"),
    (body(input="hi", text={"format": {"type": "json_schema", "name": "x"}}), BadRequest, "text.format.schema"),
    (body(input="hi", tools=[{"type": "function"}]), BadRequest, "tools[0]"),
    (body(input="hi", tools=[{"type": "function", "name": "f"}], tool_choice={"type": "function"}), BadRequest,
     "tool_choice.name"),
    (body(input=7), BadRequest, "input"),
])
def test_bad_requests_name_the_field(raw: bytes, error: type, param: str | None):
    with pytest.raises(error) as info:
        codec.decode_request(raw)
    assert type(info.value) is error
    if param is not None:
        assert info.value.param == param
        assert param in info.value.message or param.split(".")[-1] in info.value.message


def test_missing_model_is_named():
    with pytest.raises(BadRequest) as info:
        codec.decode_request(json.dumps({"input": "hi"}).encode())
    assert "model" in info.value.message


def test_view_reads_routing_and_state_fields_only():
    view = codec.decode_view(body(input=[{"type": "new_kind_of_item"}], stream=True, store=False,
                                  previous_response_id="resp_9"))
    assert (view.model, view.stream, view.store, view.previous_response_id) == ("my-endpoint", True, False, "resp_9")
    with pytest.raises(InvalidJSON):
        codec.decode_view(b"{")


# ---- IR result -> Response ---------------------------------------------------------------

RESULT = ChatResult(
    id="x", model="provider-model", created=1700000000, finish_reason="tool_calls",
    parts=[ThinkingPart("Let me look.", "sig-1"), TextPart("Checking "), TextPart("now."),
           ToolCallPart("call_1", "get_weather", '{"city":"Paris"}'), ToolCallPart("call_2", "get_time", "{}")],
    usage=Usage(input_tokens=100, output_tokens=20, cache_read_tokens=40, reasoning_tokens=8),
)


def test_result_is_a_response_the_sdk_accepts():
    resp = Response.model_validate_json(codec.encode_result(RESULT, "my-endpoint", "resp_abc"))
    assert (resp.id, resp.object, resp.model, resp.status) == ("resp_abc", "response", "my-endpoint", "completed")
    assert resp.output_text == "Checking now."
    assert [item.type for item in resp.output] == ["reasoning", "message", "function_call", "function_call"]
    reasoning, message, call_1, call_2 = resp.output
    assert reasoning.encrypted_content == "sig-1" and reasoning.content[0].text == "Let me look."
    assert message.id.startswith("msg_") and message.content[0].annotations == []
    assert (call_1.call_id, call_1.name, call_1.arguments, call_1.status) == (
        "call_1", "get_weather", '{"city":"Paris"}', "completed")
    assert call_1.id.startswith("fc_") and call_1.id != call_2.id
    usage = resp.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (100, 20, 120)
    assert usage.input_tokens_details.cached_tokens == 40
    assert usage.output_tokens_details.reasoning_tokens == 8
    assert (resp.tools, resp.tool_choice, resp.parallel_tool_calls) == ([], "auto", True)


def test_length_finish_is_an_incomplete_response():
    result = ChatResult("x", "m", [TextPart("Once upon")], "length", Usage(5, 16))
    resp = Response.model_validate_json(codec.encode_result(result, "ep", "resp_1"))
    assert resp.status == "incomplete"
    assert resp.incomplete_details.reason == "max_output_tokens"


def test_response_echoes_the_request_settings():
    echo = codec.echo_of(codec.decode_view(CODEX_REQUEST))
    resp = Response.model_validate_json(codec.encode_result(RESULT, "my-endpoint", "resp_abc", echo))
    assert resp.instructions == "You are Codex."
    assert [t.type for t in resp.tools] == ["function", "namespace", "web_search", "custom", "local_shell"]
    assert resp.parallel_tool_calls is False and resp.tool_choice == "auto"
    assert resp.reasoning.effort == "medium" and resp.prompt_cache_key == "session-42"
    assert json.loads(codec.encode_result(RESULT, "my-endpoint", "resp_abc", echo))["store"] is False


def test_null_settings_are_accepted_and_echoed_as_openais_defaults():
    view = codec.decode_view(body(input="hi", parallel_tool_calls=None, store=None, truncation=None, tools=None,
                                  tool_choice=None, text=None, metadata=None))
    echoed = json.loads(codec.encode_result(RESULT, "ep", "resp_abc", codec.echo_of(view)))
    Response.model_validate(echoed)
    assert (echoed["parallel_tool_calls"], echoed["store"], echoed["truncation"], echoed["tools"]) == (
        True, True, "disabled", [])
    assert (echoed["tool_choice"], echoed["text"], echoed["metadata"]) == ("auto", {"format": {"type": "text"}}, {})


def test_output_items_are_the_items_of_the_encoded_response():
    encoded = json.loads(codec.encode_result(RESULT, "ep", "resp_abc"))["output"]
    assert [msgspec.json.decode(raw) for raw in codec.output_items(RESULT, "resp_abc")] == encoded


# ---- IR events -> Responses SSE ----------------------------------------------------------

def run_stream(batches: list[list[Any]]) -> tuple[list[Any], Any, codec.ResponsesStreamEncoder]:
    """Encode, check every event against the SDK, and accumulate them as the SDK's stream helper does."""
    encoder = codec.ResponsesStreamEncoder("resp_s", "my-endpoint")
    data = b"".join(encoder.encode(batch) for batch in batches) + encoder.finish()
    sse = SSEDecoder()
    frames = sse.feed(data) + sse.finish()
    events = [STREAM_EVENT.validate_json(frame.data) for frame in frames]
    assert [frame.event for frame in frames] == [ev.type for ev in events]
    assert [ev.sequence_number for ev in events] == list(range(len(events)))
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for ev in events:
        state.handle_event(ev)
    return events, events[-1].response, encoder


def test_text_stream_accumulates_to_the_full_text_and_usage():
    events, final, encoder = run_stream([
        [TextDelta("Hel")], [TextDelta("lo"), TextDelta("")], [FinishEvent("stop")],
        [UsageEvent(Usage(input_tokens=9, output_tokens=2, cache_read_tokens=4))],
    ])
    assert [ev.type for ev in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed",
    ]
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    assert final.status == "completed" and final.output_text == "Hello"
    assert (final.usage.input_tokens, final.usage.output_tokens, final.usage.total_tokens) == (9, 2, 11)
    assert final.usage.input_tokens_details.cached_tokens == 4
    assert encoder.usage == Usage(input_tokens=9, output_tokens=2, cache_read_tokens=4)
    assert encoder.output_chars == 5


def test_interleaved_parallel_tool_calls_get_their_own_items():
    events, final, encoder = run_stream([
        [TextDelta("Looking up both.")],
        [ToolCallStart(0, "call_a", "get_weather"), ToolCallStart(1, "call_b", "get_time")],
        [ToolCallDelta(1, '{"tz":'), ToolCallDelta(0, '{"city":'), ToolCallDelta(1, '"UTC"}')],
        [ToolCallDelta(0, '"Paris"}'), FinishEvent("tool_calls"), UsageEvent(Usage(10, 7))],
    ])
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_a", "get_weather", '{"city":"Paris"}'), ("call_b", "get_time", '{"tz":"UTC"}')]
    assert [item.type for item in final.output] == ["message", "function_call", "function_call"]
    deltas = [ev for ev in events if ev.type == "response.function_call_arguments.delta"]
    by_item = {c.id: i for i, c in enumerate(final.output)}
    assert all(by_item[ev.item_id] == ev.output_index for ev in deltas)
    assert [ev.output_index for ev in deltas] == [2, 1, 2, 1]
    done = {ev.output_index: ev.arguments for ev in events if ev.type == "response.function_call_arguments.done"}
    assert done == {1: '{"city":"Paris"}', 2: '{"tz":"UTC"}'}
    assert encoder.output_chars == len("Looking up both.") + len('{"city":"Paris"}{"tz":"UTC"}')


def test_events_carry_the_fields_openais_spec_requires_beyond_the_python_sdk():
    """Clients with generated strict types (Rust, Java, .NET) need every required field: the
    arguments.done event's ``name``, and ``logprobs`` on each output_text part."""
    encoder = codec.ResponsesStreamEncoder("resp_s", "my-endpoint")
    data = encoder.encode([TextDelta("Checking."), ToolCallStart(0, "call_a", "get_weather"),
                           ToolCallDelta(0, '{"city":"Paris"}'), FinishEvent("tool_calls")]) + encoder.finish()
    sse = SSEDecoder()
    events = [json.loads(frame.data) for frame in sse.feed(data) + sse.finish()]
    (done,) = [ev for ev in events if ev["type"] == "response.function_call_arguments.done"]
    assert done["name"] == "get_weather"
    parts = [ev["part"] for ev in events if ev["type"].startswith("response.content_part.")]
    parts += [part for ev in events if ev["type"] == "response.output_item.done" and ev["item"]["type"] == "message"
              for part in ev["item"]["content"]]
    parts += json.loads(codec.encode_result(RESULT, "ep", "resp_abc"))["output"][1]["content"]
    assert len(parts) == 4 and all(part["logprobs"] == [] for part in parts)


def test_thinking_streams_as_reasoning_items_carrying_the_signature():
    events, final, _ = run_stream([
        [ThinkingDelta("First "), ThinkingDelta("thought."), ThinkingDelta(signature="sig-1")],
        [ThinkingDelta("Second."), ThinkingDelta(signature="sig-2")],
        [TextDelta("Answer.")], [FinishEvent("stop")],
    ])
    assert [item.type for item in final.output] == ["reasoning", "reasoning", "message"]
    first, second, _ = final.output
    assert (first.content[0].text, first.encrypted_content) == ("First thought.", "sig-1")
    assert (second.content[0].text, second.encrypted_content) == ("Second.", "sig-2")
    assert [ev.delta for ev in events if ev.type == "response.reasoning_text.delta"] == [
        "First ", "thought.", "Second."]
    assert final.output_text == "Answer."


def test_length_finish_ends_with_response_incomplete():
    events, final, _ = run_stream([[TextDelta("Once upon")], [FinishEvent("length")]])
    assert events[-1].type == "response.incomplete"
    assert final.status == "incomplete" and final.incomplete_details.reason == "max_output_tokens"


def test_empty_stream_still_opens_and_completes():
    events, final, encoder = run_stream([])
    assert [ev.type for ev in events] == ["response.created", "response.in_progress", "response.completed"]
    assert final.output == [] and final.usage is None and encoder.result_items == []


def test_result_items_are_the_completed_output():
    _, final, encoder = run_stream([[ThinkingDelta("hm", "s")], [TextDelta("Hi")],
                                    [ToolCallStart(0, "c", "f"), ToolCallDelta(0, "{}")]])
    stored = [msgspec.json.decode(raw) for raw in encoder.result_items]
    assert stored == [item.model_dump(exclude_none=True) for item in final.output]
    assert {item["id"] for item in stored} == {item.id for item in final.output}


def test_errors_inside_a_stream_are_sdk_error_events():
    event = STREAM_EVENT.validate_json(SSEDecoder().feed(codec.stream_error_event(UpstreamTimeout("slow")))[0].data)
    assert (event.type, event.message, event.code) == ("error", "slow", "upstream_timeout")

    encoder = codec.ResponsesStreamEncoder("resp_e", "ep")
    data = encoder.encode([TextDelta("partial")]) + encoder.error_event(RateLimited("Try again in 2s"))
    frames = SSEDecoder().feed(data)
    events = [STREAM_EVENT.validate_json(f.data) for f in frames]
    assert [ev.type for ev in events[-2:]] == ["error", "response.failed"]
    assert [ev.sequence_number for ev in events] == list(range(len(events)))
    failed = events[-1].response
    assert (failed.status, failed.error.code, failed.error.message) == ("failed", "rate_limit_exceeded",
                                                                        "Try again in 2s")


# ---- previous_response_id expansion ------------------------------------------------------

def test_expand_input_prepends_the_stored_conversation():
    view = codec.decode_view(body(input="What is 2+2?"))
    previous = codec.own_items(view) + codec.output_items(ChatResult("x", "m", [TextPart("4")], "stop"), "resp_prev")
    raw = body(input="And times 3?", previous_response_id="resp_prev", instructions="Be exact", store=True, stream=True)
    view = codec.decode_view(raw)
    own = codec.own_items(view)
    assert [msgspec.json.decode(item) for item in own] == [{"type": "message", "role": "user", "content": "And times 3?"}]
    expanded = codec.expand_input(raw, [*previous, *own])
    fields = json.loads(expanded)
    assert "previous_response_id" not in fields
    assert (fields["instructions"], fields["store"], fields["stream"]) == ("Be exact", True, True)
    assert [item.get("role") for item in fields["input"]] == ["user", "assistant", "user"]
    assert fields["input"][0] == {"type": "message", "role": "user", "content": "What is 2+2?"}
    for req in (codec.decode_request(expanded), codec.request_ir(view, [*previous, *own])):
        assert [(m.role, m.parts) for m in req.messages] == [
            ("user", (TextPart("What is 2+2?"),)), ("assistant", (TextPart("4"),)), ("user", (TextPart("And times 3?"),))]
        assert req.system == ("Be exact",)


def test_own_items_do_not_keep_the_request_body_alive():
    # The store holds them for an hour: a view's Raw items point into the whole body (tools,
    # instructions, images), which would stay in memory with every stored turn.
    raw = body(input=[{"role": "user", "content": "hi"}], instructions="x" * 100_000, tools=CODEX_TOOLS)
    before = sys.getrefcount(raw)
    items = codec.own_items(codec.decode_view(raw))
    assert sys.getrefcount(raw) == before
    assert [json.loads(bytes(item)) for item in items] == [{"role": "user", "content": "hi"}]


def test_expand_input_keeps_item_list_input_and_unknown_items():
    current = [{"type": "function_call_output", "call_id": "c1", "output": "42"}, {"type": "future_item", "x": 1}]
    previous = [msgspec.Raw(b'{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"}')]
    raw = body(input=current, previous_response_id="resp_p", service_tier="flex")
    fields = json.loads(codec.expand_input(raw, [*previous, *codec.own_items(codec.decode_view(raw))]))
    assert fields["input"] == [msgspec.json.decode(previous[0]), *current]
    assert fields["service_tier"] == "flex"
    assert codec.own_items(codec.decode_view(body())) == []
    with pytest.raises(InvalidJSON):
        codec.expand_input(b"{", [])


def test_a_request_continuing_a_stored_conversation_is_refused_without_it():
    with pytest.raises(BadRequest) as info:
        codec.request_ir(codec.decode_view(body(input="hi", previous_response_id="resp_1")))
    assert info.value.param == "previous_response_id"
    assert info.value.message == "Previous response with id 'resp_1' not found."


@pytest.mark.parametrize("field, value", [
    ("instructions", 5), ("tool_choice", "sometimes"), ("text", {"format": {"type": "yaml"}}),
    ("reasoning", "high"), ("metadata", {"a": 1}), ("include", "all"),
])
def test_settings_kept_as_sent_are_still_checked_for_the_ir(field, value):
    with pytest.raises(BadRequest) as info:
        codec.decode_request(body(input="hi", **{field: value}))
    assert info.value.param.startswith(field)


def test_absent_settings_stay_absent_in_the_ir_and_are_echoed_as_openai_defaults():
    view = codec.decode_view(body(input="hi", tools=[{"type": "function", "name": "f"}]))
    req = codec.request_ir(view)
    assert (req.parallel_tool_calls, req.tool_choice, req.response_format) == (None, None, None)
    echo = codec.echo_of(view)
    assert (echo.parallel_tool_calls, bytes(echo.tool_choice), echo.store, echo.truncation) == (True, b'"auto"', True, "disabled")
