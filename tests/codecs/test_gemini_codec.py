"""The Gemini client codec: generateContent requests -> IR, IR results and stream events -> Gemini JSON."""

from __future__ import annotations

import json

import msgspec
import pytest
from google.genai import types

from gateway.codecs import gemini as codec
from gateway.errors import BadRequest, InvalidJSON, RateLimited
from gateway.ir import (
    ChatResult, EmbeddingResult, FinishEvent, ImagePart, Message, ResponseFormat, TextDelta, TextPart,
    ThinkingDelta, ThinkingPart, ToolCallDelta, ToolCallPart, ToolCallStart, ToolChoice,
    Usage, UsageEvent,
)
from gateway.providers.gemini import encode_request as encode_for_gemini

SIG = "c2lnbmF0dXJl"  # base64, as Gemini's thoughtSignature always is


def decode(body: dict, stream: bool = False):
    return codec.decode_request(json.dumps(body).encode(), "my-endpoint", stream)


def user(text: str) -> dict:
    return {"role": "user", "parts": [{"text": text}]}


# A turn as Gemini CLI sends it: parametersJsonSchema, a thinking model's signed call without id,
# and its own call id on the response.
CLI_REQUEST = {
    "systemInstruction": {"role": "user", "parts": [{"text": "You are a CLI agent."}]},
    "tools": [
        {"functionDeclarations": [{
            "name": "read_file", "description": "Read a file",
            "parametersJsonSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
        }]},
        {"googleSearch": {}},
    ],
    "generationConfig": {"temperature": 0, "topP": 1, "thinkingConfig": {"includeThoughts": True}},
    "contents": [
        user("Read a.txt"),
        {"role": "model", "parts": [
            {"text": "I should read it.", "thought": True},
            {"functionCall": {"name": "read_file", "args": {"path": "a.txt"}}, "thoughtSignature": SIG},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"id": "read_file-1712-x", "name": "read_file", "response": {"output": "hello"}}},
        ]},
    ],
}


# ---- request decoding ----------------------------------------------------------------------

def test_gemini_cli_request_decodes_to_ir():
    req = decode(CLI_REQUEST, stream=True)
    assert req.model == "my-endpoint" and req.stream and req.include_usage
    assert req.system == ("You are a CLI agent.",)
    assert [t.name for t in req.tools] == ["read_file"]  # googleSearch skipped
    assert json.loads(bytes(req.tools[0].parameters))["properties"]["path"] == {"type": "string"}
    assert req.temperature == 0 and req.top_p == 1 and req.max_tokens is None
    user_msg, model_msg, tool_msg = req.messages
    assert user_msg == Message("user", (TextPart("Read a.txt"),))
    thinking, call = model_msg.parts
    assert model_msg.role == "assistant" and thinking == ThinkingPart("I should read it.")
    assert isinstance(call, ToolCallPart) and call.name == "read_file" and call.signature == SIG
    assert json.loads(call.arguments) == {"path": "a.txt"}
    (result,) = tool_msg.parts
    assert tool_msg.role == "tool"
    assert (result.tool_call_id, result.name, result.is_error) == (call.id, "read_file", False)
    assert json.loads(result.content) == {"output": "hello"}


def test_made_up_call_ids_are_deterministic_and_never_sent_to_gemini():
    first, second = decode(CLI_REQUEST), decode(CLI_REQUEST)
    call_id = first.messages[1].parts[1].id
    assert call_id == second.messages[1].parts[1].id == "call_000000000001000000000000"
    upstream = json.loads(encode_for_gemini(first))
    call_part = upstream["contents"][1]["parts"][0]
    assert call_part == {"functionCall": {"name": "read_file", "args": {"path": "a.txt"}}, "thoughtSignature": SIG}
    assert "id" not in upstream["contents"][2]["parts"][0]["functionResponse"]


