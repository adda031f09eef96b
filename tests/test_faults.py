"""Bad input and upstream faults: each a clear error in the caller's shape, never a hang."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import openai
import pytest

from tests.conftest import TOKEN, Gateway
from tests.upstreams import UPSTREAM_KEY

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def post(gw: Gateway, body: bytes | dict, path: str = "/mlflow/v1/chat/completions", **headers: str):
    kwargs = {"json": body} if isinstance(body, dict) else {"data": body}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url(path), headers={**AUTH, **headers}, **kwargs) as r:
            return r.status, await r.json(), r.headers


async def test_malformed_json_is_400(mock_gateway: Gateway):
    status, body, _ = await post(mock_gateway, b'{"model": "mock-chat", "messages": [')
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("payload, param", [
    ({"model": "mock-chat", "messages": "hi"}, "messages"),
    ({"model": "mock-chat", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
    ({"model": "mock-chat", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"model": 42, "messages": []}, "model"),
    ({"messages": [{"role": "user", "content": "x"}]}, None),
])
async def test_wrong_field_types_name_the_field(mock_gateway: Gateway, payload, param):
    status, body, _ = await post(mock_gateway, payload)
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    if param:
        assert body["error"]["param"] == param


async def test_body_over_the_cap_is_413(make_gateway):
    gw = await make_gateway({"mock": {"kind": "mock"}},
                            [{"name": "m", "served_entities": [{"provider": "mock", "model": "echo"}]}],
                            server={"max_body_bytes": 1000})
    big = {"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}
    status, body, _ = await post(gw, big)
    assert status == 413 and body["error"]["code"] == "payload_too_large"


async def test_unknown_path_is_404_in_shape(mock_gateway: Gateway):
    async with aiohttp.ClientSession() as s:
        async with s.get(mock_gateway.url("/mlflow/v1/nothing"), headers=AUTH) as r:
            assert r.status == 404
            assert (await r.json())["error"]["type"] == "not_found_error"
        async with s.get(mock_gateway.url("/mlflow/v1/chat/completions"), headers=AUTH) as r:
            assert r.status == 405 and "error" in await r.json()


async def test_chat_to_an_embeddings_endpoint_is_400(mock_gateway: Gateway):
    status, body, _ = await post(mock_gateway, {"model": "mock-embeddings", "messages": [{"role": "user", "content": "x"}]})
    assert status == 400 and "embeddings" in body["error"]["message"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def upstream_gateway(make_gateway, base_url: str, model: str, **provider):  # type: ignore[no-untyped-def]
    return await make_gateway({"up": {"kind": "openai", "api_key": UPSTREAM_KEY, "base_url": base_url, **provider}},
                              [{"name": "ep", "served_entities": [{"provider": "up", "model": model}]}])


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_connection_refused_is_502(make_gateway, stream):
    gw = await upstream_gateway(make_gateway, f"http://127.0.0.1:{free_port()}/v1", "x")
    status, body, _ = await post(gw, {"model": "ep", "stream": stream, "messages": [{"role": "user", "content": "x"}]})
    assert status == 502 and body["error"]["code"] == "upstream_unavailable"
    (row,) = await gw.usage_rows(1)
    assert row["status_code"] == 502 and row["error_code"] == "upstream_unavailable" and row["provider"] == "up"


@pytest.mark.parametrize("model, status, kind", [
    ("fail-500", 500, "server_error"), ("fail-503", 503, "server_error"),
    ("fail-429", 429, "rate_limit_error"), ("fail-400", 400, "invalid_request_error"),
])
async def test_upstream_error_status_keeps_its_meaning(make_gateway, start_upstream, model, status, kind):
    up = await start_upstream("openai")
    gw = await upstream_gateway(make_gateway, up.url + "/v1", model)
    got, body, headers = await post(gw, {"model": "ep", "messages": [{"role": "user", "content": "x"}]})
    assert got == status and body["error"]["type"] == kind
    assert f"upstream says {status}" in body["error"]["message"]
    if status == 429:
        assert headers["retry-after"] == "3"


async def test_upstream_rejecting_the_gateway_key_is_502_without_echoing_it(make_gateway, start_upstream):
    up = await start_upstream("openai")
    gw = await make_gateway({"up": {"kind": "openai", "api_key": "sk-wrong-key", "base_url": up.url + "/v1"}},
                            [{"name": "ep", "served_entities": [{"provider": "up", "model": "ok"}]}])
    status, body, _ = await post(gw, {"model": "ep", "messages": [{"role": "user", "content": "x"}]})
    assert status == 502 and "credentials" in body["error"]["message"]
    assert "sk-" not in str(body)


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_timeout_is_504(make_gateway, start_upstream, stream):
    up = await start_upstream("openai")
    gw = await upstream_gateway(make_gateway, up.url + "/v1", "hang", timeouts={"first_byte": 0.2, "total": 5})
    status, body, _ = await post(gw, {"model": "ep", "stream": stream, "messages": [{"role": "user", "content": "x"}]})
    assert status == 504 and body["error"]["code"] == "upstream_timeout"


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
async def test_upstream_invalid_json_is_502(make_gateway, start_upstream, kind):
    up = await start_upstream(kind)
    base = up.url + "/v1" if kind == "openai" else up.url
    gw = await make_gateway({"up": {"kind": kind, "api_key": UPSTREAM_KEY, "base_url": base}},
                            [{"name": "ep", "served_entities": [{"provider": "up", "model": "garbage"}]}])
    status, body, _ = await post(gw, {"model": "ep", "messages": [{"role": "user", "content": "x"}]})
    assert status == 502 and body["error"]["code"] == "upstream_invalid_response"


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
async def test_stream_cut_by_the_upstream_ends_with_an_error_event(make_gateway, start_upstream, kind):
    up = await start_upstream(kind)
    base = up.url + "/v1" if kind == "openai" else up.url
    gw = await make_gateway({"up": {"kind": kind, "api_key": UPSTREAM_KEY, "base_url": base}},
                            [{"name": "ep", "served_entities": [{"provider": "up", "model": "cut"}]}])
    client = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
    stream = await client.chat.completions.create(model="ep", messages=[{"role": "user", "content": "x"}], stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    (row,) = await gw.usage_rows(1)
    assert row["status_code"] >= 500 and row["error_code"]


async def test_client_disconnect_mid_stream_cancels_upstream_and_keeps_the_record(make_gateway, start_upstream):
    up = await start_upstream("openai")
    gw = await upstream_gateway(make_gateway, up.url + "/v1", "slow-stream")
    async with aiohttp.ClientSession() as s:
        resp = await s.post(gw.url("/v1/chat/completions"), headers=AUTH,
                            json={"model": "ep", "stream": True, "messages": [{"role": "user", "content": "x"}]})
        received = b""
        while received.count(b'"content": " w') < 3:  # three content deltas (9 characters) relayed
            chunk = await resp.content.readany()
            assert chunk, "the stream ended early"
            received += chunk
        resp.close()  # the caller walks away mid-stream
    await asyncio.wait_for(up.recorder.cancelled.wait(), 10)
    (row,) = await gw.usage_rows(1)
    assert row["status_code"] == 499 and row["error_code"] == "client_disconnected"
    assert row["streaming"] == 1 and row["output_tokens"] > 0 and row["tokens_estimated"] == 1


async def test_fallback_after_a_503(mock_gateway: Gateway, make_gateway):
    gw = await make_gateway({"mock": {"kind": "mock"}}, [{
        "name": "ep", "served_entities": [{"provider": "mock", "model": "error-503"}],
        "fallbacks": [{"provider": "mock", "model": "error-429"}, {"provider": "mock", "model": "echo"}],
    }])
    status, body, _ = await post(gw, {"model": "ep", "messages": [{"role": "user", "content": "x"}]})
    assert status == 200 and body["choices"][0]["message"]["content"] == "Echo: x"
    (row,) = await gw.usage_rows(1)
    assert row["provider_model"] == "echo"


async def test_no_fallback_after_a_400(make_gateway):
    gw = await make_gateway({"mock": {"kind": "mock"}}, [{
        "name": "ep", "served_entities": [{"provider": "mock", "model": "error-400"}],
        "fallbacks": [{"provider": "mock", "model": "echo"}],
    }])
    status, _, _ = await post(gw, {"model": "ep", "messages": [{"role": "user", "content": "x"}]})
    assert status == 400


async def test_bad_request_tags_are_400(mock_gateway: Gateway):
    status, body, _ = await post(mock_gateway, {"model": "mock-chat", "messages": [{"role": "user", "content": "x"}]},
                                 **{"Databricks-Ai-Gateway-Request-Tags": '{"team": 5}'})
    assert status == 400 and "Request-Tags" in body["error"]["message"]


def test_relay_never_splices_raw_halves_with_reframed_events():
    """The gateway's own usage event is dropped and every other event survives whole,
    however the upstream's bytes are split into reads."""
    from gateway.streaming.passthrough import ChatStreamSniffer

    stream = (b'data: {"id":"a","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
              b'data: {"id":"a","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\n'
              b"data: [DONE]\n\n")
    expected = b'data: {"id":"a","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'
    for cut in range(1, len(stream)):
        sniffer = ChatStreamSniffer(drop_usage_chunk=True)
        out = sniffer.relay(stream[:cut]) + sniffer.relay(stream[cut:]) + sniffer.finish()
        assert out == expected, cut
        assert sniffer.usage is not None and sniffer.usage.output_tokens == 2


