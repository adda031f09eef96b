"""Inference tables: request and response payloads of the endpoints that ask for them, next
to the usage rows (same request_id), through real HTTP and the official SDKs."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from gateway.state import INFERENCE_WRITER
from tests.conftest import TOKEN, Gateway

ADMIN = "gw-admin-token-42"
TOKENS = [{"principal": "alice@example.com", "token": TOKEN}, {"principal": "root", "token": ADMIN, "admin": True}]
MOCK = {"mock": {"kind": "mock"}}
ENDPOINTS = [
    {"name": "logged", "served_entities": [{"provider": "mock", "model": "echo"}], "inference_table": {"enabled": True}},
    {"name": "small", "served_entities": [{"provider": "mock", "model": "echo"}],
     "inference_table": {"enabled": True, "max_payload_bytes": 1024}},
    {"name": "failing", "served_entities": [{"provider": "mock", "model": "error-500"}],
     "inference_table": {"enabled": True}},
    {"name": "quiet", "served_entities": [{"provider": "mock", "model": "echo"}]},
]


@pytest.fixture
async def gw(make_gateway) -> Gateway:  # type: ignore[no-untyped-def]
    return await make_gateway(MOCK, ENDPOINTS, tokens=TOKENS)


async def test_whole_and_streamed_replies_are_kept_with_their_requests(gw: Gateway) -> None:
    client = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
    reply = await client.chat.completions.create(model="logged", messages=[{"role": "user", "content": "hello"}])
    stream = await client.chat.completions.create(model="logged", stream=True,
                                                  messages=[{"role": "user", "content": "streamed"}])
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    claude = anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), api_key=TOKEN, max_retries=0)
    async with claude.messages.stream(model="logged", max_tokens=50,
                                      messages=[{"role": "user", "content": "in anthropic"}]) as s:
        said = await s.get_final_text()
    await client.chat.completions.create(model="quiet", messages=[{"role": "user", "content": "not kept"}])

    whole, sse, messages = await gw.inference_rows(3)
    assert json.loads(whole["request"])["messages"] == [{"role": "user", "content": "hello"}]
    assert json.loads(whole["response"])["choices"][0]["message"]["content"] == reply.choices[0].message.content
    assert (whole["endpoint"], whole["requester"], whole["status_code"], whole["streaming"]) == (
        "logged", "alice@example.com", 200, 0)
    assert sse["streaming"] == 1 and sse["response"].startswith("data: ") and sse["response"].endswith("[DONE]\n\n")
    assert streamed and all(word in sse["response"] for word in streamed.split())
    assert messages["api_type"] == "anthropic/v1/messages" and "event: message_stop" in messages["response"]
    assert said and all(word in messages["response"] for word in said.split())
    usage_ids = [r["request_id"] for r in await gw.usage_rows(4)]
    assert [r["request_id"] for r in (whole, sse, messages)] == usage_ids[:3]  # joins the usage table
    assert not any(r["truncated"] for r in (whole, sse, messages))


async def test_failures_are_kept_and_big_payloads_cut(gw: Gateway) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        async with s.post(gw.url("/v1/chat/completions"),
                          json={"model": "failing", "messages": [{"role": "user", "content": "x"}]}) as r:
            assert r.status == 500
            error = await r.read()
        async with s.post(gw.url("/v1/chat/completions"),
                          json={"model": "small", "messages": [{"role": "user", "content": "y" * 5000}]}) as r:
            assert r.status == 200
    failed, cut = await gw.inference_rows(2)
    assert (failed["status_code"], failed["response"]) == (500, error.decode())
    assert cut["truncated"] == 1 and len(cut["request"]) == 1024 and len(cut["response"]) == 1024


async def test_the_admin_api_switches_an_endpoints_table_on(gw: Gateway) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN}"}) as s:
        async with s.put(gw.url("/api/2.0/serving-endpoints/quiet/ai-gateway"), json={"inference_table_config": {
                "enabled": True, "catalog_name": "main", "schema_name": "ml", "table_name_prefix": "quiet"}}) as r:
            assert r.status == 200
            assert (await r.json())["ai_gateway"]["inference_table_config"] == {"enabled": True}
    client = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
    await client.chat.completions.create(model="quiet", messages=[{"role": "user", "content": "now kept"}])
    (row,) = await gw.inference_rows(1)
    assert row["endpoint"] == "quiet" and "now kept" in row["request"]


async def test_payloads_in_postgres(make_gateway, postgres_dsn) -> None:  # type: ignore[no-untyped-def]
    import asyncpg

    conn = await asyncpg.connect(postgres_dsn)
    await conn.execute("DROP TABLE IF EXISTS inference")
    await conn.close()
    gw = await make_gateway(MOCK, ENDPOINTS, tokens=TOKENS, storage={"kind": "postgres", "dsn": postgres_dsn})
    client = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
    await client.chat.completions.create(model="logged", messages=[{"role": "user", "content": "to postgres"}])
    writer = gw.app[INFERENCE_WRITER]
    await writer.wait_submitted(1)
    await writer.flushed()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        (row,) = await conn.fetch("SELECT endpoint, status_code, request::jsonb->'messages'->0->>'content' AS asked, "
                                  "response::jsonb->'choices'->0->'message'->>'content' AS said FROM inference")
    finally:
        await conn.close()
    assert (row["endpoint"], row["status_code"], row["asked"]) == ("logged", 200, "to postgres")
    assert row["said"]