def test_parallel_responses_match_calls_of_the_same_name_in_order():
    req = decode({"contents": [
        user("two files"),
        {"role": "model", "parts": [
            {"functionCall": {"name": "read", "args": {"p": "a"}}},
            {"functionCall": {"name": "list", "args": {}}},
            {"functionCall": {"name": "read", "args": {"p": "b"}}},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "read", "response": {"output": "A"}}},
            {"functionResponse": {"name": "read", "response": {"output": "B"}}},
            {"functionResponse": {"name": "list", "response": {"error": "denied"}}},
        ]},
        user("thanks"),
    ]})
    calls = req.messages[1].parts
    results = req.messages[2].parts
    assert [(r.tool_call_id, json.loads(r.content)) for r in results] == [
        (calls[0].id, {"output": "A"}), (calls[2].id, {"output": "B"}), (calls[1].id, {"error": "denied"}),
    ]
    assert [r.is_error for r in results] == [False, False, True]
    assert len({c.id for c in calls}) == 3
    assert req.messages[3] == Message("user", (TextPart("thanks"),))


def test_responses_carrying_the_call_id_match_by_id():
    req = decode({"contents": [
        user("go"),
        {"role": "model", "parts": [
            {"functionCall": {"id": "c1", "name": "f", "args": {}}},
            {"functionCall": {"id": "c2", "name": "f", "args": {}}},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"id": "c2", "name": "f", "response": {"r": 2}}},
            {"functionResponse": {"id": "c1", "name": "f", "response": {"r": 1}}},
        ]},
    ]})
    assert [(r.tool_call_id, json.loads(r.content)) for r in req.messages[2].parts] == [("c2", {"r": 2}), ("c1", {"r": 1})]


def test_user_turn_mixing_responses_and_text_splits_into_tool_then_user_messages():
    req = decode({"contents": [
        user("go"),
        {"role": "model", "parts": [{"functionCall": {"name": "f"}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}, {"text": "and now?"}]},
    ]})
    assert [m.role for m in req.messages] == ["user", "assistant", "tool", "user"]
    assert req.messages[1].parts[0].arguments == "{}"


def test_images_inline_and_by_uri():
    req = decode({"contents": [{"role": "user", "parts": [
        {"text": "what is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}},
    ]}]})
    assert req.messages[0].parts[1:] == (
        ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
        ImagePart(url="https://example.com/cat.jpg", media_type="image/jpeg"),
    )


def test_snake_case_bodies_like_googles_curl_samples_are_understood():
    req = decode({
        "system_instruction": {"parts": [{"text": "Be terse."}]},
        "generation_config": {"max_output_tokens": 50, "stop_sequences": ["END"], "response_mime_type": "application/json"},
        "contents": [
            {"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "AAAA"}}]},
            {"role": "model", "parts": [{"function_call": {"name": "f", "args": {"file_path": "x"}}}]},
        ],
    })
    assert req.system == ("Be terse.",)
    assert req.max_tokens == 50 and req.stop == ("END",) and req.response_format == ResponseFormat("json_object")
    assert req.messages[0].parts == (ImagePart(data="AAAA", media_type="image/png"),)
    assert json.loads(req.messages[1].parts[0].arguments) == {"file_path": "x"}  # argument keys untouched


def test_snake_case_tool_arguments_do_not_send_a_camel_case_body_through_the_rewrite(monkeypatch):
    def no_rewrite(node):  # type: ignore[no-untyped-def]
        raise AssertionError("a camelCase body was rewritten")

    monkeypatch.setattr(codec, "_camel_keys", no_rewrite)
    req = decode({"contents": [
        {"role": "model", "parts": [{"functionCall": {"name": "read", "args": {"file_path": "a", "max_lines": 3}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "read", "response": {"line_count": 3}}}]},
    ]})
    assert json.loads(req.messages[0].parts[0].arguments) == {"file_path": "a", "max_lines": 3}


@pytest.mark.parametrize("config,expected", [
    ({"responseMimeType": "application/json"}, ResponseFormat("json_object")),
    ({"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}},
     ResponseFormat("json_schema", schema=msgspec.Raw(b'{"type": "object"}'))),
    ({"responseMimeType": "text/plain"}, None),
])
def test_json_mode_generation_config(config, expected):
    assert decode({"contents": [user("hi")], "generationConfig": config}).response_format == expected


def test_openapi_style_schemas_become_json_schema_with_lower_case_types():
    req = decode({
        "contents": [user("hi")],
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
            "type": "OBJECT", "properties": {"type": {"type": "STRING", "enum": ["OBJECT"]}},
        }}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseSchema": {"type": "ARRAY", "items": {"type": "INTEGER"}}},
    })
    assert json.loads(bytes(req.tools[0].parameters)) == {
        "type": "object", "properties": {"type": {"type": "string", "enum": ["OBJECT"]}},
    }
    assert req.response_format.type == "json_schema"
    assert json.loads(bytes(req.response_format.schema)) == {"type": "array", "items": {"type": "integer"}}


@pytest.mark.parametrize("config,choice,tools", [
    ({"mode": "AUTO"}, ToolChoice("auto"), ["a", "b", "c"]),
    ({"mode": "NONE"}, ToolChoice("none"), ["a", "b", "c"]),
    ({"mode": "ANY"}, ToolChoice("required"), ["a", "b", "c"]),
    ({"mode": "ANY", "allowedFunctionNames": ["b"]}, ToolChoice("required", "b"), ["a", "b", "c"]),
    ({"mode": "ANY", "allowedFunctionNames": ["a", "c"]}, ToolChoice("required"), ["a", "c"]),
])
def test_function_calling_config(config, choice, tools):
    req = decode({
        "contents": [user("hi")],
        "tools": [{"functionDeclarations": [{"name": n} for n in "abc"]}],
        "toolConfig": {"functionCallingConfig": config},
    })
    assert req.tool_choice == choice and [t.name for t in req.tools] == tools


@pytest.mark.parametrize("body,param", [
    ({"contents": "hi"}, "contents"),
    ({"contents": []}, "contents"),
    ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "contents[0].role"),
    ({"contents": [user("x")], "generationConfig": {"candidateCount": 2}}, "generationConfig.candidateCount"),
    ({"contents": [user("x")], "generationConfig": {"responseMimeType": "text/x.enum"}}, "generationConfig.responseMimeType"),
    ({"contents": [user("x")], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
     "toolConfig.functionCallingConfig.mode"),
    ({"contents": [user("x"), {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
     "contents[1].parts[0]"),
    ({"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": [1]}}]}]},
     "contents[0].parts[0].functionCall.args"),
    ({"contents": [user("x")], "systemInstruction": {"parts": [{"inlineData": {"mimeType": "a/b", "data": ""}}]}},
     "systemInstruction.parts[0]"),
])
def test_bad_requests_name_the_field(body, param):
    with pytest.raises(BadRequest) as info:
        decode(body)
    assert info.value.param == param
    assert info.value.status == 400