async def streamed_chat(gw: Gateway) -> bytes:
    """A streamed chat to endpoint ``ep``: its status must be 200; the whole body, once it ends."""
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url("/v1/chat/completions"), headers=AUTH,
                          json={"model": "ep", "stream": True, "messages": [{"role": "user", "content": "x"}]}) as r:
            assert r.status == 200
            return await r.read()


def _fail_on_call(monkeypatch: pytest.MonkeyPatch, owner: type, name: str, n: int) -> None:
    """Make the ``n``th call of ``owner.name`` raise a plain (non-gateway) exception; each is
    made after the response's status line went out."""
    original = getattr(owner, name)
    calls = 0

    def failing(self, *args):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == n:
            raise RuntimeError("a bug in the gateway")
        return original(self, *args)

    monkeypatch.setattr(owner, name, failing)


async def test_a_bug_mid_relayed_stream_ends_the_body_with_an_error_event(make_gateway, start_upstream, monkeypatch):
    from gateway.streaming.passthrough import ChatStreamSniffer

    _fail_on_call(monkeypatch, ChatStreamSniffer, "relay", 1)
    up = await start_upstream("openai")
    gw = await upstream_gateway(make_gateway, up.url + "/v1", "echo")
    body = await streamed_chat(gw)  # the body ends: no hang, no second status line inside it
    assert b"HTTP/1.1" not in body and b"Internal error; see the gateway log for request" in body
    (row,) = await gw.usage_rows(1)
    assert (row["status_code"], row["error_code"], row["streaming"]) == (500, "internal_error", 1)


