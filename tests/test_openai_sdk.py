"""The official openai SDK, sync and async, against the gateway's mock endpoints."""

from __future__ import annotations

import asyncio
import base64
import json
import struct

import openai
import pytest

from tests.conftest import TOKEN, Gateway
from tests.upstreams import UPSTREAM_KEY

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
    },
}


def sync_client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url("/mlflow/v1"), api_key=TOKEN, max_retries=0)


def async_client(gw: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url("/mlflow/v1"), api_key=TOKEN, max_retries=0)


async def translated_gateway(make_gateway, start_upstream, kind: str):  # type: ignore[no-untyped-def]
    """A gateway whose endpoint ``ep`` is served by a fake ``kind`` provider: Chat Completions is translated."""
    up = await start_upstream(kind)
    gw = await make_gateway({"up": {"kind": kind, "api_key": UPSTREAM_KEY, "base_url": up.url}},
                            [{"name": "ep", "served_entities": [{"provider": "up", "model": "ok"}]}])
    return gw, up


async def test_sync_sdk_chat_completion(mock_gateway: Gateway):
    client = sync_client(mock_gateway)
    reply = await asyncio.to_thread(
        client.chat.completions.create, model="mock-chat",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}],
    )
    assert reply.choices[0].message.content == "Echo: hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "mock-chat"
    assert reply.usage.prompt_tokens == (len("be brief") + len("hello there") + 1) // 4
    assert reply.usage.completion_tokens == (len("Echo: hello there") + 1) // 4


async def test_sync_sdk_stream_with_usage(mock_gateway: Gateway):
    client = sync_client(mock_gateway)

    def run() -> list:
        return list(client.chat.completions.create(
            model="mock-chat", messages=[{"role": "user", "content": "one two three"}],
            stream=True, stream_options={"include_usage": True},
        ))

    chunks = await asyncio.to_thread(run)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three"
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == (len(text) + 1) // 4


async def test_async_sdk_stream_without_usage_sends_no_usage_chunk(mock_gateway: Gateway):
    client = async_client(mock_gateway)
    stream = await client.chat.completions.create(
        model="mock-chat", messages=[{"role": "user", "content": "hi"}], stream=True)
    chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: hi"


async def test_async_sdk_tool_call_round_trip(mock_gateway: Gateway):
    client = async_client(mock_gateway)
    messages = [{"role": "user", "content": "Paris"}]
    first = await client.chat.completions.create(model="mock-tools", messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 1}
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}]
    second = await client.chat.completions.create(model="mock-tools", messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "Tool result: sunny, 21C"


async def test_async_sdk_streamed_parallel_tool_calls_accumulate(mock_gateway: Gateway):
    client = async_client(mock_gateway)
    time_tool = {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"zone": {"type": "string"}}}}}
    stream = await client.chat.completions.create(
        model="mock-parallel", messages=[{"role": "user", "content": "CET"}], tools=[WEATHER_TOOL, time_tool], stream=True)
    calls: dict[int, dict] = {}
    finish = None
    async for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for tc in choice.delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
            slot["id"] = tc.id or slot["id"]
            slot["name"] = (tc.function.name if tc.function else None) or slot["name"]
            slot["arguments"] += (tc.function.arguments or "") if tc.function else ""
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "CET", "days": 1}
    assert json.loads(calls[1]["arguments"]) == {"zone": "CET"}
    assert calls[0]["id"] != calls[1]["id"]


async def test_max_tokens_stops_with_length(mock_gateway: Gateway):
    client = async_client(mock_gateway)
    reply = await client.chat.completions.create(
        model="mock-chat", messages=[{"role": "user", "content": "a b c d e f"}], max_tokens=3)
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content == "Echo: a b"


async def test_image_input_is_accepted(mock_gateway: Gateway):
    client = async_client(mock_gateway)
    reply = await client.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]}])
    assert reply.choices[0].message.content == "Echo: what is this"


async def test_embeddings_float_and_base64(mock_gateway: Gateway):
    client = async_client(mock_gateway)
    floats = await client.embeddings.create(model="mock-embeddings", input=["a", "b"], encoding_format="float")
    assert [d.index for d in floats.data] == [0, 1]
    assert len(floats.data[0].embedding) == 8 and floats.data[0].embedding != floats.data[1].embedding
    # The SDK asks for base64 by default and decodes it itself.
    decoded = await client.embeddings.create(model="mock-embeddings", input="a")
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    raw = await client.embeddings.with_raw_response.create(model="mock-embeddings", input="a", encoding_format="base64")
    packed = base64.b64decode(json.loads(raw.text)["data"][0]["embedding"])
    assert struct.unpack("<8f", packed) == pytest.approx(floats.data[0].embedding, abs=1e-6)


async def test_models_lists_endpoints(mock_gateway: Gateway):
    client = async_client(mock_gateway)
    ids = [m.id async for m in client.models.list()]
    assert ids == ["mock-chat", "mock-tools", "mock-parallel", "mock-embeddings"]


@pytest.mark.parametrize("base", ["/v1", "/ai-gateway/mlflow/v1", "/serving-endpoints", "/ai-gateway/serving-endpoints"])
async def test_alias_paths_serve_chat(mock_gateway: Gateway, base: str):
    client = openai.AsyncOpenAI(base_url=mock_gateway.url(base), api_key=TOKEN, max_retries=0)
    reply = await client.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": "x"}])
    assert reply.choices[0].message.content == "Echo: x"


async def test_unknown_endpoint_is_a_404_the_sdk_understands(mock_gateway: Gateway):
    client = async_client(mock_gateway)
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert "nope" in info.value.message
    assert info.value.body["code"] == "endpoint_not_found"


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
async def test_a_translated_tool_with_null_parameters_reaches_the_provider_without_a_null_schema(
        make_gateway, start_upstream, kind):
    gw, up = await translated_gateway(make_gateway, start_upstream, kind)
    await async_client(gw).chat.completions.create(model="ep", messages=[{"role": "user", "content": "time?"}], tools=[
        {"type": "function", "function": {"name": "now", "parameters": None}}])
    sent = up.recorder.last["body"]["tools"]
    if kind == "anthropic":
        assert sent == [{"name": "now", "input_schema": {"type": "object", "properties": {}}}]
    else:
        assert sent == [{"functionDeclarations": [{"name": "now"}]}]


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
@pytest.mark.parametrize("asked", [{"logprobs": True}, {"logprobs": True, "top_logprobs": 3}, {"top_logprobs": 3}])
async def test_logprobs_are_refused_when_translating_rather_than_answered_with_none(
        make_gateway, start_upstream, kind, asked):
    gw, up = await translated_gateway(make_gateway, start_upstream, kind)
    with pytest.raises(openai.BadRequestError) as info:
        await async_client(gw).chat.completions.create(
            model="ep", messages=[{"role": "user", "content": "hi"}], **asked)
    assert info.value.param in asked and "logprobs" in info.value.message
    assert up.recorder.requests == []
    reply = await async_client(gw).chat.completions.create(
        model="ep", messages=[{"role": "user", "content": "hi"}], logprobs=False)
    assert reply.choices[0].message.content