def test_unparseable_body_is_invalid_json():
    with pytest.raises(InvalidJSON):
        codec.decode_request(b'{"contents": [', "ep", False)
    with pytest.raises(InvalidJSON):
        codec.decode_request(b'{"system_instruction": ', "ep", False)


# ---- result encoding -----------------------------------------------------------------------

RESULT = ChatResult(
    id="resp-1", model="gemini-2.5-pro",
    parts=[
        ThinkingPart("Let me think.", SIG),
        TextPart("Reading both."),
        ToolCallPart("call_1", "read_file", '{"path": "a.txt"}', SIG),
        ToolCallPart("call_2", "read_file", "not json"),
    ],
    finish_reason="tool_calls",
    usage=Usage(input_tokens=100, output_tokens=30, cache_read_tokens=40, reasoning_tokens=12),
)


def test_encoded_result_validates_with_the_google_sdk():
    body = codec.encode_result(RESULT, "my-endpoint")
    resp = types.GenerateContentResponse.model_validate_json(body)
    assert resp.model_version == "my-endpoint" and resp.response_id == "resp-1"
    candidate = resp.candidates[0]
    assert candidate.finish_reason == types.FinishReason.STOP and candidate.index == 0
    assert candidate.content.role == "model"
    assert resp.text == "Reading both."
    thought = candidate.content.parts[0]
    assert thought.thought and thought.text == "Let me think." and thought.thought_signature == b"signature"
    first, second = resp.function_calls
    assert (first.id, first.name, first.args) == ("call_1", "read_file", {"path": "a.txt"})
    assert second.args == {}  # arguments that are not a JSON object
    assert candidate.content.parts[2].thought_signature == b"signature"
    usage = resp.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count) == (100, 18, 12)
    assert usage.cached_content_token_count == 40 and usage.total_token_count == 130


def test_zero_thoughts_and_cache_are_left_out_of_usage():
    result = ChatResult("r", "m", [TextPart("hi")], "stop", Usage(input_tokens=5, output_tokens=2))
    usage = json.loads(codec.encode_result(result, "ep"))["usageMetadata"]
    assert usage == {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7}


