"""The OpenAI adapter's IR path: request encoding, result decoding, stream decoding, transport."""

from __future__ import annotations

import asyncio
import json

import msgspec
import pytest
from aiohttp import web

from gateway.config import ProviderConfig, Timeouts
from gateway.errors import BadRequest, UpstreamError, UpstreamInvalidResponse, UpstreamStatus, UpstreamUnavailable
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
from gateway.providers.base import Target
from gateway.providers.http import HttpClients
from gateway.providers.openai import OpenAICompatibleProvider, OpenAIProvider
from gateway.providers.openai_chat_translation import OpenAIChatStreamDecoder, decode_result, encode_request


def user(*parts) -> Message:
    return Message("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def encoded(req: ChatRequest, stream: bool = False, **flags) -> dict:
    return msgspec.json.decode(encode_request(req, "gpt-x", stream, **flags))


WEATHER = ToolSpec("get_weather", "Weather for a city",
                   msgspec.Raw(b'{"type":"object","properties":{"city":{"type":"string"}}}'))


# ---- request encoding ----------------------------------------------------------------------

def test_system_strings_lead_as_system_messages_and_lone_text_is_a_plain_string():
    req = ChatRequest("ep", (user("hi"),), system=("Be brief.", "Be kind."))
    assert encoded(req) == {
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "hi"},
        ],
    }


def test_unset_fields_are_absent_not_null():
    for stream in (False, True):
        body = encode_request(ChatRequest("ep", (user("hi"),)), "gpt-x", stream)
        assert b"null" not in body
    assert set(encoded(ChatRequest("ep", (user("hi"),)))) == {"model", "messages"}


def test_sampling_stop_seed_user_and_response_format_map():
    req = ChatRequest(
        "ep", (user("hi"),), temperature=0.0, top_p=0.9, stop=("END", "STOP"), seed=7, user="alice",
        response_format=ResponseFormat("json_schema", None, msgspec.Raw(b'{"type":"object"}'), True),
    )
    body = encoded(req)
    assert body["temperature"] == 0.0 and body["top_p"] == 0.9
    assert body["stop"] == ["END", "STOP"] and body["seed"] == 7 and body["user"] == "alice"
    # OpenAI requires json_schema.name; an unnamed IR schema still sends one.
    assert body["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "response", "schema": {"type": "object"}, "strict": True},
    }
    assert encoded(ChatRequest("ep", (user("hi"),), response_format=ResponseFormat("json_object")))[
        "response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("flag,field,absent", [
    (True, "max_completion_tokens", "max_tokens"),
    (False, "max_tokens", "max_completion_tokens"),
])
def test_max_tokens_field_follows_the_flag(flag, field, absent):
    body = encoded(ChatRequest("ep", (user("hi"),), max_tokens=77), max_completion_tokens=flag)
    assert body[field] == 77 and absent not in body


def test_stream_asks_for_the_usage_chunk():
    body = encoded(ChatRequest("ep", (user("hi"),)), stream=True)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_multi_turn_with_parallel_tool_calls_and_results_drops_thinking():
    req = ChatRequest("ep", (
        user("Weather in Paris and Tokyo?"),
        Message("assistant", (
            ThinkingPart("Two cities, so two calls.", "sig=="),
            TextPart("Checking."),
            ToolCallPart("call_A", "get_weather", '{"city":"Paris"}'),
            ToolCallPart("call_B", "get_weather", ""),
        )),
        Message("tool", (
            ToolResultPart("call_A", "18C", name="get_weather"),
            ToolResultPart("call_B", "boom", is_error=True),
        )),
        Message("assistant", (ThinkingPart("Only thinking here."),)),
        Message("assistant", (TextPart("Paris 18C; Tokyo failed."),)),
    ), tools=(WEATHER,))
    assert encoded(req)["messages"] == [
        {"role": "user", "content": "Weather in Paris and Tokyo?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_A", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_B", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
        ]},
        {"role": "tool", "content": "18C", "tool_call_id": "call_A"},
        {"role": "tool", "content": "boom", "tool_call_id": "call_B"},
        # The thinking-only turn vanished; thinking never goes back upstream.
        {"role": "assistant", "content": "Paris 18C; Tokyo failed."},
    ]


