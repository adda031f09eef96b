"""The native Gemini API through the official google-genai SDK, against every provider kind."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from google import genai
from google.genai import types

from tests.conftest import TOKEN, Gateway
from tests.upstreams import UPSTREAM_KEY

KINDS = ["mock", "openai", "anthropic", "gemini"]
WEATHER = types.FunctionDeclaration(
    name="get_weather", description="Weather for a city",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}},
)
EXPECTED_TEXT = {"mock": "Echo: hello", "openai": "Hello from OpenAI", "anthropic": "Hello from Claude",
                 "gemini": "Hello from Gemini"}


async def gateway_for(make_gateway, start_upstream, kind: str):  # type: ignore[no-untyped-def]
    if kind == "mock":
        providers = {"up": {"kind": "mock"}}
        models = {"ok": "echo", "tool": "tool", "embed": "embed"}
        up = None
    else:
        up = await start_upstream(kind)
        base = up.url + "/v1" if kind == "openai" else up.url
        providers = {"up": {"kind": kind, "api_key": UPSTREAM_KEY, "base_url": base}}
        models = {"ok": "ok", "tool": "tool", "embed": "embed"}
    endpoints = [{"name": f"ep-{k}", "served_entities": [{"provider": "up", "model": m}]} for k, m in models.items() if k != "embed"]
    if kind in ("mock", "openai", "gemini"):
        endpoints.append({"name": "ep-embed", "task": "embeddings", "served_entities": [{"provider": "up", "model": models["embed"]}]})
    return await make_gateway(providers, endpoints), up


def client(gw: Gateway, version: str = "v1beta") -> genai.Client:
    # As the issue describes: a base_url and an Authorization header; the api_key is a placeholder.
    return genai.Client(api_key="placeholder", http_options=types.HttpOptions(
        base_url=gw.url("/gemini"), api_version=version, headers={"Authorization": f"Bearer {TOKEN}"}))


@pytest.mark.parametrize("kind", KINDS)
async def test_generate_content(make_gateway, start_upstream, kind):
    gw, up = await gateway_for(make_gateway, start_upstream, kind)
    reply = await client(gw).aio.models.generate_content(
        model="ep-ok", contents="hello",
        config=types.GenerateContentConfig(system_instruction="be brief", temperature=0.3, max_output_tokens=100))
    assert reply.text.strip() == EXPECTED_TEXT[kind]
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert reply.usage_metadata.prompt_token_count > 0
    if up is not None:
        seen = up.recorder.last
        assert TOKEN not in json.dumps(seen) and "placeholder" not in json.dumps(seen)
        if kind == "gemini":  # same format: the body went through untouched
            assert seen["body"]["systemInstruction"] == {"parts": [{"text": "be brief"}], "role": "user"} or \
                seen["body"]["systemInstruction"]["parts"] == [{"text": "be brief"}]
            assert seen["path"] == "/v1beta/models/ok:generateContent"
        elif kind == "anthropic":
            assert seen["body"]["system"] == [{"type": "text", "text": "be brief"}]
        else:
            assert seen["body"]["messages"][0] == {"role": "system", "content": "be brief"}


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_generate_content_sse(make_gateway, start_upstream, kind):
    gw, _ = await gateway_for(make_gateway, start_upstream, kind)
    chunks = [c async for c in await client(gw).aio.models.generate_content_stream(model="ep-ok", contents="hello")]
    assert "".join(c.text or "" for c in chunks).strip() == EXPECTED_TEXT[kind]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count > 0
    (row,) = await gw.usage_rows(1)
    assert row["api_type"] == "gemini/v1beta/models/{call}" and row["streaming"] == 1 and row["output_tokens"] > 0


@pytest.mark.parametrize("kind", KINDS)
async def test_function_call_round_trip(make_gateway, start_upstream, kind):
    gw, up = await gateway_for(make_gateway, start_upstream, kind)
    c = client(gw, version="v1")
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])],
                                         automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    first = await c.aio.models.generate_content(model="ep-tool", contents="Paris", config=config)
    (call,) = first.function_calls
    assert call.name == "get_weather" and call.args == {"city": "Paris"}
    contents = [types.Content(role="user", parts=[types.Part(text="Paris")]), first.candidates[0].content,
                types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather", response={"temp": 21})])]
    second = await c.aio.models.generate_content(model="ep-ok" if kind != "mock" else "ep-tool", contents=contents, config=config)
    if kind == "mock":
        assert second.text == 'Tool result: {"temp":21}'
    else:
        assert second.text.strip() == EXPECTED_TEXT[kind]
        sent = up.recorder.last["body"]
        if kind == "openai":
            assert sent["messages"][-1]["role"] == "tool" and json.loads(sent["messages"][-1]["content"]) == {"temp": 21}
        elif kind == "anthropic":
            assert sent["messages"][-1]["content"][0]["type"] == "tool_result"
        else:
            assert sent["contents"][-1]["parts"][0]["functionResponse"]["response"] == {"temp": 21}


@pytest.mark.parametrize("kind", ["mock", "openai", "gemini"])
async def test_embed_content(make_gateway, start_upstream, kind):
    gw, _ = await gateway_for(make_gateway, start_upstream, kind)
    reply = await client(gw).aio.models.embed_content(model="ep-embed", contents=["a", "b"])
    assert len(reply.embeddings) == 2 and all(e.values for e in reply.embeddings)


async def test_count_tokens_and_model_list(make_gateway, start_upstream):
    gw, _ = await gateway_for(make_gateway, start_upstream, "mock")
    c = client(gw)
    counted = await c.aio.models.count_tokens(model="ep-ok", contents="twelve chars")
    assert counted.total_tokens == (len("twelve chars") + 1) // 4
    (row,) = await gw.usage_rows(1)  # a count consumes no tokens
    assert (row["input_tokens"], row["total_tokens"], row["status_code"]) == (0, 0, 200)
    names = [m.name async for m in await c.aio.models.list()]
    assert "models/ep-ok" in names and "models/ep-embed" in names


async def test_json_array_stream_and_errors_in_gemini_shape(make_gateway, start_upstream):
    import aiohttp

    gw, _ = await gateway_for(make_gateway, start_upstream, "mock")
    headers = {"x-goog-api-key": TOKEN}
    body = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url("/gemini/v1beta/models/ep-ok:streamGenerateContent"), json=body, headers=headers) as r:
            assert r.status == 200 and r.headers["content-type"].startswith("application/json")
            chunks = json.loads(await r.text())
        assert "".join(p["text"] for c in chunks for p in c["candidates"][0]["content"].get("parts", [])) == "Echo: hello"
        async with s.post(gw.url("/gemini/v1beta/models/nope:generateContent"), json=body, headers=headers) as r:
            assert r.status == 404 and (await r.json())["error"]["status"] == "NOT_FOUND"
        async with s.post(gw.url("/gemini/v1beta/models/ep-ok:generateContent"), json=body) as r:
            assert r.status == 401 and (await r.json())["error"]["status"] == "UNAUTHENTICATED"
        async with s.post(gw.url("/gemini/v1beta/models/ep-ok:generateContent"), data=b"{bad", headers=headers) as r:
            assert r.status == 400 and (await r.json())["error"]["status"] == "INVALID_ARGUMENT"


def _interleaving_openai_upstream() -> web.Application:
    """An OpenAI-compatible server that streams text between the pieces of two tool calls,
    as some compatible servers do: each call starts, text arrives, then the arguments end."""
    def chunk(delta: dict) -> bytes:
        body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta}]}
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    def call(index: int, arguments: str, name: str | None = None) -> dict:
        piece: dict = {"index": index, "function": {"arguments": arguments}}
        if name:
            piece.update(id=f"call_{index}", type="function")
            piece["function"]["name"] = name
        return {"tool_calls": [piece]}

    events = [
        chunk({"role": "assistant", "content": ""}),
        chunk(call(0, '{"city": ', "get_weather")),
        chunk({"content": "Looking "}),
        chunk(call(0, '"Paris"}')),
        chunk(call(1, '{"ci', "get_weather")),
        chunk({"content": "that up."}),
        chunk(call(1, 'ty": "Rome"}')),
        b'data: {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": '
        b'[{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}\n\n',
        b"data: [DONE]\n\n",
    ]

    async def chat(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for event in events:
            await resp.write(event)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app


async def test_stream_with_text_between_tool_call_pieces_sends_each_call_whole(make_gateway, aiohttp_server):
    up = await aiohttp_server(_interleaving_openai_upstream())
    gw = await make_gateway({"up": {"kind": "openai", "api_key": UPSTREAM_KEY, "base_url": str(up.make_url("/v1"))}},
                            [{"name": "ep", "served_entities": [{"provider": "up", "model": "m"}]}])
    text, calls = "", []
    async for chunk in await client(gw).aio.models.generate_content_stream(
            model="ep", contents="weather in Paris and Rome?",
            config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])):
        for part in chunk.candidates[0].content.parts if chunk.candidates[0].content else []:
            if part.function_call:
                calls.append((part.function_call.name, part.function_call.args))
            elif part.text:
                text += part.text
    assert text == "Looking that up."
    assert calls == [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]
    (row,) = await gw.usage_rows(1)
    assert (row["status_code"], row["error_code"]) == (200, None)