@pytest.mark.parametrize("reason,wire", [
    ("stop", "STOP"), ("length", "MAX_TOKENS"), ("tool_calls", "STOP"), ("content_filter", "SAFETY"), ("error", "OTHER"),
])
def test_finish_reasons(reason, wire):
    body = json.loads(codec.encode_result(ChatResult("r", "m", [TextPart("x")], reason), "ep"))
    assert body["candidates"][0]["finishReason"] == wire
    assert "usageMetadata" not in body


def test_a_returned_call_id_matches_the_callers_next_function_response():
    encoded = json.loads(codec.encode_result(RESULT, "ep"))["candidates"][0]["content"]
    req = decode({"contents": [
        user("go"), encoded,
        {"role": "user", "parts": [{"functionResponse": {"id": "call_2", "name": "read_file", "response": {}}}]},
    ]})
    assert req.messages[2].parts[0].tool_call_id == "call_2"



@pytest.mark.parametrize("signature", ["mock-signature", "anthropic-redacted-thinking:EqQB+/x", SIG])
def test_signatures_are_valid_base64_on_the_wire_and_come_back_unchanged(signature):
    result = ChatResult("r", "m", [ThinkingPart("t", signature), ToolCallPart("c", "f", "{}", signature)], "tool_calls")
    body = codec.encode_result(result, "ep")
    types.GenerateContentResponse.model_validate_json(body)  # the SDK reads thoughtSignature as base64 bytes
    content = json.loads(body)["candidates"][0]["content"]
    assert (content["parts"][0]["thoughtSignature"] == SIG) == (signature == SIG)
    req = decode({"contents": [user("go"), content]})
    thinking, call = req.messages[1].parts
    assert thinking.signature == call.signature == signature
    (chunk,) = sse_chunks(codec.GeminiStreamEncoder("ep", sse=True).encode([ThinkingDelta("t", signature)]))
    assert chunk.candidates[0].content.parts[0].thought_signature is not None

# ---- streaming -----------------------------------------------------------------------------

USAGE = Usage(input_tokens=10, output_tokens=7, reasoning_tokens=3)
TEXT_BATCHES = [
    [ThinkingDelta("Hmm"), ThinkingDelta(", ok.", SIG)],
    [TextDelta("Hel"), TextDelta("lo")],
    [TextDelta(" world")],
    [FinishEvent("stop")],
    [UsageEvent(USAGE)],
]


def run(encoder: codec.GeminiStreamEncoder, batches) -> bytes:
    return b"".join(encoder.encode(batch) for batch in batches) + encoder.finish()


def sse_chunks(data: bytes) -> list[types.GenerateContentResponse]:
    events = [e for e in data.split(b"\r\n\r\n") if e]
    assert all(e.startswith(b"data: ") for e in events)
    return [types.GenerateContentResponse.model_validate_json(e[6:]) for e in events]


def test_sse_stream_chunks_validate_with_the_sdk():
    encoder = codec.GeminiStreamEncoder("my-endpoint", sse=True)
    chunks = sse_chunks(run(encoder, TEXT_BATCHES))
    assert len(chunks) == 4  # three content batches and the final chunk
    thought = chunks[0].candidates[0].content.parts
    assert len(thought) == 1 and thought[0].thought and thought[0].text == "Hmm, ok."
    assert thought[0].thought_signature == b"signature"
    assert [c.text for c in chunks[1:3]] == ["Hello", " world"]
    last = chunks[-1]
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata.candidates_token_count == 4 and last.usage_metadata.thoughts_token_count == 3
    assert {c.model_version for c in chunks} == {"my-endpoint"} and len({c.response_id for c in chunks}) == 1
    assert all(c.usage_metadata is None for c in chunks[:-1])
    assert encoder.usage == USAGE and encoder.output_chars == len("Hmm, ok.Hello world")