def test_an_assistant_turn_of_only_tool_calls_has_no_content():
    req = ChatRequest("ep", (user("x"), Message("assistant", (ToolCallPart("c", "f", "{}"),))))
    assert encoded(req)["messages"][1] == {
        "role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }


def test_tool_results_in_a_user_turn_become_tool_messages_ahead_of_its_text():
    req = ChatRequest("ep", (user(ToolResultPart("c", "42"), "And now?"),))
    assert encoded(req)["messages"] == [
        {"role": "tool", "content": "42", "tool_call_id": "c"},
        {"role": "user", "content": "And now?"},
    ]


def test_tools_are_functions_with_raw_parameters_or_an_empty_object_schema():
    req = ChatRequest("ep", (user("x"),), tools=(WEATHER, ToolSpec("now")))
    assert encoded(req)["tools"] == [
        {"type": "function", "function": {
            "name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }},
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}},
    ]


@pytest.mark.parametrize("choice,expected", [
    (ToolChoice("auto"), "auto"),
    (ToolChoice("none"), "none"),
    (ToolChoice("required"), "required"),
    (ToolChoice("required", "get_weather"), {"type": "function", "function": {"name": "get_weather"}}),
])
def test_tool_choice_maps(choice, expected):
    body = encoded(ChatRequest("ep", (user("x"),), tools=(WEATHER,), tool_choice=choice, parallel_tool_calls=False))
    assert body["tool_choice"] == expected and body["parallel_tool_calls"] is False


def test_tool_choice_and_parallel_tool_calls_are_not_sent_without_tools():
    body = encoded(ChatRequest("ep", (user("x"),), tool_choice=ToolChoice("none"), parallel_tool_calls=True))
    assert "tool_choice" not in body and "parallel_tool_calls" not in body and "tools" not in body


def test_images_become_image_url_parts_beside_text():
    req = ChatRequest("ep", (user(
        "What is in these?",
        ImagePart(url="https://example.com/cat.png", detail="low"),
        ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
    ),))
    assert encoded(req)["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]


@pytest.mark.parametrize("image", [ImagePart(data="AAAA"), ImagePart()])
def test_unusable_images_are_bad_requests(image):
    with pytest.raises(BadRequest):
        encode_request(ChatRequest("ep", (user(image),)), "gpt-x", False)


# ---- result decoding -----------------------------------------------------------------------

RESPONSE = json.dumps({
    "id": "chatcmpl-9x", "object": "chat.completion", "created": 1727000000, "model": "gpt-x-2025",
    "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Checking.", "refusal": None,
        "reasoning_content": "Two cities.",
        "tool_calls": [
            {"id": "call_A", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_B", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"東京"}'}},
        ],
    }}],
    "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160,
              "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 12, "audio_tokens": 0}},
    "system_fingerprint": "fp_1",
}).encode()


def test_decode_result_reads_reasoning_text_tool_calls_and_usage():
    result = decode_result(RESPONSE, "oa")
    assert (result.id, result.model, result.created) == ("chatcmpl-9x", "gpt-x-2025", 1727000000)
    assert result.parts == [
        ThinkingPart("Two cities."),
        TextPart("Checking."),
        ToolCallPart("call_A", "get_weather", '{"city":"Paris"}'),
        ToolCallPart("call_B", "get_weather", '{"city":"東京"}'),
    ]
    assert result.finish_reason == "tool_calls"
    assert result.usage == Usage(input_tokens=120, output_tokens=40, cache_read_tokens=64, reasoning_tokens=12)


def test_decode_result_of_a_sparse_compatible_server():
    body = b'{"choices":[{"message":{"content":"hi","reasoning":"hmm"},"finish_reason":"stop"}]}'
    result = decode_result(body)
    assert result.parts == [ThinkingPart("hmm"), TextPart("hi")]
    assert result.id.startswith("chatcmpl-") and result.usage is None


def test_a_refusal_becomes_the_reply_text():
    body = b'{"id":"c","model":"m","choices":[{"message":{"content":null,"refusal":"I cannot help."},"finish_reason":"stop"}]}'
    assert decode_result(body).parts == [TextPart("I cannot help.")]


@pytest.mark.parametrize("reason,finish", [
    ("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"), ("function_call", "tool_calls"),
    ("content_filter", "content_filter"), (None, "stop"), ("eos", "stop"),
])
def test_finish_reasons_map(reason, finish):
    body = json.dumps({"id": "c", "model": "m", "choices": [{"message": {"content": "x"}, "finish_reason": reason}]})
    assert decode_result(body.encode()).finish_reason == finish


