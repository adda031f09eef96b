"""The Gemini generateContent adapter: request encoding, result decoding, stream decoding, transport."""

from __future__ import annotations

import asyncio
import itertools
import re

import msgspec
import pytest
from aiohttp import web

from gateway.config import ProviderConfig
from gateway.errors import BadRequest, UpstreamInvalidResponse, UpstreamStatus, UpstreamTimeout, UpstreamUnavailable
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
from gateway.providers.gemini import GeminiProvider, GeminiStreamDecoder, decode_result, encode_request, new_call_id
from gateway.config import Timeouts
from gateway.providers.base import Target
from gateway.providers.http import HttpClients

GENERATED_ID = re.compile(r"call_[0-9a-f]{24}")


def user(*parts) -> Message:
    return Message("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def encoded(req: ChatRequest) -> dict:
    return msgspec.json.decode(encode_request(req))


# ---- request encoding ----------------------------------------------------------------------

def test_system_strings_become_system_instruction_parts():
    req = ChatRequest("ep", (user("hi"),), system=("Be brief.", "", "Be kind."))
    assert encoded(req) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Be kind."}]},
    }


def test_unset_fields_are_absent_not_null():
    body = encode_request(ChatRequest("ep", (user("hi"),)))
    assert b"null" not in body
    assert set(msgspec.json.decode(body)) == {"contents"}


def test_sampling_maps_to_generation_config_while_parallel_tool_calls_and_user_drop():
    req = ChatRequest(
        "ep", (user("hi"),), temperature=0.2, top_p=0.9, max_tokens=77, stop=("END",), seed=7,
        parallel_tool_calls=False, user="alice",
    )
    body = encoded(req)
    assert body["generationConfig"] == {
        "temperature": 0.2, "topP": 0.9, "maxOutputTokens": 77, "stopSequences": ["END"], "seed": 7,
    }
    assert set(body) == {"contents", "generationConfig"}


@pytest.mark.parametrize("fmt,expected", [
    (ResponseFormat("text"), None),
    (ResponseFormat("json_object"), {"responseMimeType": "application/json"}),
    (ResponseFormat("json_schema", "city", msgspec.Raw(b'{"type":"object","properties":{"name":{"type":"string"}}}'),
                    strict=True),
     {"responseMimeType": "application/json",
      "responseJsonSchema": {"type": "object", "properties": {"name": {"type": "string"}}}}),
])
def test_response_format_maps_to_mime_type_and_json_schema(fmt, expected):
    assert encoded(ChatRequest("ep", (user("hi"),), response_format=fmt)).get("generationConfig") == expected


def test_multi_turn_with_parallel_tool_calls_and_results():
    req = ChatRequest("ep", (
        user("Weather in Paris and Tokyo?"),
        Message("assistant", (
            ThinkingPart("Two cities.", signature="sig-thought"),
            TextPart("Checking."),
            ToolCallPart(new_call_id(), "get_weather", '{"city": "Paris"}', signature="sig-1"),
            ToolCallPart("gem-id-7", "get_weather", "{not json"),
            ToolCallPart("call_openai_XyZ", "get_time", ""),
        )),
    ))
    calls = req.messages[1].parts[2:]
    req = msgspec.structs.replace(req, messages=req.messages + (
        Message("tool", (ToolResultPart(calls[0].id, '{"temp": 18, "unit": "C"}'),)),
        Message("tool", (ToolResultPart("gem-id-7", "no such city", is_error=True),)),
        Message("tool", (ToolResultPart("call_openai_XyZ", "[1, 2]", name="get_time"),)),
        user("Thanks"),
    ))
    assert encoded(req)["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and Tokyo?"}]},
        {"role": "model", "parts": [
            {"text": "Checking."},
            # A gateway-made id means nothing to Gemini: only Gemini's own ids go back.
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "sig-1"},
            {"functionCall": {"name": "get_weather", "args": {}, "id": "gem-id-7"}},
            {"functionCall": {"name": "get_time", "args": {}, "id": "call_openai_XyZ"}},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"result": {"temp": 18, "unit": "C"}}}},
            {"functionResponse": {"name": "get_weather", "response": {"error": "no such city"}, "id": "gem-id-7"}},
            {"functionResponse": {"name": "get_time", "response": {"result": "[1, 2]"}, "id": "call_openai_XyZ"}},
            {"text": "Thanks"},
        ]},
    ]