def test_json_array_stream_is_one_json_array():
    data = run(codec.GeminiStreamEncoder("ep", sse=False), TEXT_BATCHES)
    chunks = json.loads(data)
    assert isinstance(chunks, list) and len(chunks) == 4
    for chunk in chunks:
        types.GenerateContentResponse.model_validate(chunk)
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_json_array_stream_with_no_content_is_still_an_array():
    encoder = codec.GeminiStreamEncoder("ep", sse=False)
    (chunk,) = json.loads(run(encoder, [[FinishEvent("length")]]))
    assert chunk["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert encoder.usage is None and "usageMetadata" not in chunk


INTERLEAVED_CALLS = [
    [TextDelta("Reading.")],
    [ToolCallStart(0, "call_a", "read", SIG), ToolCallStart(1, "call_b", "read")],
    [ToolCallDelta(0, '{"pa'), ToolCallDelta(1, '{"path":')],
    [ToolCallDelta(1, ' "b"}'), ToolCallDelta(0, 'th": "a"}')],
    [FinishEvent("tool_calls")],
    [UsageEvent(Usage(5, 9))],
]


@pytest.mark.parametrize("sse", [True, False])
def test_interleaved_parallel_calls_come_out_whole(sse):
    encoder = codec.GeminiStreamEncoder("ep", sse=sse)
    data = run(encoder, INTERLEAVED_CALLS)
    if sse:
        chunks = sse_chunks(data)
    else:
        chunks = [types.GenerateContentResponse.model_validate(c) for c in json.loads(data)]
    assert len(chunks) == 2 and chunks[0].text == "Reading."
    last = chunks[-1]
    calls = last.function_calls
    assert [(c.id, c.name, c.args) for c in calls] == [("call_a", "read", {"path": "a"}), ("call_b", "read", {"path": "b"})]
    assert last.candidates[0].content.parts[0].thought_signature == b"signature"
    assert last.candidates[0].content.parts[1].thought_signature is None
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata.total_token_count == 14
    assert encoder.output_chars == len("Reading.") + len('{"path": "a"}') + len('{"path": "b"}')


def test_a_buffered_call_goes_out_before_the_text_that_follows_it():
    encoder = codec.GeminiStreamEncoder("ep", sse=True)
    out = encoder.encode([ToolCallStart(0, "c", "f"), ToolCallDelta(0, "{}")])
    assert out == b""
    (chunk,) = sse_chunks(encoder.encode([TextDelta("done")]))
    assert chunk.candidates[0].content.parts[0].function_call.name == "f"
    assert chunk.candidates[0].content.parts[1].text == "done"
    assert sse_chunks(encoder.finish())[0].function_calls is None


def test_text_arriving_while_a_call_streams_its_arguments_leaves_that_call_buffered():
    """Providers may interleave text with a call whose arguments are still coming."""
    encoder = codec.GeminiStreamEncoder("ep", sse=True)
    batches = [
        [ToolCallStart(0, "c0", "first"), ToolCallDelta(0, '{"a": 1}'), ToolCallStart(1, "c1", "second"),
         ToolCallDelta(1, '{"b": ')],
        [TextDelta("meanwhile")],  # call 0 is whole and goes out; call 1 is not
        [ToolCallDelta(1, "2}")],
        [FinishEvent("tool_calls")],
    ]
    chunks = sse_chunks(run(encoder, batches))
    sent = [(p.function_call.name, p.function_call.args) if p.function_call else p.text
            for c in chunks for p in (c.candidates[0].content.parts if c.candidates[0].content else [])]
    assert sent == [("first", {"a": 1}), "meanwhile", ("second", {"b": 2})]


@pytest.mark.parametrize("seed", range(200))
def test_calls_interleaved_with_text_in_any_order_and_batching_each_go_out_once_and_whole(seed):
    """Several calls, each started then given its arguments in pieces, interleaved with
    text in every order a provider might choose, in batches of any size."""
    import random

    rnd = random.Random(seed)
    calls = [(f"f{i}", {"i": i, "s": "x" * rnd.randint(0, 6)}) for i in range(rnd.randint(1, 3))]
    lanes = []
    for i, (name, args) in enumerate(calls):
        text = json.dumps(args)
        cuts = sorted(rnd.sample(range(1, len(text)), rnd.randint(0, 3)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        lanes.append([ToolCallStart(i, f"c{i}", name), *(ToolCallDelta(i, p) for p in pieces)])
    words = [TextDelta(f"w{j} ") for j in range(rnd.randint(0, 4))]
    lanes.append(list(words))
    events = []
    while any(lanes):
        events.append(rnd.choice([lane for lane in lanes if lane]).pop(0))
    events.append(FinishEvent("tool_calls"))
    batches, i = [], 0
    while i < len(events):
        n = rnd.randint(1, 4)
        batches.append(events[i:i + n])
        i += n
    parts = [p for c in sse_chunks(run(codec.GeminiStreamEncoder("ep", sse=True), batches))
             for p in ((c.candidates[0].content.parts or []) if c.candidates[0].content else [])]
    sent = [(p.function_call.name, p.function_call.args) for p in parts if p.function_call]
    assert sorted(sent, key=lambda c: c[0]) == calls
    assert "".join(p.text for p in parts if p.text) == "".join(w.text for w in words)


def test_stream_errors_keep_each_form_valid():
    err = RateLimited("slow down")
    sse = codec.stream_error_event(err, sse=True)
    assert sse.startswith(b"data: ") and sse.endswith(b"\r\n\r\n")
    assert json.loads(sse[6:])["error"] == {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}
    assert json.loads(codec.stream_error_event(err, sse=False))[0]["error"]["code"] == 429

    fresh = codec.GeminiStreamEncoder("ep", sse=False)
    assert json.loads(fresh.error_event(err))[0]["error"]["status"] == "RESOURCE_EXHAUSTED"
    started = codec.GeminiStreamEncoder("ep", sse=False)
    data = started.encode([TextDelta("partial")]) + started.error_event(err)
    text_chunk, error_chunk = json.loads(data)
    assert text_chunk["candidates"][0]["content"]["parts"] == [{"text": "partial"}]
    assert error_chunk["error"]["code"] == 429


# ---- embeddings and token counting ---------------------------------------------------------

def test_embed_content_request_and_response():
    body = {"model": "models/emb", "content": {"parts": [{"text": "a"}, {"text": "b"}]}, "outputDimensionality": 8,
            "taskType": "RETRIEVAL_QUERY"}
    assert codec.decode_embed_request(json.dumps(body).encode(), "emb") == (["a\nb"], 8)
    assert codec.decode_embed_request(b'{"content": {"parts": [{"text": "x"}]}}', "emb") == (["x"], None)
    out = json.loads(codec.encode_embed_result(EmbeddingResult([[0.5, -1.0]], "emb")))
    assert out == {"embedding": {"values": [0.5, -1.0]}}


def test_batch_embed_contents_request_and_response():
    body = {"requests": [
        {"model": "models/emb", "content": {"parts": [{"text": "one"}]}},
        {"model": "models/emb", "content": {"parts": [{"text": "two"}]}},
    ]}
    assert codec.decode_batch_embed_request(json.dumps(body).encode(), "emb") == (["one", "two"], None)
    out = json.loads(codec.encode_batch_embed_result(EmbeddingResult([[1.0], [2.0]], "emb")))
    assert out == {"embeddings": [{"values": [1.0]}, {"values": [2.0]}]}


@pytest.mark.parametrize("body,param", [
    ({"requests": []}, "requests"),
    ({"requests": [{"content": {"parts": [{"text": "a"}]}, "outputDimensionality": 8},
                   {"content": {"parts": [{"text": "b"}]}}]}, "requests"),
    ({"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]}, "requests[0].model"),
    ({"requests": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": ""}}]}}]},
     "requests[0].content.parts[0]"),
    ({"requests": [{"content": {"parts": []}}]}, "requests[0].content"),
])
def test_bad_batch_embed_requests(body, param):
    with pytest.raises(BadRequest) as info:
        codec.decode_batch_embed_request(json.dumps(body).encode(), "emb")
    assert info.value.param == param


@pytest.mark.parametrize("body", [
    {"contents": [user("count these words please")]},
    {"generateContentRequest": {"model": "models/ep", "contents": [user("count these words please")],
                                "systemInstruction": {"parts": [{"text": "sys"}]}}},
])
def test_count_tokens_accepts_both_request_forms(body):
    req = codec.decode_count_tokens_request(json.dumps(body).encode(), "ep")
    assert req.model == "ep" and req.messages[0].parts == (TextPart("count these words please"),)
    chars = len("count these words please") + sum(len(s) for s in req.system)
    assert codec.count_tokens_estimate(req) == (chars + 1) // 4


def test_count_tokens_response_validates_with_the_sdk():
    body = codec.encode_count_tokens(42)
    assert json.loads(body) == {"totalTokens": 42}
    assert types.CountTokensResponse.model_validate_json(body).total_tokens == 42
