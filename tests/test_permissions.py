"""Endpoint permissions: who may query, 403 in each API's shape, listings filtered."""

from __future__ import annotations

import aiohttp
import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from tests.conftest import OTHER_TOKEN, TOKEN

ADMIN_TOKEN = "gw-admin-token-42"
SP_TOKEN = "gw-service-principal-token"
USER_CI_BOT_TOKEN = "gw-user-ci-bot-token"
TOKENS = [
    {"principal": "alice@example.com", "groups": ["ml"], "token": TOKEN},
    {"principal": "bob@example.com", "token": OTHER_TOKEN},
    {"principal": "root", "token": ADMIN_TOKEN, "admin": True},
    {"principal": "ci-bot", "kind": "service_principal", "token": SP_TOKEN},
    {"principal": "ci-bot", "token": USER_CI_BOT_TOKEN},  # a user who happens to share the name
]
ENDPOINTS = [
    {"name": "open", "served_entities": [{"provider": "mock", "model": "echo"}]},
    {"name": "ml-only", "served_entities": [{"provider": "mock", "model": "echo"}],
     "permissions": [{"group": "ml"}]},
    {"name": "bob-only", "served_entities": [{"provider": "mock", "model": "echo"}],
     "permissions": [{"principal": "bob@example.com", "level": "CAN_MANAGE"}]},
    {"name": "bot-only", "served_entities": [{"provider": "mock", "model": "echo"}],
     "permissions": [{"service_principal": "ci-bot"}]},
]


@pytest.fixture
async def gw(make_gateway):  # type: ignore[no-untyped-def]
    return await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS, tokens=TOKENS)


async def chat(gw, token: str, model: str) -> int:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url("/v1/chat/completions"), headers={"Authorization": f"Bearer {token}"},
                          json={"model": model, "messages": [{"role": "user", "content": "x"}]}) as r:
            return r.status


@pytest.mark.parametrize("token, allowed", [
    (TOKEN, {"open", "ml-only"}), (OTHER_TOKEN, {"open", "bob-only"}),
    (ADMIN_TOKEN, {"open", "ml-only", "bob-only", "bot-only"}),
    (SP_TOKEN, {"open", "bot-only"}), (USER_CI_BOT_TOKEN, {"open"}),
])
async def test_users_service_principals_groups_and_admins(gw, token, allowed):
    statuses = {name: await chat(gw, token, name) for name in ("open", "ml-only", "bob-only", "bot-only")}
    assert statuses == {name: 200 if name in allowed else 403 for name in statuses}
    listed = [m.id async for m in openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=token).models.list()]
    assert set(listed) == allowed


async def test_403_in_each_api_shape_and_recorded(gw):
    with pytest.raises(openai.PermissionDeniedError) as o:
        await openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=OTHER_TOKEN, max_retries=0).chat.completions.create(
            model="ml-only", messages=[{"role": "user", "content": "x"}])
    assert "bob@example.com may not query endpoint 'ml-only'" in o.value.message
    with pytest.raises(anthropic.PermissionDeniedError) as a:
        await anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), api_key=OTHER_TOKEN, max_retries=0).messages.create(
            model="ml-only", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert a.value.body["error"]["type"] == "permission_error"
    g = genai.Client(api_key=OTHER_TOKEN, http_options=types.HttpOptions(base_url=gw.url("/gemini")))
    with pytest.raises(genai.errors.ClientError) as e:
        await g.aio.models.generate_content(model="ml-only", contents="x")
    assert e.value.code == 403 and e.value.status == "PERMISSION_DENIED"
    names = [m.name async for m in await g.aio.models.list()]
    assert names == ["models/open", "models/bob-only"]
    ids = [m.id async for m in anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), api_key=OTHER_TOKEN).models.list()]
    assert ids == ["open", "bob-only"]
    rows = [r for r in await gw.usage_rows(5) if r["status_code"] != 200]  # 3 refusals, 2 listings
    assert [(r["status_code"], r["error_code"], r["endpoint"]) for r in rows] == [(403, "permission_denied", "ml-only")] * 3


async def test_serving_endpoint_listing_is_filtered(gw):
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url("/api/2.0/serving-endpoints"), headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert [e["name"] for e in (await r.json())["endpoints"]] == ["open", "ml-only"]
        async with s.get(gw.url("/api/2.0/serving-endpoints/bob-only"), headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 403 and (await r.json())["error_code"] == "PERMISSION_DENIED"


def test_a_grant_names_a_principal_or_a_group():
    from gateway.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"endpoints\[0\]\.permissions\[0\]: name exactly one"):
        parse_config({"providers": {"mock": {"kind": "mock"}}, "endpoints": [
            {**ENDPOINTS[0], "permissions": [{"principal": "a", "group": "b"}]}]}, env={})
