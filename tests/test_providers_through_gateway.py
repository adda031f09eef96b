"""Chat Completions callers against each provider kind, through the gateway over real HTTP.

The fake upstreams record what the gateway sent, so these tests see both sides: what the
SDK got back, and what the provider received (credentials included).
"""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import TOKEN, Gateway
from tests.test_openai_sdk import WEATHER_TOOL
from tests.upstreams import UPSTREAM_KEY

TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string"}}}}}
IMAGE = "data:image/png;base64,iVBORw0KGgo="
PROVIDER_KINDS = ["openai", "anthropic", "gemini"]


async def gateway_for(make_gateway, start_upstream, kind: str, *, tags: bool = False):  # type: ignore[no-untyped-def]
    up = await start_upstream(kind)
    base = up.url + "/v1" if kind == "openai" else up.url
    provider = {"kind": kind, "api_key": UPSTREAM_KEY, "base_url": base}
    endpoints = [
        {"name": f"ep-{m}", "served_entities": [{"provider": "up", "model": m}]}
        for m in ("ok", "tool", "parallel", "no-usage", "fail-400", "fail-500", "fail-429", "garbage", "cut")
    ]
    gw = await make_gateway({"up": provider}, endpoints)
    return gw, up


def client(gw: Gateway, **headers: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url("/mlflow/v1"), api_key=TOKEN, max_retries=0, default_headers=headers)