async def test_a_bug_mid_encoded_stream_ends_the_body_with_an_error_event(mock_gateway: Gateway, monkeypatch):
    import anthropic

    from gateway.codecs.anthropic_messages import AnthropicStreamEncoder

    _fail_on_call(monkeypatch, AnthropicStreamEncoder, "encode", 2)
    client = anthropic.AsyncAnthropic(base_url=mock_gateway.url("/anthropic"), api_key=TOKEN, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(model="mock-chat", max_tokens=50,
                                          messages=[{"role": "user", "content": "pace-1ms one two three four"}]) as s:
            async for _ in s:
                pass
    assert "Internal error; see the gateway log" in str(info.value)
    (row,) = await mock_gateway.usage_rows(1)
    assert (row["status_code"], row["error_code"]) == (500, "internal_error")


async def test_a_bug_while_closing_a_relayed_stream_ends_the_body_without_a_second_status_line(
        make_gateway, start_upstream, monkeypatch):
    """The upstream stream is closed after the last chunk went out: a failure there is past
    the point where the edge could still answer with a status."""
    from gateway.providers.base import ProviderStream

    original = ProviderStream.aclose

    async def failing_aclose(self):  # type: ignore[no-untyped-def]
        await original(self)
        raise RuntimeError("a bug in the gateway")

    monkeypatch.setattr(ProviderStream, "aclose", failing_aclose)
    up = await start_upstream("openai")
    gw = await upstream_gateway(make_gateway, up.url + "/v1", "echo")
    body = await streamed_chat(gw)
    assert b"HTTP/1.1" not in body and b"Internal error; see the gateway log for request" in body
    (row,) = await gw.usage_rows(1)
    assert (row["status_code"], row["error_code"]) == (500, "internal_error")
    assert row["output_tokens"] > 0  # what was streamed is still counted


async def test_a_bug_after_a_stream_was_written_is_not_answered_with_a_new_response(mock_gateway: Gateway, monkeypatch):
    """Whatever raises once a stream's status line is out, the edge ends that stream (with
    the API's error event) instead of rendering a 500 into its body."""
    from gateway.server import chat_flow

    original = chat_flow.stream_events

    async def then_fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        await original(*args, **kwargs)
        raise RuntimeError("a bug in the gateway")

    monkeypatch.setattr(chat_flow, "stream_events", then_fail)
    async with aiohttp.ClientSession() as s:
        async with s.post(mock_gateway.url("/anthropic/v1/messages"), headers=AUTH,
                          json={"model": "mock-chat", "max_tokens": 50, "stream": True,
                                "messages": [{"role": "user", "content": "hello"}]}) as r:
            assert r.status == 200
            body = await r.read()
    assert b"HTTP/1.1" not in body and body.count(b"event: message_stop") == 1
    (row,) = await mock_gateway.usage_rows(1)
    assert (row["status_code"], row["error_code"], row["streaming"]) == (500, "internal_error", 1)
    assert row["output_tokens"] > 0


async def test_an_encoder_that_cannot_be_made_closes_the_provider_stream(make_gateway, start_upstream, monkeypatch):
    """The provider stream is open once routing returns: a failure before the first write
    must close it, not leave the upstream streaming to nobody."""
    from gateway.server.anthropic_api import ANTHROPIC

    def no_encoder(call):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug in the gateway")

    monkeypatch.setattr(ANTHROPIC, "stream_encoder", no_encoder)
    up = await start_upstream("openai")
    gw = await upstream_gateway(make_gateway, up.url + "/v1", "slow-stream")
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url("/anthropic/v1/messages"), headers=AUTH,
                          json={"model": "ep", "max_tokens": 50, "stream": True,
                                "messages": [{"role": "user", "content": "x"}]}) as r:
            assert r.status == 500
            assert (await r.json())["error"]["type"] == "api_error"
    await asyncio.wait_for(up.recorder.cancelled.wait(), 10)
    (row,) = await gw.usage_rows(1)
    assert (row["status_code"], row["error_code"]) == (500, "internal_error")
