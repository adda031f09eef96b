"""Every token form, 401 in each API's shape, and credentials never reaching providers."""

from __future__ import annotations

import base64

import aiohttp
import anthropic
import pytest
from google import genai

from tests.conftest import TOKEN, Gateway
from tests.upstreams import UPSTREAM_KEY

CHAT = {"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("how", ["bearer", "basic", "x-api-key", "x-goog-api-key", "query"])
async def test_every_token_form_is_accepted(mock_gateway: Gateway, how: str):
    headers, params = {}, {}
    if how == "bearer":
        headers["Authorization"] = f"Bearer {TOKEN}"
    elif how == "basic":
        headers["Authorization"] = "Basic " + base64.b64encode(f"token:{TOKEN}".encode()).decode()
    elif how == "query":
        params["key"] = TOKEN
    else:
        headers[how] = TOKEN
    async with aiohttp.ClientSession() as s:
        async with s.post(mock_gateway.url("/mlflow/v1/chat/completions"), json=CHAT, headers=headers, params=params) as r:
            assert r.status == 200, await r.text()


async def test_authorization_wins_over_a_placeholder_api_key(mock_gateway: Gateway):
    headers = {"Authorization": f"Bearer {TOKEN}", "x-api-key": "unused", "x-goog-api-key": "placeholder"}
    async with aiohttp.ClientSession() as s:
        async with s.post(mock_gateway.url("/v1/chat/completions"), json=CHAT, headers=headers) as r:
            assert r.status == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic !!notbase64"}])
async def test_missing_or_unknown_token_is_401_in_openai_shape(mock_gateway: Gateway, headers):
    async with aiohttp.ClientSession() as s:
        async with s.post(mock_gateway.url("/mlflow/v1/chat/completions"), json=CHAT, headers=headers) as r:
            assert r.status == 401
            body = await r.json()
    assert body["error"]["type"] == "authentication_error"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert r.headers["x-request-id"]


async def test_401_is_recorded_without_a_requester(mock_gateway: Gateway):
    async with aiohttp.ClientSession() as s:
        async with s.post(mock_gateway.url("/mlflow/v1/chat/completions"), json=CHAT) as r:
            assert r.status == 401
    (row,) = await mock_gateway.usage_rows()
    assert row["status_code"] == 401 and row["requester"] is None and row["error_code"] == "unauthenticated"


async def test_sdk_placeholders_never_reach_the_provider(make_gateway, start_upstream):
    """Anthropic's SDK may send the token as a bearer header beside x-api-key; google-genai
    sends x-goog-api-key beside Authorization. The provider sees only the gateway's key."""
    up = await start_upstream("openai")
    gw = await make_gateway({"up": {"kind": "openai", "api_key": UPSTREAM_KEY, "base_url": up.url + "/v1"}},
                            [{"name": "ep", "served_entities": [{"provider": "up", "model": "ok"}]}])
    headers = {"Authorization": f"Bearer {TOKEN}", "x-api-key": "placeholder-key", "x-goog-api-key": TOKEN,
               "anthropic-beta": "x", "cookie": "session=1"}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url("/v1/chat/completions"), params={"key": TOKEN}, headers=headers,
                          json={**CHAT, "model": "ep"}) as r:
            assert r.status == 200
    seen = up.recorder.last
    assert TOKEN not in str(seen) and "placeholder-key" not in str(seen) and "session=1" not in str(seen)
    assert seen["headers"]["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert seen["query"] == {}


async def test_official_anthropic_and_genai_clients_authenticate(mock_gateway: Gateway):
    """Each SDK's own way of sending the key is accepted on its native path."""
    client = anthropic.AsyncAnthropic(base_url=mock_gateway.url("/anthropic"), api_key=TOKEN, max_retries=0)
    msg = await client.messages.create(model="mock-chat", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert msg.content[0].text == "Echo: x"
    gclient = genai.Client(api_key=TOKEN, http_options={"base_url": mock_gateway.url("/gemini")})
    reply = await gclient.aio.models.generate_content(model="mock-chat", contents="x")
    assert reply.text == "Echo: x"
    bad = genai.Client(api_key="wrong", http_options={"base_url": mock_gateway.url("/gemini")})
    with pytest.raises(genai.errors.ClientError) as ginfo:
        await bad.aio.models.generate_content(model="mock-chat", contents="x")
    assert ginfo.value.code == 401 and ginfo.value.status == "UNAUTHENTICATED"