def test_tool_result_without_a_name_or_earlier_call_is_a_bad_request():
    req = ChatRequest("ep", (user("x"), Message("tool", (ToolResultPart("nowhere", "42"),))))
    with pytest.raises(BadRequest, match="nowhere"):
        encode_request(req)


def test_messages_left_empty_vanish_and_neighbouring_model_turns_merge():
    req = ChatRequest("ep", (
        user("go"),
        Message("assistant", (ThinkingPart("only thinking", "sig"),)),
        Message("assistant", (TextPart("a"),)),
        Message("assistant", (TextPart(""), TextPart("b"))),
    ))
    assert encoded(req)["contents"] == [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [{"text": "a"}, {"text": "b"}]},
    ]


@pytest.mark.parametrize("choice,expected", [
    (None, None),
    (ToolChoice("auto"), {"functionCallingConfig": {"mode": "AUTO"}}),
    (ToolChoice("none"), {"functionCallingConfig": {"mode": "NONE"}}),
    (ToolChoice("required"), {"functionCallingConfig": {"mode": "ANY"}}),
    (ToolChoice("required", "get_weather"),
     {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}),
])
def test_tools_become_function_declarations_and_tool_choice_maps(choice, expected):
    schema = b'{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}'
    req = ChatRequest("ep", (user("hi"),), tools=(
        ToolSpec("get_weather", "Weather by city", msgspec.Raw(schema)), ToolSpec("ping"),
    ), tool_choice=choice)
    body = encoded(req)
    assert body.get("toolConfig") == expected
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather by city", "parametersJsonSchema": msgspec.json.decode(schema)},
        {"name": "ping"},
    ]}]


def test_tool_choice_is_not_sent_without_tools():
    assert set(encoded(ChatRequest("ep", (user("hi"),), tool_choice=ToolChoice("required")))) == {"contents"}


@pytest.mark.parametrize("image,part", [
    (ImagePart(data="iVBORw0K", media_type="image/png"), {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}}),
    (ImagePart(url="data:image/webp;base64,UklGRg=="), {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}}),
    (ImagePart(url="https://example.com/cat.png?size=large", detail="high"),
     {"fileData": {"fileUri": "https://example.com/cat.png?size=large", "mimeType": "image/png"}}),
    (ImagePart(url="http://example.com/photo"), {"fileData": {"fileUri": "http://example.com/photo", "mimeType": "image/jpeg"}}),
])
def test_images_become_inline_data_or_file_data(image, part):
    parts = encoded(ChatRequest("ep", (user("what is this?", image),)))["contents"][0]["parts"]
    assert parts == [{"text": "what is this?"}, part]


@pytest.mark.parametrize("image", [ImagePart(url="data:image/png,rawbytes"), ImagePart(data="abc"), ImagePart()])
def test_unusable_images_are_bad_requests(image):
    with pytest.raises(BadRequest):
        encode_request(ChatRequest("ep", (user(image),)))


# ---- response decoding ---------------------------------------------------------------------

RESPONSE = """{
  "candidates": [{
    "content": {"role": "model", "parts": [
      {"text": "**Looking it up**\\nThe user wants weather.", "thought": true},
      {"text": "Let me check."},
      {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
      {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "days": [1, 2]}}, "thoughtSignature": "CiQBsig=="},
      {"functionCall": {"id": "fc-42", "name": "get_time"}},
      {"text": "", "thoughtSignature": "trailing"}
    ]},
    "finishReason": "STOP", "index": 0, "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}]
  }],
  "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 30, "totalTokenCount": 195,
                    "cachedContentTokenCount": 100, "thoughtsTokenCount": 45,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 120}]},
  "modelVersion": "gemini-2.5-flash-001",
  "responseId": "mJ2XaOq4Ct3Xz7IP"
}""".encode()


def test_decode_result_keeps_part_order_and_maps_thoughts_and_calls():
    result = decode_result(RESPONSE, "gemini-2.5-flash")
    assert (result.id, result.model, result.finish_reason) == ("mJ2XaOq4Ct3Xz7IP", "gemini-2.5-flash-001", "tool_calls")
    assert result.parts[:2] == [ThinkingPart("**Looking it up**\nThe user wants weather."), TextPart("Let me check.")]
    first, second = result.parts[2:]
    assert GENERATED_ID.fullmatch(first.id)
    assert (first.name, first.signature) == ("get_weather", "CiQBsig==")
    assert msgspec.json.decode(first.arguments) == {"city": "Paris", "days": [1, 2]}
    assert second == ToolCallPart("fc-42", "get_time", "{}")