@pytest.mark.parametrize("body", [b"<html>bad gateway</html>", b"[]", b'{"choices":"x"}', b'{"choices":[]}', b""])
def test_unparseable_results_raise_upstream_invalid_response(body):
    with pytest.raises(UpstreamInvalidResponse):
        decode_result(body)


# ---- stream decoding -----------------------------------------------------------------------

def sse(*events: str) -> bytes:
    return "".join(f"data: {data}\n\n" for data in events).encode()


HEAD = '"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1727000000,"model":"gpt-x-2025","system_fingerprint":"fp_1"'


def chunk(delta: str, finish: str = "null") -> str:
    return '{' + HEAD + ',"choices":[{"index":0,"delta":' + delta + ',"logprobs":null,"finish_reason":' + finish + '}],"usage":null}'


# Recorded shape of a real stream: text, two parallel tool calls whose argument fragments
# interleave, the finish chunk, the usage chunk (empty choices), and [DONE].
RECORDED = sse(
    chunk('{"role":"assistant","content":"","refusal":null}'),
    chunk('{"content":"Checking Paris and Tōkyō "}'),
    chunk('{"content":"for you ☂."}'),
    chunk('{"content":null,"tool_calls":[{"index":0,"id":"call_A","type":"function","function":{"name":"get_weather","arguments":""}}]}'),
    chunk('{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\": "}}]}'),
    chunk('{"tool_calls":[{"index":1,"id":"call_B","type":"function","function":{"name":"get_weather","arguments":""}}]}'),
    chunk('{"tool_calls":[{"index":1,"function":{"arguments":"{\\"city\\": \\"東京\\"}"}}]}'),
    chunk('{"tool_calls":[{"index":0,"function":{"arguments":"\\"Paris\\"}"}}]}'),
    chunk('{}', '"tool_calls"'),
    '{' + HEAD + ',"choices":[],"usage":{"prompt_tokens":472,"completion_tokens":89,"total_tokens":561,'
    '"prompt_tokens_details":{"cached_tokens":256,"audio_tokens":0},'
    '"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0}}}',
    "[DONE]",
)

EXPECTED = [
    TextDelta("Checking Paris and Tōkyō "),
    TextDelta("for you ☂."),
    ToolCallStart(0, "call_A", "get_weather"),
    ToolCallDelta(0, '{"city": '),
    ToolCallStart(1, "call_B", "get_weather"),
    ToolCallDelta(1, '{"city": "東京"}'),
    ToolCallDelta(0, '"Paris"}'),
    FinishEvent("tool_calls"),
    UsageEvent(Usage(input_tokens=472, output_tokens=89, cache_read_tokens=256)),
]


def decode_all(*chunks: bytes) -> list:
    decoder = OpenAIChatStreamDecoder()
    events = []
    for piece in chunks:
        events += decoder.feed(piece)
    return events + decoder.finish()


def test_stream_decoder_turns_the_recording_into_ir_events():
    decoder = OpenAIChatStreamDecoder()
    assert decoder.feed(RECORDED) + decoder.finish() == EXPECTED
    assert (decoder.id, decoder.model) == ("chatcmpl-B9", "gpt-x-2025")


def test_stream_decoder_gives_the_same_events_split_at_every_byte_offset():
    for offset in range(len(RECORDED) + 1):
        assert decode_all(RECORDED[:offset], RECORDED[offset:]) == EXPECTED, offset


def test_stream_decoder_gives_the_same_events_fed_byte_by_byte():
    assert decode_all(*(RECORDED[i:i + 1] for i in range(len(RECORDED)))) == EXPECTED


def test_reasoning_content_streams_as_thinking():
    events = decode_all(sse(
        chunk('{"role":"assistant","reasoning_content":"Let me "}'),
        chunk('{"reasoning_content":"think."}'),
        chunk('{"reasoning":"Newer vLLM."}'),
        chunk('{"content":"Done."}', '"stop"'),
        "[DONE]",
    ))
    assert events == [ThinkingDelta("Let me "), ThinkingDelta("think."), ThinkingDelta("Newer vLLM."),
                      TextDelta("Done."), FinishEvent("stop")]


