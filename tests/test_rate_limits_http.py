"""Rate limits through the gateway: 429s in every API's shape, Retry-After, TPM settled with
real usage, and one bucket shared by two gateway processes' worth of apps through Redis."""

from __future__ import annotations

import asyncio

import aiohttp
import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from tests.conftest import OTHER_TOKEN, TOKEN
from tests.limits import REDIS_URL, new_prefix, require_redis

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def endpoint(*rules: dict, model: str = "echo") -> dict:  # type: ignore[type-arg]
    return {"name": "ep", "served_entities": [{"provider": "mock", "model": model}], "rate_limits": list(rules)}


async def test_qpm_429_in_every_api_shape_with_retry_after(make_gateway):
    gw = await make_gateway({"mock": {"kind": "mock"}}, [endpoint({"key": "user", "qpm": 1})])
    oa = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
    await oa.chat.completions.create(model="ep", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.RateLimitError) as info:
        await oa.chat.completions.create(model="ep", messages=[{"role": "user", "content": "x"}])
    assert int(info.value.response.headers["retry-after"]) >= 1
    assert "1 requests per minute for user alice@example.com (per-user default) on endpoint ep" in info.value.message
    with pytest.raises(anthropic.RateLimitError) as a_info:
        await anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), api_key=TOKEN, max_retries=0).messages.create(
            model="ep", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert a_info.value.body["error"]["type"] == "rate_limit_error"
    gclient = genai.Client(api_key=TOKEN, http_options=types.HttpOptions(base_url=gw.url("/gemini")))
    with pytest.raises(genai.errors.ClientError) as g_info:
        await gclient.aio.models.generate_content(model="ep", contents="x")
    assert g_info.value.code == 429 and g_info.value.status == "RESOURCE_EXHAUSTED"
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url("/serving-endpoints/ep/invocations"), headers=AUTH,
                          json={"messages": [{"role": "user", "content": "x"}]}) as r:
            assert r.status == 429 and (await r.json())["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    # Another user has a bucket of their own.
    other = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=OTHER_TOKEN, max_retries=0)
    await other.chat.completions.create(model="ep", messages=[{"role": "user", "content": "x"}])
    rows = await gw.usage_rows(6)
    assert [r["status_code"] for r in rows] == [200, 429, 429, 429, 429, 200]
    assert rows[1]["error_code"] == "rate_limited"


async def test_group_limit_applies_to_members(make_gateway):
    gw = await make_gateway({"mock": {"kind": "mock"}}, [endpoint({"key": "group", "principal": "ml", "qpm": 2})])
    alice = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)  # in group ml
    bob = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=OTHER_TOKEN, max_retries=0)  # in no group
    for _ in range(2):
        await alice.chat.completions.create(model="ep", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.RateLimitError):
        await alice.chat.completions.create(model="ep", messages=[{"role": "user", "content": "x"}])
    for _ in range(3):
        await bob.chat.completions.create(model="ep", messages=[{"role": "user", "content": "x"}])


async def test_tpm_is_settled_with_the_real_usage(make_gateway):
    # The mock reports (chars + 1) / 4 tokens; a request body of ~100 bytes reserves ~25.
    gw = await make_gateway({"mock": {"kind": "mock"}}, [endpoint({"key": "endpoint", "tpm": 60})])
    oa = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
    sent = passed = 0
    while sent < 60:
        sent += 1
        try:
            await oa.chat.completions.create(model="ep", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
            passed += 1
        except openai.RateLimitError:
            break
    rows = [r for r in await gw.usage_rows(sent) if r["status_code"] == 200]
    used = sum(r["total_tokens"] for r in rows)
    # Each request reserves ~45 tokens (body and max_tokens) but uses 3: settling gives the
    # rest back, so far more than 60 // 45 requests pass, and they stop once real usage fills
    # the minute's budget.
    assert passed > 2 and sent < 60
    assert 60 - 45 <= used <= 60 + rows[-1]["total_tokens"]


async def test_two_gateways_share_one_redis_bucket(make_gateway):
    await require_redis()
    limiter = {"backend": "redis", "url": REDIS_URL, "key_prefix": new_prefix()}
    eps = [endpoint({"key": "endpoint", "qpm": 7})]
    first = await make_gateway({"mock": {"kind": "mock"}}, eps, limiter=limiter)
    second = await make_gateway({"mock": {"kind": "mock"}}, eps, limiter=limiter)

    async def one(gw) -> int:  # type: ignore[no-untyped-def]
        async with aiohttp.ClientSession() as s:
            async with s.post(gw.url("/v1/chat/completions"), headers=AUTH,
                              json={"model": "ep", "messages": [{"role": "user", "content": "x"}]}) as r:
                return r.status

    statuses = await asyncio.gather(*(one(first if i % 2 else second) for i in range(20)))
    assert statuses.count(200) == 7 and statuses.count(429) == 13