def test_decoded_usage_counts_thoughts_as_output_and_cached_as_input():
    assert decode_result(RESPONSE, "m").usage == Usage(
        input_tokens=120, output_tokens=75, cache_read_tokens=100, reasoning_tokens=45
    )


def test_calls_decoded_from_a_result_go_back_with_their_signature_and_gemini_id():
    assistant = Message("assistant", tuple(decode_result(RESPONSE, "m").parts))
    parts = encoded(ChatRequest("ep", (user("q"), assistant)))["contents"][1]["parts"]
    assert parts == [
        {"text": "Let me check."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "days": [1, 2]}}, "thoughtSignature": "CiQBsig=="},
        {"functionCall": {"name": "get_time", "args": {}, "id": "fc-42"}},
    ]


@pytest.mark.parametrize("reason,finish", [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
    ("BLOCKLIST", "content_filter"), ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "stop"), ("OTHER", "stop"), (None, "stop"),
])
def test_finish_reasons_map(reason, finish):
    candidate = {"content": {"role": "model", "parts": [{"text": "x"}]}}
    if reason:
        candidate["finishReason"] = reason
    result = decode_result(msgspec.json.encode({"candidates": [candidate]}), "m")
    assert result.finish_reason == finish and result.usage is None and result.model == "m"


def test_a_safety_blocked_candidate_without_content_decodes_to_content_filter():
    result = decode_result(b'{"candidates":[{"finishReason":"SAFETY","index":0}]}', "m")
    assert result.finish_reason == "content_filter" and result.parts == []


def test_a_blocked_prompt_decodes_to_content_filter_with_no_parts():
    body = b'{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8}}'
    result = decode_result(body, "m")
    assert (result.finish_reason, result.parts, result.usage.input_tokens) == ("content_filter", [], 8)


@pytest.mark.parametrize("body", [b"not json", b'{"candidates": {}}', b'{"candidates":[{"content":{"parts":[{"text":1}]}}]}'])
def test_unparseable_results_raise_upstream_invalid_response(body):
    with pytest.raises(UpstreamInvalidResponse):
        decode_result(body, "m")


# ---- stream decoding -----------------------------------------------------------------------

def sse(*chunks: str) -> bytes:
    # Gemini ends each event with CRLF CRLF.
    return "".join(f"data: {c}\r\n\r\n" for c in chunks).encode()


# Recorded shape of a real gemini-2.5-flash stream with includeThoughts: a thought, text,
# then two parallel function calls in one chunk; usage comes cumulative in every chunk.
RECORDED = sse(
    '{"candidates": [{"content": {"parts": [{"text": "**Two cities**\\nI will call the tool twice.","thought": true}],'
    '"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 52,"totalTokenCount": 140,'
    '"promptTokensDetails": [{"modality": "TEXT","tokenCount": 52}],"thoughtsTokenCount": 88},'
    '"modelVersion": "gemini-2.5-flash","responseId": "mJ2XaOq4Ct3Xz7IP"}',
    '{"candidates": [{"content": {"parts": [{"text": "Checking Paris and Tōkyō "}],"role": "model"},"index": 0}],'
    '"usageMetadata": {"promptTokenCount": 52,"candidatesTokenCount": 6,"totalTokenCount": 146,"thoughtsTokenCount": 88},'
    '"modelVersion": "gemini-2.5-flash","responseId": "mJ2XaOq4Ct3Xz7IP"}',
    '{"candidates": [{"content": {"parts": [{"text": "for you ☂."}],"role": "model"},"index": 0}],'
    '"usageMetadata": {"promptTokenCount": 52,"candidatesTokenCount": 10,"totalTokenCount": 150,"thoughtsTokenCount": 88},'
    '"modelVersion": "gemini-2.5-flash","responseId": "mJ2XaOq4Ct3Xz7IP"}',
    '{"candidates": [{"content": {"parts": [{"functionCall": {"name": "get_weather","args": {"city": "Paris"}},'
    '"thoughtSignature": "CiQBVKhc7pO1Dw=="},{"functionCall": {"name": "get_weather","args": {"city": "東京"}}}],'
    '"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 52,'
    '"candidatesTokenCount": 40,"totalTokenCount": 180,"cachedContentTokenCount": 32,"thoughtsTokenCount": 88},'
    '"modelVersion": "gemini-2.5-flash","responseId": "mJ2XaOq4Ct3Xz7IP"}',
)

