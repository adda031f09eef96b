"""The native Anthropic Messages API through the official anthropic SDK, against every provider kind."""

from __future__ import annotations

import json

import aiohttp
import anthropic
import pytest

from tests.conftest import TOKEN, Gateway
from tests.upstreams import UPSTREAM_KEY

KINDS = ["mock", "openai", "anthropic", "gemini"]
EXPECTED = {"mock": "Echo: hello", "openai": "Hello from OpenAI", "anthropic": "Hello from Claude",
            "gemini": "Hello from Gemini"}
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
TIME = {"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}}


async def gateway_for(make_gateway, start_upstream, kind: str):  # type: ignore[no-untyped-def]
    if kind == "mock":
        providers, up = {"up": {"kind": "mock"}}, None
        models = {"ok": "echo", "tool": "tool", "parallel": "parallel-tools"}
    else:
        up = await start_upstream(kind)
        base = up.url + "/v1" if kind == "openai" else up.url
        providers = {"up": {"kind": kind, "api_key": UPSTREAM_KEY, "base_url": base}}
        models = {"ok": "ok", "tool": "tool", "parallel": "parallel"}
    endpoints = [{"name": f"ep-{k}", "served_entities": [{"provider": "up", "model": m}]} for k, m in models.items()]
    return await make_gateway(providers, endpoints), up


def client(gw: Gateway, **kw) -> anthropic.AsyncAnthropic:  # type: ignore[no-untyped-def]
    # The SDK may carry the gateway token as a bearer header; x-api-key then holds a placeholder.
    return anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), auth_token=TOKEN, max_retries=0,
                                    default_headers={"x-api-key": "placeholder"}, **kw)


@pytest.mark.parametrize("kind", KINDS)
async def test_messages_create(make_gateway, start_upstream, kind):
    gw, up = await gateway_for(make_gateway, start_upstream, kind)
    msg = await client(gw).messages.create(model="ep-ok", max_tokens=100, system="be brief",
                                           messages=[{"role": "user", "content": "hello"}])
    assert msg.content[0].text.strip() == EXPECTED[kind]
    assert msg.stop_reason == "end_turn" and msg.usage.output_tokens > 0
    # Translated replies name the endpoint; a passthrough reply is the provider's, untouched.
    assert msg.model == ("ok" if kind == "anthropic" else "ep-ok")
    if up is not None:
        assert TOKEN not in json.dumps(up.recorder.last) and "placeholder" not in json.dumps(up.recorder.last)


@pytest.mark.parametrize("kind", KINDS)
async def test_messages_stream_final_message(make_gateway, start_upstream, kind):
    gw, _ = await gateway_for(make_gateway, start_upstream, kind)
    async with client(gw).messages.stream(model="ep-ok", max_tokens=100,
                                          messages=[{"role": "user", "content": "hello"}]) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text.strip() == EXPECTED[kind] and final.content[0].text.strip() == EXPECTED[kind]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    (row,) = await gw.usage_rows(1)
    assert row["api_type"] == "anthropic/v1/messages" and row["streaming"] == 1 and row["output_tokens"] > 0


@pytest.mark.parametrize("kind", KINDS)
async def test_tool_use_round_trip(make_gateway, start_upstream, kind):
    gw, up = await gateway_for(make_gateway, start_upstream, kind)
    c = client(gw)
    messages = [{"role": "user", "content": "Paris"}]
    first = await c.messages.create(model="ep-tool", max_tokens=100, tools=[WEATHER], messages=messages)
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}]
    second = await c.messages.create(model="ep-tool" if kind == "mock" else "ep-ok", max_tokens=100,
                                     tools=[WEATHER], messages=messages)
    if kind == "mock":
        assert second.content[0].text == "Tool result: sunny"
    elif kind == "openai":
        sent = up.recorder.last["body"]["messages"]
        assert sent[-1] == {"role": "tool", "tool_call_id": use.id, "content": "sunny"}


