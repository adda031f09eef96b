"""The OpenAI Responses API through the official openai SDK, against every provider kind."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import OTHER_TOKEN, TOKEN, Gateway
from tests.upstreams import UPSTREAM_KEY

KINDS = ["mock", "openai", "anthropic", "gemini"]
EXPECTED = {"mock": "Echo: hello", "openai": "Hello from OpenAI", "anthropic": "Hello from Claude",
            "gemini": "Hello from Gemini"}
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


async def gateway_for(make_gateway, start_upstream, kind: str):  # type: ignore[no-untyped-def]
    if kind == "mock":
        providers, up = {"up": {"kind": "mock"}}, None
        models = {"ok": "echo", "tool": "tool"}
    else:
        up = await start_upstream(kind)
        base = up.url + "/v1" if kind == "openai" else up.url
        providers = {"up": {"kind": kind, "api_key": UPSTREAM_KEY, "base_url": base}}
        models = {"ok": "ok", "tool": "tool"}
    endpoints = [{"name": f"ep-{k}", "served_entities": [{"provider": "up", "model": m}]} for k, m in models.items()]
    return await make_gateway(providers, endpoints), up


def client(gw: Gateway, base: str = "/openai/v1") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url(base), api_key=TOKEN, max_retries=0)


@pytest.mark.parametrize("kind", KINDS)
async def test_create_response(make_gateway, start_upstream, kind):
    gw, up = await gateway_for(make_gateway, start_upstream, kind)
    reply = await client(gw).responses.create(model="ep-ok", input="hello", instructions="be brief", max_output_tokens=64)
    assert reply.output_text.strip() == EXPECTED[kind]
    assert reply.status == "completed" and reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    if kind == "openai":  # same format: passed through, model rewritten
        assert up.recorder.last["path"] == "/v1/responses"
        assert up.recorder.last["body"] == {"model": "ok", "input": "hello", "instructions": "be brief", "max_output_tokens": 64}
    elif kind == "anthropic":
        assert up.recorder.last["body"]["system"] == [{"type": "text", "text": "be brief"}]
    (row,) = await gw.usage_rows(1)
    assert row["api_type"] == "openai/v1/responses" and row["input_tokens"] == reply.usage.input_tokens


@pytest.mark.parametrize("kind", KINDS)
async def test_streamed_response(make_gateway, start_upstream, kind):
    gw, _ = await gateway_for(make_gateway, start_upstream, kind)
    async with client(gw, "/codex/v1").responses.stream(model="ep-ok", input="hello") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas).strip() == EXPECTED[kind] and final.output_text.strip() == EXPECTED[kind]
    assert final.usage.total_tokens > 0
    (row,) = await gw.usage_rows(1)
    assert row["streaming"] == 1 and row["output_tokens"] > 0 and row["tokens_estimated"] == 0


@pytest.mark.parametrize("kind", ["mock", "anthropic", "gemini"])
async def test_function_call_and_previous_response_id(make_gateway, start_upstream, kind):
    gw, up = await gateway_for(make_gateway, start_upstream, kind)
    c = client(gw)
    first = await c.responses.create(model="ep-tool", input="Paris", tools=[WEATHER])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    follow = await c.responses.create(
        model="ep-tool" if kind == "mock" else "ep-ok", previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp": 21}'}])
    if kind == "mock":
        assert follow.output_text == 'Tool result: {"temp": 21}'
    else:
        sent = up.recorder.last["body"]
        turns = sent["messages"] if kind == "anthropic" else sent["contents"]
        assert len(turns) == 3, "the stored conversation was expanded: user, tool call, tool result"


async def test_store_false_keeps_nothing(make_gateway, start_upstream):
    gw, _ = await gateway_for(make_gateway, start_upstream, "mock")
    c = client(gw)
    first = await c.responses.create(model="ep-ok", input="hello", store=False)
    with pytest.raises(openai.BadRequestError) as info:
        await c.responses.create(model="ep-ok", input="again", previous_response_id=first.id)
    assert info.value.param == "previous_response_id" and first.id in info.value.message


async def test_unknown_endpoint_and_bad_input_are_openai_errors(make_gateway, start_upstream):
    gw, _ = await gateway_for(make_gateway, start_upstream, "mock")
    with pytest.raises(openai.NotFoundError):
        await client(gw).responses.create(model="nope", input="x")
    with pytest.raises(openai.BadRequestError):
        await client(gw).responses.create(model="ep-ok", input=[{"type": "message", "role": "user", "content": 5}])


async def test_null_settings_are_answered_and_bad_ones_refused_before_the_provider(make_gateway, start_upstream):
    gw, up = await gateway_for(make_gateway, start_upstream, "anthropic")
    reply = await client(gw).responses.create(model="ep-ok", input="hello", extra_body={
        "store": None, "parallel_tool_calls": None, "truncation": None, "tool_choice": None})
    assert reply.output_text.strip() == EXPECTED["anthropic"]
    assert (reply.parallel_tool_calls, reply.truncation, reply.tool_choice) == (True, "disabled", "auto")
    calls = len(up.recorder.requests)
    with pytest.raises(openai.BadRequestError) as info:
        await client(gw).responses.create(model="ep-ok", input="hello", extra_body={"parallel_tool_calls": "yes"})
    assert "parallel_tool_calls" in info.value.message
    assert len(up.recorder.requests) == calls  # refused before any provider was asked


async def test_a_long_conversation_chains_through_the_store(make_gateway, start_upstream):
    gw, up = await gateway_for(make_gateway, start_upstream, "anthropic")
    previous = None
    for turn in range(4):
        reply = await client(gw).responses.create(model="ep-ok", input=f"turn {turn}", previous_response_id=previous)
        previous = reply.id
    sent = up.recorder.last["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant"] * 3 + ["user"]
    assert sent[0]["content"][0]["text"] == "turn 0" and sent[-1]["content"][0]["text"] == "turn 3"


class _RecordingDecoder:
    """A msgspec decoder that notes every buffer it is given."""

    def __init__(self, decoder, seen: list[bytes]) -> None:  # type: ignore[no-untyped-def]
        self._decoder = decoder
        self._seen = seen

    def decode(self, buf):  # type: ignore[no-untyped-def]
        self._seen.append(bytes(buf))
        return self._decoder.decode(buf)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_translated_request_is_decoded_once_and_a_stored_conversation_never_whole(
        make_gateway, start_upstream, monkeypatch, stream):
    import aiohttp
    import msgspec

    from gateway.codecs import openai_responses as codec
    from gateway.streaming import passthrough as relay

    seen: list[bytes] = []
    for module in (codec, relay):
        for name, value in list(vars(module).items()):
            if isinstance(value, msgspec.json.Decoder):
                monkeypatch.setattr(module, name, _RecordingDecoder(value, seen))
    gw, up = await gateway_for(make_gateway, start_upstream, "anthropic")

    async def ask(body: dict) -> tuple[bytes, str]:
        raw = json.dumps(body).encode()
        async with aiohttp.ClientSession() as s:
            async with s.post(gw.url("/openai/v1/responses"), data=raw, headers={
                    "Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}) as r:
                assert r.status == 200
                text = await r.text()
        if stream:
            done = [line for line in text.splitlines() if line.startswith("data:") and "response.completed" in line]
            return raw, json.loads(done[0][5:])["response"]["id"]
        return raw, json.loads(text)["id"]

    first, first_id = await ask({"model": "ep-ok", "input": "first question", "stream": stream,
                                 "tools": [WEATHER], "temperature": 0.5})
    assert seen.count(first) == 1
    seen.clear()
    second, _ = await ask({"model": "ep-ok", "input": "second question", "stream": stream,
                           "previous_response_id": first_id})
    whole = [buf for buf in seen if b"first question" in buf and b"second question" in buf]
    assert whole == [], "the expanded conversation was decoded again"
    assert seen.count(second) <= 2  # to route and answer; and shallowly, to rebuild the body for OpenAI
    sent = up.recorder.last["body"]["messages"]
    assert [m["content"][0]["text"] for m in sent if m["role"] == "user"] == ["first question", "second question"]


async def test_a_chained_conversation_is_stored_once_per_turn_not_once_per_response(make_gateway, start_upstream):
    """Memory grows with the conversation's length, not its square: each response keeps its
    own turn (its new input, its output) and a link to the one it continued."""
    from gateway.state import RESPONSES

    gw, _ = await gateway_for(make_gateway, start_upstream, "mock")
    previous = None
    for turn in range(6):
        reply = await client(gw).responses.create(model="ep-ok", input=f"turn {turn}", previous_response_id=previous,
                                                  stream=turn % 2 == 1)
        if turn % 2 == 1:
            reply = [e async for e in reply if e.type == "response.completed"][0].response
        previous = reply.id
    turns = gw.app[RESPONSES]._turns  # noqa: SLF001 - what the store holds is the point
    assert [len(t.items) for t in turns.values()] == [2] * 6
    conversation = gw.app[RESPONSES].get(previous, "alice@example.com")
    assert [json.loads(bytes(i)).get("content") for i in conversation[::2]] == [f"turn {n}" for n in range(6)]


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
async def test_a_function_tool_with_null_parameters_reaches_the_provider_without_a_null_schema(
        make_gateway, start_upstream, kind):
    # The SDK's FunctionToolParam makes `parameters` required but nullable: a tool without arguments.
    gw, up = await gateway_for(make_gateway, start_upstream, kind)
    await client(gw).responses.create(model="ep-ok", input="what time is it?", tools=[
        {"type": "function", "name": "now", "parameters": None, "strict": None}])
    sent = up.recorder.last["body"]["tools"]
    if kind == "anthropic":
        assert sent == [{"name": "now", "input_schema": {"type": "object", "properties": {}}}]
    else:
        assert sent == [{"functionDeclarations": [{"name": "now"}]}]


async def test_an_unknown_previous_response_id_is_refused_as_openai_refuses_it(make_gateway, start_upstream):
    gw, up = await gateway_for(make_gateway, start_upstream, "anthropic")
    with pytest.raises(openai.BadRequestError) as info:
        await client(gw).responses.create(model="ep-ok", input="again", previous_response_id="resp_expired")
    assert info.value.body["message"] == "Previous response with id 'resp_expired' not found."
    assert info.value.param == "previous_response_id"
    assert up.recorder.requests == []


async def test_a_stored_conversation_is_continued_only_by_the_principal_that_made_it(make_gateway, start_upstream):
    # OpenAI scopes stored responses to their owner; anyone else holding the id gets "not found".
    gw, up = await gateway_for(make_gateway, start_upstream, "anthropic")
    first = await client(gw).responses.create(model="ep-ok", input="my secret plan")
    bob = openai.AsyncOpenAI(base_url=gw.url("/openai/v1"), api_key=OTHER_TOKEN, max_retries=0)
    calls = len(up.recorder.requests)
    with pytest.raises(openai.BadRequestError) as info:
        await bob.responses.create(model="ep-ok", input="what was the plan?", previous_response_id=first.id)
    assert info.value.param == "previous_response_id" and len(up.recorder.requests) == calls
    await client(gw).responses.create(model="ep-ok", input="go on", previous_response_id=first.id)
    assert up.recorder.last["body"]["messages"][0]["content"][0]["text"] == "my secret plan"


@pytest.mark.parametrize("asked, param", [({"top_logprobs": 3}, "top_logprobs"),
                                          ({"include": ["message.output_text.logprobs"]}, "include")])
async def test_logprobs_are_refused_when_translating_rather_than_answered_empty(
        make_gateway, start_upstream, asked, param):
    gw, up = await gateway_for(make_gateway, start_upstream, "anthropic")
    with pytest.raises(openai.BadRequestError) as info:
        await client(gw).responses.create(model="ep-ok", input="hi", **asked)
    assert info.value.param == param and "logprobs" in info.value.message
    assert up.recorder.requests == []
    reply = await client(gw).responses.create(model="ep-ok", input="hi", top_logprobs=0,
                                              include=["reasoning.encrypted_content"])
    assert reply.output_text.strip() == EXPECTED["anthropic"]


async def test_allowed_tools_restricts_the_tools_the_provider_is_offered(make_gateway, start_upstream):
    gw, up = await gateway_for(make_gateway, start_upstream, "anthropic")
    time_tool = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}
    await client(gw).responses.create(model="ep-ok", input="time in Paris?", tools=[WEATHER, time_tool], tool_choice={
        "type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_time"}]})
    sent = up.recorder.last["body"]
    assert [t["name"] for t in sent["tools"]] == ["get_time"] and sent["tool_choice"] == {"type": "any"}
    with pytest.raises(openai.BadRequestError) as info:
        await client(gw).responses.create(model="ep-ok", input="x", tools=[WEATHER], tool_choice={
            "type": "allowed_tools", "mode": "sometimes", "tools": []})
    assert info.value.param == "tool_choice.mode"