EXPECTED = [
    ThinkingDelta("**Two cities**\nI will call the tool twice."),
    TextDelta("Checking Paris and Tōkyō "),
    TextDelta("for you ☂."),
    ToolCallStart(0, "call_" + "0" * 24, "get_weather", "CiQBVKhc7pO1Dw=="),
    ToolCallDelta(0, '{"city": "Paris"}'),
    ToolCallStart(1, "call_" + "0" * 23 + "1", "get_weather"),
    ToolCallDelta(1, '{"city": "東京"}'),
    FinishEvent("tool_calls"),
    # usageMetadata is cumulative: the last chunk's counts, not the sum over chunks.
    UsageEvent(Usage(input_tokens=52, output_tokens=128, cache_read_tokens=32, reasoning_tokens=88)),
]


def counting_decoder() -> GeminiStreamDecoder:
    counter = itertools.count()
    return GeminiStreamDecoder(new_id=lambda: f"call_{next(counter):024x}")


def decode_all(*chunks: bytes) -> list:
    decoder = counting_decoder()
    events = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.finish()


def test_stream_decoder_turns_the_recording_into_ir_events():
    decoder = counting_decoder()
    assert decoder.feed(RECORDED) + decoder.finish() == EXPECTED
    assert (decoder.id, decoder.model) == ("mJ2XaOq4Ct3Xz7IP", "gemini-2.5-flash")


def test_stream_decoder_gives_the_same_events_split_at_every_byte_offset():
    for offset in range(len(RECORDED) + 1):
        assert decode_all(RECORDED[:offset], RECORDED[offset:]) == EXPECTED, offset


def test_stream_decoder_gives_the_same_events_fed_byte_by_byte():
    assert decode_all(*(RECORDED[i:i + 1] for i in range(len(RECORDED)))) == EXPECTED


def test_a_streamed_call_keeps_the_id_gemini_gave_it():
    events = decode_all(sse(
        '{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"id":"fc-1","name":"now"}}]},"finishReason":"STOP"}]}'
    ))
    assert events == [ToolCallStart(0, "fc-1", "now"), ToolCallDelta(0, "{}"), FinishEvent("tool_calls")]


def test_a_blocked_prompt_streams_a_content_filter_finish():
    events = decode_all(sse('{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},'
                            '"usageMetadata":{"promptTokenCount":9,"totalTokenCount":9}}'))
    assert events == [FinishEvent("content_filter"), UsageEvent(Usage(input_tokens=9))]


def test_stream_error_chunk_raises_after_the_events_before_it():
    decoder = counting_decoder()
    events = decoder.feed(RECORDED[: RECORDED.index(b"data: ", 10)] + sse(
        '{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}'
    ))
    assert events == EXPECTED[:1]
    with pytest.raises(UpstreamStatus) as caught:
        decoder.finish()
    assert caught.value.upstream_status == 503 and caught.value.retryable
    assert "overloaded" in caught.value.message


def test_stream_deadline_error_raises_upstream_timeout():
    with pytest.raises(UpstreamTimeout):
        decode_all(sse('{"error": {"code": 504, "message": "Deadline expired", "status": "DEADLINE_EXCEEDED"}}'))


def test_stream_that_ends_before_a_finish_reason_raises_unavailable():
    with pytest.raises(UpstreamUnavailable):
        decode_all(RECORDED[: RECORDED.rindex(b"data: ")])


def test_garbage_in_a_stream_raises_upstream_invalid_response():
    with pytest.raises(UpstreamInvalidResponse):
        decode_all(b"data: {oops\r\n\r\n")


# ---- end to end against a fake upstream ----------------------------------------------------