def test_calls_sent_whole_at_one_index_are_told_apart_by_id():
    events = decode_all(sse(
        chunk('{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{}"}}]}'),
        chunk('{"tool_calls":[{"index":0,"id":"b","function":{"name":"g","arguments":"{\\"x\\":1}"}}]}', '"tool_calls"'),
    ))
    assert events == [ToolCallStart(0, "a", "f"), ToolCallDelta(0, "{}"),
                      ToolCallStart(1, "b", "g"), ToolCallDelta(1, '{"x":1}'), FinishEvent("tool_calls")]


def test_a_tool_call_that_starts_without_a_name_is_invalid():
    with pytest.raises(UpstreamInvalidResponse):
        decode_all(sse(chunk('{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}')))


def test_stream_error_event_raises_rate_limited_after_the_events_before_it():
    decoder = OpenAIChatStreamDecoder()
    events = decoder.feed(sse(
        chunk('{"content":"partial"}'),
        '{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}',
    ))
    assert events == [TextDelta("partial")]
    with pytest.raises(UpstreamStatus) as caught:
        decoder.finish()
    assert caught.value.upstream_status == 429 and caught.value.retryable
    assert "Rate limit reached" in caught.value.message


@pytest.mark.parametrize("error,status", [
    ('{"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}', 400),
    ('{"message":"The server had an error","type":"server_error","param":null,"code":null}', 500),
])
def test_stream_error_codes_map_to_upstream_statuses(error, status):
    with pytest.raises(UpstreamStatus) as caught:
        decode_all(sse('{"error":' + error + '}'))
    assert caught.value.upstream_status == status


def test_an_unknown_stream_error_is_an_upstream_error():
    with pytest.raises(UpstreamError) as caught:
        decode_all(sse('{"error":"something broke"}'))
    assert type(caught.value) is UpstreamError


@pytest.mark.parametrize("cut", [b'data: {"id":"chatcmpl-B9","object":"chat.completion.chunk","created":1727000000,'
                                 b'"model":"gpt-x-2025","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{},',
                                 b'"finish_reason":"tool_calls"'])
def test_stream_that_ends_before_done_or_a_finish_reason_raises_unavailable(cut):
    # Cut at an event boundary, and mid-event (half an event is left over).
    with pytest.raises(UpstreamUnavailable):
        decode_all(RECORDED[: RECORDED.index(cut)])


def test_stream_with_a_finish_reason_but_no_done_completes():
    assert decode_all(RECORDED[: RECORDED.index(b"data: [DONE]")]) == EXPECTED


def test_garbage_in_a_stream_raises_upstream_invalid_response():
    with pytest.raises(UpstreamInvalidResponse):
        decode_all(b"data: {oops\n\n")


# ---- end to end against a fake upstream ----------------------------------------------------

