"""The Anthropic Messages adapter: request encoding, result decoding, stream decoding, transport."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from aiohttp import web

from gateway.config import ProviderConfig
from gateway.errors import BadRequest, UpstreamInvalidResponse, UpstreamStatus, UpstreamUnavailable
from gateway.ir import (
    ChatRequest,
    FinishEvent,
    ImagePart,
    Message,
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
    ToolSpec,
    Usage,
    UsageEvent,
)
from gateway.providers.anthropic import (
    REDACTED_THINKING_PREFIX,
    AnthropicProvider,
    AnthropicStreamDecoder,
    decode_result,
    encode_request,
)
from gateway.config import Timeouts
from gateway.providers.base import Target
from gateway.providers.http import HttpClients


def user(*parts) -> Message:
    return Message("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def encoded(req: ChatRequest, stream: bool = False) -> dict:
    return msgspec.json.decode(encode_request(req, "claude-x", stream))


# ---- request encoding ----------------------------------------------------------------------

def test_system_becomes_text_blocks_and_max_tokens_defaults_to_4096():
    req = ChatRequest("ep", (user("hi"),), system=("Be brief.", "Be kind."))
    assert encoded(req) == {
        "model": "claude-x",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 4096,
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
    }


def test_unset_fields_are_absent_not_null():
    body = encode_request(ChatRequest("ep", (user("hi"),)), "claude-x", stream=False)
    assert b"null" not in body
    assert set(msgspec.json.decode(body)) == {"model", "messages", "max_tokens"}


def test_sampling_stop_and_user_map_while_seed_and_response_format_drop():
    req = ChatRequest(
        "ep", (user("hi"),), temperature=0.2, top_p=0.9, max_tokens=77, stop=("END",), seed=7,
        user="alice", response_format=ResponseFormat("json_schema", "x", msgspec.Raw(b"{}")),
    )
    body = encoded(req, stream=True)
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9 and body["max_tokens"] == 77
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "alice"}
    assert body["stream"] is True
    assert not {"seed", "response_format", "output_format", "user"} & set(body)


def test_multi_turn_with_parallel_tool_results_merges_into_one_user_turn():
    req = ChatRequest("ep", (
        user("Weather in Paris and Tokyo?"),
        Message("assistant", (
            ThinkingPart("Two cities.", signature="sig-1"),
            ThinkingPart("unsigned, from another provider"),
            TextPart("Checking."),
            ToolCallPart("toolu_A", "get_weather", '{"city": "Paris"}'),
            ToolCallPart("toolu_B", "get_weather", "{not json"),
            ToolCallPart("toolu_C", "get_time", ""),
        )),
        Message("tool", (ToolResultPart("toolu_A", "18C"),)),
        Message("tool", (ToolResultPart("toolu_B", "no such city", is_error=True),)),
        Message("tool", (ToolResultPart("toolu_C", "12:00"),)),
        user("Thanks"),
    ))
    assert encoded(req)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Tokyo?"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Two cities.", "signature": "sig-1"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_B", "name": "get_weather", "input": {}},
            {"type": "tool_use", "id": "toolu_C", "name": "get_time", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_A", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_B", "content": "no such city", "is_error": True},
            {"type": "tool_result", "tool_use_id": "toolu_C", "content": "12:00"},
            {"type": "text", "text": "Thanks"},
        ]},
    ]


def test_tool_results_lead_a_user_turn_and_emptied_messages_vanish():
    req = ChatRequest("ep", (
        user("go"),
        Message("assistant", (ToolCallPart("t1", "f", "{}"),)),
        user("note first"),
        Message("tool", (ToolResultPart("t1", "done"),)),
        Message("assistant", (ThinkingPart("unsigned"), TextPart(""))),  # nothing Anthropic accepts
        user("next"),
    ))
    messages = encoded(req)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["type"] for b in messages[2]["content"]] == ["tool_result", "text", "text"]


@pytest.mark.parametrize("choice,parallel,expected", [
    (None, None, None),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    (ToolChoice("auto"), None, {"type": "auto"}),
    (ToolChoice("required"), None, {"type": "any"}),
    (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
    (ToolChoice("required", "get_weather"), None, {"type": "tool", "name": "get_weather"}),
    (ToolChoice("none"), False, {"type": "none"}),
])
def test_tool_choice_maps(choice, parallel, expected):
    schema = msgspec.Raw(b'{"type":"object","properties":{"city":{"type":"string"}}}')
    req = ChatRequest("ep", (user("hi"),), tools=(
        ToolSpec("get_weather", "Weather by city", schema), ToolSpec("ping"),
    ), tool_choice=choice, parallel_tool_calls=parallel)
    body = encoded(req)
    assert body.get("tool_choice") == expected
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather by city", "input_schema": msgspec.json.decode(schema)},
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
    ]


def test_tool_choice_is_not_sent_without_tools():
    req = ChatRequest("ep", (user("hi"),), tool_choice=ToolChoice("required"), parallel_tool_calls=False)
    assert "tool_choice" not in encoded(req) and "tools" not in encoded(req)


@pytest.mark.parametrize("image,source", [
    (ImagePart(data="iVBORw0K", media_type="image/png"),
     {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}),
    (ImagePart(url="https://example.com/cat.jpg"), {"type": "url", "url": "https://example.com/cat.jpg"}),
    (ImagePart(url="data:image/jpeg;base64,/9j/4AAQ"),
     {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}),
])
def test_images_become_base64_or_url_sources(image, source):
    content = encoded(ChatRequest("ep", (user("what is this?", image),)))["messages"][0]["content"]
    assert content == [{"type": "text", "text": "what is this?"}, {"type": "image", "source": source}]


@pytest.mark.parametrize("image", [
    ImagePart(url="data:image/png,rawbytes"), ImagePart(data="abc"), ImagePart(),
])
def test_unusable_images_are_bad_requests(image):
    with pytest.raises(BadRequest):
        encode_request(ChatRequest("ep", (user(image),)), "claude-x", stream=False)


# ---- response decoding ---------------------------------------------------------------------

RESPONSE = b"""{
  "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
  "content": [
    {"type": "thinking", "thinking": "Look it up.", "signature": "sig-9"},
    {"type": "redacted_thinking", "data": "opaque=="},
    {"type": "text", "text": "Let me check.", "citations": null},
    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris", "days": [1, 2]}}
  ],
  "stop_reason": "tool_use", "stop_sequence": null, "container": null,
  "usage": {"input_tokens": 10, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 100,
            "output_tokens": 5, "service_tier": "standard"}
}"""


def test_decode_result_keeps_block_order_and_skips_unknown_blocks():
    result = decode_result(RESPONSE)
    assert (result.id, result.model, result.finish_reason) == ("msg_01", "claude-sonnet-4-5", "tool_calls")
    assert result.parts[:3] == [
        ThinkingPart("Look it up.", "sig-9"),
        ThinkingPart("", REDACTED_THINKING_PREFIX + "opaque=="),
        TextPart("Let me check."),
    ]
    call = result.parts[3]
    assert isinstance(call, ToolCallPart) and (call.id, call.name) == ("toolu_01", "get_weather")
    assert msgspec.json.decode(call.arguments) == {"city": "Paris", "days": [1, 2]}
    assert len(result.parts) == 4


def test_decoded_usage_counts_cached_tokens_in_the_input_total():
    assert decode_result(RESPONSE).usage == Usage(
        input_tokens=130, output_tokens=5, cache_read_tokens=100, cache_write_tokens=20
    )


def test_thinking_decoded_from_a_result_goes_back_unchanged():
    assistant = Message("assistant", tuple(decode_result(RESPONSE).parts))
    content = encoded(ChatRequest("ep", (user("q"), assistant)))["messages"][1]["content"]
    assert content[:2] == [
        {"type": "thinking", "thinking": "Look it up.", "signature": "sig-9"},
        {"type": "redacted_thinking", "data": "opaque=="},
    ]


@pytest.mark.parametrize("stop_reason,finish", [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter"), (None, "stop"),
])
def test_stop_reasons_map(stop_reason, finish):
    body = msgspec.json.encode({"id": "m", "model": "c", "content": [], "stop_reason": stop_reason,
                                "usage": {"input_tokens": 1, "output_tokens": 1}})
    assert decode_result(body).finish_reason == finish


@pytest.mark.parametrize("body", [b"not json", b'{"id": "m"}', b'{"id":"m","model":"c","content":[{"type":"text"}]}'])
def test_unparseable_results_raise_upstream_invalid_response(body):
    with pytest.raises(UpstreamInvalidResponse):
        decode_result(body)


# ---- stream decoding -----------------------------------------------------------------------

def sse(*events: str) -> bytes:
    out = []
    for data in events:
        kind = msgspec.json.decode(data)["type"]
        out.append(f"event: {kind}\ndata: {data}\n\n")
    return "".join(out).encode()


# Recorded shape of a real stream: thinking with signature, text, two parallel tool calls.
RECORDED = sse(
    '{"type":"message_start","message":{"id":"msg_01XY","type":"message","role":"assistant",'
    '"model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,'
    '"usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":2048,'
    '"output_tokens":2,"service_tier":"standard"}}}',
    '{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}',
    '{"type": "ping"}',
    '{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Two cities, "}}',
    '{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"so two calls."}}',
    '{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA=="}}',
    '{"type":"content_block_stop","index":0}',
    '{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}',
    '{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Checking Paris and Tōkyō "}}',
    '{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"for you ☂."}}',
    '{"type":"content_block_stop","index":1}',
    '{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{}}}',
    '{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}',
    '{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": "}}',
    '{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"\\"Paris\\"}"}}',
    '{"type":"content_block_stop","index":2}',
    '{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_01B","name":"get_weather","input":{}}}',
    '{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": \\"東京\\"}"}}',
    '{"type":"content_block_stop","index":3}',
    '{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}',
    '{"type":"message_stop"}',
)

EXPECTED = [
    ThinkingDelta("Two cities, "),
    ThinkingDelta("so two calls."),
    ThinkingDelta(signature="EqQBCgIYAhIM1gbcDa9GJwZA=="),
    TextDelta("Checking Paris and Tōkyō "),
    TextDelta("for you ☂."),
    ToolCallStart(0, "toolu_01A", "get_weather"),
    ToolCallDelta(0, '{"city": '),
    ToolCallDelta(0, '"Paris"}'),
    ToolCallStart(1, "toolu_01B", "get_weather"),
    ToolCallDelta(1, '{"city": "東京"}'),
    FinishEvent("tool_calls"),
    # message_delta usage is cumulative: 89 output tokens, not 2 + 89.
    UsageEvent(Usage(input_tokens=2520, output_tokens=89, cache_read_tokens=2048)),
]


def decode_all(*chunks: bytes) -> list:
    decoder = AnthropicStreamDecoder()
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.finish()


def test_stream_decoder_turns_the_recording_into_ir_events():
    decoder = AnthropicStreamDecoder()
    assert decoder.feed(RECORDED) + decoder.finish() == EXPECTED
    assert (decoder.id, decoder.model) == ("msg_01XY", "claude-sonnet-4-5-20250929")


def test_stream_decoder_gives_the_same_events_split_at_every_byte_offset():
    for offset in range(len(RECORDED) + 1):
        assert decode_all(RECORDED[:offset], RECORDED[offset:]) == EXPECTED, offset


def test_stream_decoder_gives_the_same_events_fed_byte_by_byte():
    assert decode_all(*(RECORDED[i:i + 1] for i in range(len(RECORDED)))) == EXPECTED


START = '{"type":"message_start","message":{"id":"m","model":"c","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}'
STOP = '{"type":"message_stop"}'


def test_stream_decoder_skips_block_delta_and_event_types_it_does_not_know():
    events = decode_all(sse(
        START,
        '{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"s","name":"web_search","input":{}}}',
        '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\\"q\\":1}"}}',
        '{"type":"content_block_stop","index":0}',
        '{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}',
        '{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{"x":1}}}',
        '{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"ok"}}',
        '{"type":"content_block_stop","index":1}',
        '{"type":"brand_new_event","payload":{}}',
        STOP,
    ))
    assert events == [TextDelta("ok")]


def test_a_tool_called_without_arguments_streams_an_empty_object():
    events = decode_all(sse(
        START,
        '{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"now","input":{}}}',
        '{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}',
        '{"type":"content_block_stop","index":0}',
        STOP,
    ))
    assert events == [ToolCallStart(0, "t", "now"), ToolCallDelta(0, "{}")]


def test_stream_error_event_raises_overloaded_after_the_events_before_it():
    decoder = AnthropicStreamDecoder()
    events = decoder.feed(sse(
        START,
        '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
        '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"partial"}}',
        '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
    ))
    assert events == [TextDelta("partial")]
    with pytest.raises(UpstreamStatus) as caught:
        decoder.finish()
    assert caught.value.upstream_status == 529 and caught.value.retryable
    assert caught.value.kind == "overloaded"


def test_stream_that_ends_before_message_stop_raises_unavailable():
    with pytest.raises(UpstreamUnavailable):
        decode_all(RECORDED[: RECORDED.index(b"event: message_delta")])


def test_garbage_in_a_stream_raises_upstream_invalid_response():
    with pytest.raises(UpstreamInvalidResponse):
        decode_all(b"event: message_start\ndata: {oops\n\n")


# ---- end to end against a fake upstream ----------------------------------------------------

class FakeAnthropic:
    """Records what the adapter sent; ``reply`` picks the answer."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.reply = self.json_reply
        self.provider: AnthropicProvider

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.path, {k.lower(): v for k, v in request.headers.items()}, await request.read()))
        return await self.reply(request)

    async def json_reply(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=RESPONSE, content_type="application/json")

    async def stream_reply(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for start in range(0, len(RECORDED), 97):  # odd-sized chunks cut events mid-way
            await resp.write(RECORDED[start:start + 97])
            await asyncio.sleep(0)
        return resp


@pytest.fixture
async def fake(aiohttp_server):
    upstream = FakeAnthropic()
    app = web.Application()
    app.router.add_post("/v1/messages", upstream.handle)
    server = await aiohttp_server(app)
    http = HttpClients()
    config = ProviderConfig(kind="anthropic", api_key="k", base_url=str(server.make_url("")),
                            headers={"Anthropic-Beta": "tools-2024"})
    upstream.provider = AnthropicProvider("anth", config, http)
    yield upstream
    await http.close()


REQUEST = ChatRequest("ep", (user("Weather?"),), system=("Be brief.",))


async def test_complete_sends_key_and_version_and_decodes_the_reply(fake):
    result = await fake.provider.complete(REQUEST, Target("claude-sonnet-4-5", Timeouts()))
    path, headers, body = fake.seen[0]
    assert path == "/v1/messages"
    assert headers["x-api-key"] == "k"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "tools-2024"
    assert headers["content-type"] == "application/json"
    assert body == encode_request(REQUEST, "claude-sonnet-4-5", stream=False)
    assert result.finish_reason == "tool_calls" and result.usage.input_tokens == 130


async def test_open_stream_yields_the_recorded_events(fake):
    fake.reply = fake.stream_reply
    stream = await fake.provider.open_stream(REQUEST, Target("claude-sonnet-4-5", Timeouts()))
    events = [event async for batch in stream for event in batch]
    assert events == EXPECTED
    _, headers, body = fake.seen[0]
    assert headers["x-api-key"] == "k" and headers["anthropic-version"] == "2023-06-01"
    assert msgspec.json.decode(body)["stream"] is True


async def overloaded(request: web.Request) -> web.StreamResponse:
    return web.json_response(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, status=529
    )


async def test_upstream_529_raises_a_retryable_upstream_status(fake):
    fake.reply = overloaded
    with pytest.raises(UpstreamStatus) as caught:
        await fake.provider.complete(REQUEST, Target("claude-sonnet-4-5", Timeouts()))
    assert caught.value.upstream_status == 529 and caught.value.retryable
    assert "Overloaded" in caught.value.message


async def test_open_stream_raises_before_returning_when_upstream_is_overloaded(fake):
    fake.reply = overloaded
    with pytest.raises(UpstreamStatus) as caught:
        await fake.provider.open_stream(REQUEST, Target("claude-sonnet-4-5", Timeouts()))
    assert caught.value.upstream_status == 529


async def test_invalid_json_body_raises_upstream_invalid_response(fake):
    async def garbage(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"<html>gateway timeout</html>", content_type="application/json")

    fake.reply = garbage
    with pytest.raises(UpstreamInvalidResponse):
        await fake.provider.complete(REQUEST, Target("claude-sonnet-4-5", Timeouts()))


async def test_error_event_mid_stream_raises_from_the_iteration(fake):
    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(RECORDED[: RECORDED.index(b"event: content_block_stop")])
        await resp.write(sse('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'))
        return resp

    fake.reply = cut
    stream = await fake.provider.open_stream(REQUEST, Target("claude-sonnet-4-5", Timeouts()))
    events = []
    with pytest.raises(UpstreamStatus) as caught:
        async for batch in stream:
            events += batch
    assert caught.value.upstream_status == 529
    assert events == EXPECTED[:3]


async def test_embed_is_a_bad_request(fake):
    with pytest.raises(BadRequest, match="no embeddings"):
        await fake.provider.embed(["x"], Target("claude-sonnet-4-5", Timeouts()))