class FakeGemini:
    """Records what the adapter sent; ``reply`` picks the answer."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.reply = self.json_reply
        self.provider: GeminiProvider

    async def handle(self, request: web.Request) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.seen.append((request.path, request.raw_path, headers, await request.read()))
        return await self.reply(request)

    async def json_reply(self, request: web.Request) -> web.StreamResponse:
        if request.path.endswith(":batchEmbedContents"):
            count = len(msgspec.json.decode(await request.read())["requests"])
            return web.json_response({"embeddings": [{"values": [0.5, -0.25]} for _ in range(count)]})
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
    upstream = FakeGemini()
    app = web.Application()
    app.router.add_post("/v1beta/models/{call}", upstream.handle)
    server = await aiohttp_server(app)
    http = HttpClients()
    config = ProviderConfig(kind="gemini", api_key="k", base_url=str(server.make_url("")),
                            headers={"X-Goog-User-Project": "proj-1"})
    upstream.provider = GeminiProvider("gem", config, http)
    yield upstream
    await http.close()


REQUEST = ChatRequest("ep", (user("Weather?"),), system=("Be brief.",))


def assert_key_in_header_only(raw_path: str, headers: dict[str, str]) -> None:
    assert headers["x-goog-api-key"] == "k"
    _, _, query = raw_path.partition("?")
    assert "key" not in raw_path and query in ("", "alt=sse")
    assert headers["content-type"] == "application/json"
    assert headers["x-goog-user-project"] == "proj-1"


async def test_complete_posts_to_generate_content_with_the_key_in_a_header(fake):
    result = await fake.provider.complete(REQUEST, Target("gemini-2.5-flash", Timeouts()))
    path, raw_path, headers, body = fake.seen[0]
    assert path == raw_path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert_key_in_header_only(raw_path, headers)
    assert body == encode_request(REQUEST)
    assert result.finish_reason == "tool_calls" and result.usage.output_tokens == 75


async def test_open_stream_uses_sse_and_yields_the_recorded_events(fake):
    fake.reply = fake.stream_reply
    stream = await fake.provider.open_stream(REQUEST, Target("gemini-2.5-flash", Timeouts()))
    events = [event async for batch in stream for event in batch]
    path, raw_path, headers, body = fake.seen[0]
    assert path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert raw_path == path + "?alt=sse"
    assert_key_in_header_only(raw_path, headers)
    assert body == encode_request(REQUEST)
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert len(starts) == 2 and all(GENERATED_ID.fullmatch(s.id) for s in starts)
    assert starts[0].id != starts[1].id
    expected_ids = {EXPECTED[3].id: starts[0].id, EXPECTED[5].id: starts[1].id}
    assert events == [
        msgspec.structs.replace(e, id=expected_ids[e.id]) if isinstance(e, ToolCallStart) else e for e in EXPECTED
    ]


async def test_embed_posts_one_request_per_input_and_estimates_usage(fake):
    result = await fake.provider.embed(["hello", "world!!"], Target("gemini-embedding-001", Timeouts()), dimensions=2)
    path, raw_path, headers, body = fake.seen[0]
    assert path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert_key_in_header_only(raw_path, headers)
    assert msgspec.json.decode(body) == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 2},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "world!!"}]}, "outputDimensionality": 2},
    ]}
    assert result.vectors == [[0.5, -0.25], [0.5, -0.25]]
    assert result.usage == Usage(input_tokens=3, estimated=True)  # (12 characters + 1) // 4


async def test_embed_without_dimensions_sends_none(fake):
    await fake.provider.embed(["x"], Target("gemini-embedding-001", Timeouts()))
    assert "outputDimensionality" not in msgspec.json.decode(fake.seen[0][3])["requests"][0]


async def exhausted(request: web.Request) -> web.StreamResponse:
    return web.json_response(
        {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                   "status": "RESOURCE_EXHAUSTED"}},
        status=429, headers={"retry-after": "7"},
    )


@pytest.mark.parametrize("call", ["complete", "open_stream"])
async def test_upstream_429_raises_a_retryable_upstream_status(fake, call):
    fake.reply = exhausted
    with pytest.raises(UpstreamStatus) as caught:
        await getattr(fake.provider, call)(REQUEST, Target("gemini-2.5-flash", Timeouts()))
    assert caught.value.upstream_status == 429 and caught.value.retryable
    assert caught.value.retry_after == 7.0
    assert "Resource has been exhausted" in caught.value.message


async def test_invalid_json_body_raises_upstream_invalid_response(fake):
    async def garbage(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"<html>502 Bad Gateway</html>", content_type="application/json")

    fake.reply = garbage
    with pytest.raises(UpstreamInvalidResponse):
        await fake.provider.complete(REQUEST, Target("gemini-2.5-flash", Timeouts()))


async def test_embed_with_a_missing_vector_raises_upstream_invalid_response(fake):
    async def short(request: web.Request) -> web.StreamResponse:
        return web.json_response({"embeddings": [{"values": [1.0]}]})

    fake.reply = short
    with pytest.raises(UpstreamInvalidResponse):
        await fake.provider.embed(["a", "b"], Target("gemini-embedding-001", Timeouts()))