@pytest.mark.parametrize("kind", ["mock", "anthropic", "gemini"])
async def test_streamed_parallel_tool_uses(make_gateway, start_upstream, kind):
    gw, _ = await gateway_for(make_gateway, start_upstream, kind)
    async with client(gw).messages.stream(model="ep-parallel", max_tokens=100, tools=[WEATHER, TIME],
                                          messages=[{"role": "user", "content": "CET"}]) as stream:
        final = await stream.get_final_message()
    uses = [(b.name, b.input) for b in final.content if b.type == "tool_use"]
    expected_args = ({"city": "CET"}, {"zone": "CET"}) if kind == "mock" else ({"city": "Paris"}, {"zone": "CET"})
    assert uses == [("get_weather", expected_args[0]), ("get_time", expected_args[1])]
    assert final.stop_reason == "tool_use"


async def test_passthrough_keeps_everything_and_forwards_betas(make_gateway, start_upstream):
    gw, up = await gateway_for(make_gateway, start_upstream, "anthropic")
    body = {
        "model": "ep-ok", "max_tokens": 64000, "stream": False,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
        "context_management": {"edits": []}, "metadata": {"user_id": "u-1"},
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig-EXACT=="},
                                              {"type": "text", "text": "hello"}]},
            {"role": "user", "content": [{"type": "text", "text": "again", "cache_control": {"type": "ephemeral"}}]},
        ],
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}, WEATHER],
    }
    headers = {"Authorization": f"Bearer {TOKEN}", "anthropic-version": "2023-06-01",
               "anthropic-beta": "interleaved-thinking-2025-05-14,context-management-2025-06-27"}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url("/anthropic/v1/messages"), params={"beta": "true", "key": TOKEN}, json=body,
                          headers=headers) as r:
            assert r.status == 200, await r.text()
            reply = await r.json()
    seen = up.recorder.last
    assert seen["body"] == {**body, "model": "ok"}
    assert seen["query"] == {"beta": "true"}
    assert seen["headers"]["anthropic-beta"] == headers["anthropic-beta"]
    assert seen["headers"]["x-api-key"] == UPSTREAM_KEY and TOKEN not in json.dumps(seen)
    assert reply["model"] == "ok" and reply["content"][0]["text"] == "Hello from Claude"


async def test_count_tokens_models_and_probe(make_gateway, start_upstream):
    gw, _ = await gateway_for(make_gateway, start_upstream, "mock")
    c = client(gw)
    counted = await c.messages.count_tokens(model="ep-ok", messages=[{"role": "user", "content": "twelve chars"}])
    assert counted.input_tokens == (len("twelve chars") + 1) // 4
    (row,) = await gw.usage_rows(1)  # a count consumes no tokens
    assert (row["api_type"], row["input_tokens"], row["total_tokens"]) == ("anthropic/v1/messages/count_tokens", 0, 0)
    ids = [m.id async for m in c.models.list()]
    assert ids == ["ep-ok", "ep-tool", "ep-parallel"]
    async with aiohttp.ClientSession() as s:
        async with s.head(gw.url("/anthropic")) as r:
            assert r.status == 200


async def test_errors_in_anthropic_shape(make_gateway, start_upstream):
    gw, _ = await gateway_for(make_gateway, start_upstream, "mock")
    with pytest.raises(anthropic.NotFoundError) as info:
        await client(gw).messages.create(model="nope", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["type"] == "not_found_error"
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url("/anthropic/v1/messages"), headers={"x-api-key": TOKEN},
                          json={"model": "ep-ok", "messages": [{"role": "user", "content": "x"}]}) as r:
            assert r.status == 400
            body = await r.json()
    assert body == {"type": "error", "error": {"type": "invalid_request_error", "message": body["error"]["message"]}}
    assert "max_tokens" in body["error"]["message"]
    bad = anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        await bad.messages.create(model="ep-ok", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["type"] == "authentication_error"