EMBEDDINGS = json.dumps({
    "object": "list", "model": "embed-x-2025",
    # Out of order on purpose: vectors must come back in input order.
    "data": [{"object": "embedding", "index": 1, "embedding": [0.3, 0.4]},
             {"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
    "usage": {"prompt_tokens": 9, "total_tokens": 9},
}).encode()


class FakeOpenAI:
    """Records what the adapter sent; ``reply`` picks the answer."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], bytes]] = []
        self.reply = self.json_reply
        self.provider: OpenAIProvider
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.path, {k.lower(): v for k, v in request.headers.items()}, await request.read()))
        return await self.reply(request)

    async def json_reply(self, request: web.Request) -> web.StreamResponse:
        body = EMBEDDINGS if request.path.endswith("/embeddings") else RESPONSE
        return web.Response(body=body, content_type="application/json")

    async def stream_reply(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for start in range(0, len(RECORDED), 97):  # odd-sized chunks cut events mid-way
            await resp.write(RECORDED[start:start + 97])
            await asyncio.sleep(0)
        return resp


@pytest.fixture
async def fake(aiohttp_server):
    upstream = FakeOpenAI()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", upstream.handle)
    app.router.add_post("/v1/embeddings", upstream.handle)
    server = await aiohttp_server(app)
    http = HttpClients()
    upstream.url = str(server.make_url("/v1"))
    upstream.provider = OpenAIProvider("oa", ProviderConfig(kind="openai", api_key="k", base_url=upstream.url), http)
    yield upstream
    await http.close()


REQUEST = ChatRequest("ep", (user("Weather?"),), system=("Be brief.",), tools=(WEATHER,), max_tokens=64)
TARGET = Target("gpt-x", Timeouts())


async def test_complete_sends_the_bearer_key_and_decodes_the_reply(fake):
    result = await fake.provider.complete(REQUEST, TARGET)
    path, headers, body = fake.seen[0]
    assert path == "/v1/chat/completions"
    assert headers["authorization"] == "Bearer k"
    assert headers["content-type"] == "application/json"
    assert body == encode_request(REQUEST, "gpt-x", stream=False)
    assert msgspec.json.decode(body)["max_completion_tokens"] == 64
    assert result.finish_reason == "tool_calls" and result.usage.input_tokens == 120


async def test_open_stream_asks_for_usage_and_yields_the_recorded_events(fake):
    fake.reply = fake.stream_reply
    stream = await fake.provider.open_stream(REQUEST, TARGET)
    events = [event async for batch in stream for event in batch]
    assert events == EXPECTED
    _, headers, body = fake.seen[0]
    sent = msgspec.json.decode(body)
    assert headers["authorization"] == "Bearer k"
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_a_compatible_server_gets_max_tokens_and_no_key(fake):
    provider = OpenAICompatibleProvider(
        "vllm", ProviderConfig(kind="openai_compatible", base_url=fake.url), fake.provider.http
    )
    await provider.complete(REQUEST, TARGET)
    _, headers, body = fake.seen[0]
    sent = msgspec.json.decode(body)
    assert sent["max_tokens"] == 64 and "max_completion_tokens" not in sent
    assert "authorization" not in headers


async def test_embed_posts_inputs_and_dimensions_and_orders_vectors_by_index(fake):
    result = await fake.provider.embed(["first", "second"], Target("embed-x", Timeouts()), dimensions=2)
    path, headers, body = fake.seen[0]
    assert path == "/v1/embeddings" and headers["authorization"] == "Bearer k"
    assert msgspec.json.decode(body) == {"model": "embed-x", "input": ["first", "second"], "dimensions": 2}
    assert result.vectors == [[0.1, 0.2], [0.3, 0.4]]
    assert result.model == "embed-x-2025"
    assert result.usage == Usage(input_tokens=9)


async def test_embed_without_dimensions_or_usage_estimates_tokens(fake):
    async def no_usage(request: web.Request) -> web.StreamResponse:
        return web.json_response({"data": [{"index": 0, "embedding": [1.0]}]})

    fake.reply = no_usage
    result = await fake.provider.embed(["abcdefg"], Target("embed-x", Timeouts()))
    assert "dimensions" not in msgspec.json.decode(fake.seen[0][2])
    assert result.usage == Usage(input_tokens=2, estimated=True)
    assert result.model == "embed-x"


async def test_embed_with_missing_vectors_raises_upstream_invalid_response(fake):
    with pytest.raises(UpstreamInvalidResponse):
        await fake.provider.embed(["a", "b", "c"], Target("embed-x", Timeouts()))


async def rate_limited(request: web.Request) -> web.StreamResponse:
    return web.json_response(
        {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
        status=429, headers={"retry-after": "3"},
    )


@pytest.mark.parametrize("call", ["complete", "open_stream", "embed"])
async def test_upstream_429_raises_a_retryable_upstream_status(fake, call):
    fake.reply = rate_limited
    with pytest.raises(UpstreamStatus) as caught:
        if call == "embed":
            await fake.provider.embed(["x"], TARGET)
        else:
            await getattr(fake.provider, call)(REQUEST, TARGET)
    assert caught.value.upstream_status == 429 and caught.value.retryable
    assert caught.value.retry_after == 3.0 and "Rate limit reached" in caught.value.message


@pytest.mark.parametrize("call", ["complete", "embed"])
async def test_invalid_json_body_raises_upstream_invalid_response(fake, call):
    async def garbage(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"<html>gateway timeout</html>", content_type="application/json")

    fake.reply = garbage
    with pytest.raises(UpstreamInvalidResponse):
        if call == "embed":
            await fake.provider.embed(["x"], TARGET)
        else:
            await fake.provider.complete(REQUEST, TARGET)


async def test_a_stream_cut_before_the_finish_raises_from_the_iteration(fake):
    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"\n\n".join(RECORDED.split(b"\n\n")[:4]) + b"\n\n")  # up to the first tool call
        return resp

    fake.reply = cut
    stream = await fake.provider.open_stream(REQUEST, TARGET)
    events = []
    with pytest.raises(UpstreamUnavailable):
        async for batch in stream:
            events += batch
    assert events == EXPECTED[:3]