def assert_no_caller_credentials(request: dict) -> None:
    """The provider saw its own key and nothing of the caller's token."""
    flat = json.dumps(request).lower()
    assert TOKEN.lower() not in flat
    assert UPSTREAM_KEY in json.dumps(request["headers"])


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_text_with_system_and_multi_turn(make_gateway, start_upstream, kind):
    gw, up = await gateway_for(make_gateway, start_upstream, kind)
    reply = await client(gw).chat.completions.create(model="ep-ok", temperature=0.2, top_p=0.9, max_tokens=50,
                                                      stop=["END"], seed=7, messages=[
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how are you?"},
    ])
    assert reply.choices[0].message.content.strip() == f"Hello from {'OpenAI' if kind == 'openai' else 'Claude' if kind == 'anthropic' else 'Gemini'}"
    assert reply.choices[0].finish_reason == "stop"
    sent = up.recorder.last["body"]
    assert_no_caller_credentials(up.recorder.last)
    if kind == "openai":
        assert sent["model"] == "ok" and sent["messages"][0] == {"role": "system", "content": "You are terse."}
        assert sent["seed"] == 7 and sent["stop"] == ["END"]
    elif kind == "anthropic":
        assert sent["system"] == [{"type": "text", "text": "You are terse."}]
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
        assert sent["max_tokens"] == 50 and sent["temperature"] == 0.2 and sent["stop_sequences"] == ["END"]
        assert "seed" not in sent
    else:
        assert up.recorder.last["path"] == "/v1beta/models/ok:generateContent"
        assert sent["systemInstruction"]["parts"] == [{"text": "You are terse."}]
        assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
        assert sent["generationConfig"]["maxOutputTokens"] == 50
        assert sent["generationConfig"]["stopSequences"] == ["END"]


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_usage_is_mapped_to_openai_fields(make_gateway, start_upstream, kind):
    gw, _ = await gateway_for(make_gateway, start_upstream, kind)
    usage = (await client(gw).chat.completions.create(model="ep-ok", messages=[{"role": "user", "content": "x"}])).usage
    expected = {"openai": (11, 7, 3, 2), "anthropic": (25, 9, 4, 0), "gemini": (15, 8, 5, 2)}[kind]
    got = (usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details.cached_tokens,
           usage.completion_tokens_details.reasoning_tokens)
    assert got == expected
    assert usage.total_tokens == expected[0] + expected[1]


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_tool_call_and_result_round_trip(make_gateway, start_upstream, kind):
    gw, up = await gateway_for(make_gateway, start_upstream, kind)
    c = client(gw)
    messages = [{"role": "user", "content": "weather in Paris?"}]
    first = await c.chat.completions.create(model="ep-tool", messages=messages, tools=[WEATHER_TOOL], tool_choice="auto")
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'}]
    await c.chat.completions.create(model="ep-ok", messages=messages, tools=[WEATHER_TOOL])
    sent = up.recorder.last["body"]
    if kind == "openai":
        assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'}
    elif kind == "anthropic":
        assert sent["tools"][0]["name"] == "get_weather" and sent["tools"][0]["input_schema"]["type"] == "object"
        assert sent["messages"][1]["content"][-1] == {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Paris"}}
        result = sent["messages"][2]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == call.id
    else:
        assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
        model_turn = sent["contents"][1]["parts"][0]
        assert model_turn["functionCall"] == {"name": "get_weather", "args": {"city": "Paris"}}
        response = sent["contents"][2]["parts"][0]["functionResponse"]
        assert response["name"] == "get_weather" and response["response"]["result"] == {"temp": 21}


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
async def test_streamed_parallel_tool_calls_keep_every_argument(make_gateway, start_upstream, kind):
    gw, _ = await gateway_for(make_gateway, start_upstream, kind)
    stream = await client(gw).chat.completions.create(
        model="ep-parallel", messages=[{"role": "user", "content": "go"}], tools=[WEATHER_TOOL, TIME_TOOL],
        stream=True, stream_options={"include_usage": True})
    calls: dict[int, dict] = {}
    finish, usage = None, None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for tc in choice.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"name": None, "arguments": ""})
                slot["name"] = (tc.function.name if tc.function else None) or slot["name"]
                slot["arguments"] += (tc.function.arguments or "") if tc.function else ""
    assert finish == "tool_calls"
    assert {i: (c["name"], json.loads(c["arguments"])) for i, c in calls.items()} == {
        0: ("get_weather", {"city": "Paris"}), 1: ("get_time", {"zone": "CET"})}
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_streamed_text(make_gateway, start_upstream, kind):
    gw, up = await gateway_for(make_gateway, start_upstream, kind)
    stream = await client(gw).chat.completions.create(
        model="ep-ok", messages=[{"role": "user", "content": "hi"}], stream=True)
    chunks = [c async for c in stream]
    text = "".join(ch.delta.content or "" for c in chunks for ch in c.choices)
    assert text.strip().startswith("Hello from")
    assert [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason] == ["stop"]
    assert all(c.usage is None for c in chunks), "the caller did not ask for usage"
    if kind == "openai":
        # The gateway asked upstream for usage (to record it) and hid that chunk from the caller.
        assert up.recorder.last["body"]["stream_options"] == {"include_usage": True}
    if kind == "gemini":
        assert up.recorder.last["path"].endswith(":streamGenerateContent")
        assert up.recorder.last["query"] == {"alt": "sse"}


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_image_inputs_reach_the_provider(make_gateway, start_upstream, kind):
    gw, up = await gateway_for(make_gateway, start_upstream, kind)
    await client(gw).chat.completions.create(model="ep-ok", messages=[{"role": "user", "content": [
        {"type": "text", "text": "compare"},
        {"type": "image_url", "image_url": {"url": IMAGE}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]}])
    sent = up.recorder.last["body"]
    if kind == "openai":
        assert sent["messages"][0]["content"][1] == {"type": "image_url", "image_url": {"url": IMAGE}}
    elif kind == "anthropic":
        blocks = sent["messages"][0]["content"]
        assert blocks[1]["source"] == {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
        assert blocks[2]["source"] == {"type": "url", "url": "https://example.com/cat.png"}
    else:
        parts = sent["contents"][0]["parts"]
        assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
        assert parts[2]["fileData"]["fileUri"] == "https://example.com/cat.png"


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
async def test_max_tokens_finish_maps_to_length(make_gateway, start_upstream, kind):
    gw, _ = await gateway_for(make_gateway, start_upstream, kind)
    reply = await client(gw).chat.completions.create(model="ep-ok", max_tokens=3, messages=[{"role": "user", "content": "x"}])
    assert reply.choices[0].finish_reason == "length"


async def test_passthrough_returns_upstream_bytes_and_rewrites_only_model(make_gateway, start_upstream):
    gw, up = await gateway_for(make_gateway, start_upstream, "openai")
    body = {"model": "ep-ok", "messages": [{"role": "user", "content": "hi"}], "logit_bias": {"50256": -100}}
    extra = {"some_vendor_field": {"nested": [1, 2]}}
    raw = await client(gw).chat.completions.with_raw_response.create(**body, extra_body=extra)
    sent = up.recorder.last["body"]
    assert sent == {**body, **extra, "model": "ok"}
    assert json.loads(raw.text)["model"] == "ok"  # the upstream's body, untouched
    headers = up.recorder.last["headers"]
    assert headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
