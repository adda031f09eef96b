"""Usage records, metrics, health and request ids."""

from __future__ import annotations

import json
import os

import aiohttp
import openai
import pytest

from gateway.config import parse_config
from gateway.sinks.postgres import PostgresUsageSink
from gateway.sinks.records import UsageRecord
from gateway.sinks.writer import BatchWriter
from gateway.state import WRITER
from gateway.usage_report import UsageQuery, run_usage_report
from tests.conftest import OTHER_TOKEN, TOKEN, Gateway

TAGS = {"project": "chatbot", "team": "ml-platform"}


async def test_usage_row_for_a_completion(mock_gateway: Gateway):
    client = openai.AsyncOpenAI(base_url=mock_gateway.url("/mlflow/v1"), api_key=TOKEN, max_retries=0,
                                default_headers={"Databricks-Ai-Gateway-Request-Tags": json.dumps(TAGS)})
    reply = await client.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": "hello"}])
    (row,) = await mock_gateway.usage_rows(1)
    assert row["endpoint"] == "mock-chat" and row["provider"] == "mock" and row["provider_model"] == "echo"
    assert row["api_type"] == "mlflow/v1/chat/completions"
    assert row["requester"] == "alice@example.com" and row["status_code"] == 200
    assert json.loads(row["request_tags"]) == TAGS
    assert row["input_tokens"] == reply.usage.prompt_tokens and row["output_tokens"] == reply.usage.completion_tokens
    assert row["total_tokens"] == reply.usage.total_tokens and row["tokens_estimated"] == 0
    assert row["streaming"] == 0 and row["latency_ms"] >= row["time_to_first_byte_ms"] > 0
    assert row["user_agent"].startswith("AsyncOpenAI")
    assert len(row["request_id"]) == 32


async def test_usage_row_for_a_stream_and_an_error(mock_gateway: Gateway):
    client = openai.AsyncOpenAI(base_url=mock_gateway.url("/v1"), api_key=OTHER_TOKEN, max_retries=0)
    stream = await client.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": "a b"}], stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="missing", messages=[{"role": "user", "content": "x"}])
    ok, missing = await mock_gateway.usage_rows(2)
    assert ok["streaming"] == 1 and ok["api_type"] == "v1/chat/completions" and ok["requester"] == "bob@example.com"
    assert ok["output_tokens"] == (len(text) + 1) // 4
    assert missing["status_code"] == 404 and missing["error_code"] == "endpoint_not_found" and missing["endpoint"] is None


async def test_tokens_are_estimated_when_the_provider_reports_none(make_gateway, start_upstream):
    from tests.upstreams import UPSTREAM_KEY

    up = await start_upstream("openai")
    gw = await make_gateway({"up": {"kind": "openai", "api_key": UPSTREAM_KEY, "base_url": up.url + "/v1"}},
                            [{"name": "ep", "served_entities": [{"provider": "up", "model": "no-usage"}]}])
    client = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
    await client.chat.completions.create(model="ep", messages=[{"role": "user", "content": "twelve chars"}])
    (row,) = await gw.usage_rows(1)
    assert row["tokens_estimated"] == 1
    assert row["input_tokens"] == (len("twelve chars") + 1) // 4
    assert row["output_tokens"] == (len("Hello from OpenAI") + 1) // 4


async def test_usage_report_groups_by_endpoint_and_tag(mock_gateway: Gateway):
    client = openai.AsyncOpenAI(base_url=mock_gateway.url("/v1"), api_key=TOKEN, max_retries=0)
    for team in ("a", "a", "b"):
        await client.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": "x"}],
                                             extra_headers={"Databricks-Ai-Gateway-Request-Tags": json.dumps({"team": team})})
    await mock_gateway.usage_rows(3)
    config = parse_config({"server": {"data_dir": mock_gateway.data_dir}}, env={})
    headers, rows = await run_usage_report(config, UsageQuery(0, "tag:team"))
    assert headers[:2] == ["TAG:TEAM", "REQUESTS"]
    assert [(r[0], r[1]) for r in rows] == [("a", "2"), ("b", "1")]
    _, rows = await run_usage_report(config, UsageQuery(0, "endpoint"))
    assert rows[0][:3] == ["mock-chat", "3", "0"]


async def test_metrics_move(mock_gateway: Gateway):
    client = openai.AsyncOpenAI(base_url=mock_gateway.url("/v1"), api_key=TOKEN, max_retries=0)

    async def scrape() -> str:
        async with aiohttp.ClientSession() as s:
            async with s.get(mock_gateway.url("/metrics")) as r:
                assert r.status == 200
                return await r.text()

    def value(text: str, prefix: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))

    key = 'gateway_requests_total{api="v1/chat/completions",endpoint="mock-chat",status="200"}'
    before = await scrape()
    await client.chat.completions.create(model="mock-chat", messages=[{"role": "user", "content": "hello world"}])
    after = await scrape()
    assert value(after, key) == value(before, key) + 1
    tokens = 'gateway_output_tokens_total{endpoint="mock-chat"}'
    assert value(after, tokens) > value(before, tokens)
    count = 'gateway_request_duration_seconds_count{api="v1/chat/completions",endpoint="mock-chat"}'
    assert value(after, count) == value(before, count) + 1
    assert "gateway_requests_in_flight" in after and "gateway_time_to_first_byte_seconds_bucket" in after


async def test_ops_endpoints_and_request_ids(mock_gateway: Gateway):
    async with aiohttp.ClientSession() as s:
        async with s.get(mock_gateway.url("/healthz")) as r:
            assert r.status == 200 and r.headers["x-request-id"]
        async with s.get(mock_gateway.url("/readyz")) as r:
            assert r.status == 200 and (await r.json())["status"] == "ready"
        for path in ("/ai-gateway/healthz", "/ai-gateway/readyz", "/ai-gateway/metrics"):  # no token needed
            async with s.get(mock_gateway.url(path)) as r:
                assert r.status == 200, path
        async with s.get(mock_gateway.url("/v1/models"), headers={"Authorization": f"Bearer {TOKEN}",
                                                                  "x-request-id": "my-trace-1"}) as r:
            assert r.headers["x-request-id"] == "my-trace-1"
        async with s.post(mock_gateway.url("/v1/chat/completions"), headers={"Authorization": f"Bearer {TOKEN}"},
                          json={"model": "mock-chat", "stream": True, "messages": [{"role": "user", "content": "x"}]}) as r:
            assert r.headers["x-request-id"] and r.headers["content-type"].startswith("text/event-stream")
    assert not [row for row in await mock_gateway.usage_rows(2) if row["api_type"] in ("healthz", "readyz", "metrics")]


async def test_usage_rows_in_postgres_through_the_gateway(make_gateway, postgres_dsn):
    import asyncpg

    gw = await make_gateway({"mock": {"kind": "mock"}},
                            [{"name": "ep", "served_entities": [{"provider": "mock", "model": "echo"}]}],
                            storage={"kind": "postgres", "dsn": postgres_dsn})
    client = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
    for _ in range(3):
        await client.chat.completions.create(model="ep", messages=[{"role": "user", "content": "hi"}],
                                             extra_headers={"Databricks-Ai-Gateway-Request-Tags": '{"k": "v"}'})
    await gw.app[WRITER].wait_submitted(3)
    await gw.app[WRITER].flushed()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        rows = await conn.fetch("SELECT endpoint, requester, status_code, request_tags->>'k' AS k, output_tokens FROM usage")
    finally:
        await conn.close()
    assert [(r["endpoint"], r["requester"], r["status_code"], r["k"]) for r in rows] == [("ep", "alice@example.com", 200, "v")] * 3
    assert all(r["output_tokens"] > 0 for r in rows)


async def test_postgres_outage_spills_and_replays(tmp_path, postgres_dsn):
    """Rows written while the sink is down go to the spill file and reach the table later."""
    import asyncpg

    sink = PostgresUsageSink(postgres_dsn)
    writer = BatchWriter(sink, tmp_path, batch_size=10, flush_interval=0.001)
    await writer.start()
    real_write = sink.write

    async def broken(records):  # type: ignore[no-untyped-def]
        raise ConnectionError("database down")

    sink.write = broken  # type: ignore[method-assign]
    for i in range(5):
        writer.submit(UsageRecord(request_id=f"r{i}", event_time=1e9, api_type="t", status_code=200))
    await writer.flushed()
    assert list(tmp_path.glob("usage-spill-*.jsonl"))
    sink.write = real_write  # type: ignore[method-assign]
    writer.submit(UsageRecord(request_id="r5", event_time=1e9, api_type="t", status_code=200))
    await writer.flushed()
    await writer.close()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        ids = sorted(r["request_id"] for r in await conn.fetch("SELECT request_id FROM usage"))
    finally:
        await conn.close()
    assert ids == [f"r{i}" for i in range(6)]
    assert not list(tmp_path.glob("usage-spill-*"))


def test_sqlite_table_from_an_earlier_version_gains_new_columns(tmp_path):
    import sqlite3

    from gateway.sinks.sqlite import SCHEMA, connect

    old = sqlite3.connect(tmp_path / "usage.db")
    old.executescript(SCHEMA.replace("error_code TEXT,\n    attempts TEXT NOT NULL", "error_code TEXT"))
    assert "attempts" not in {row[1] for row in old.execute("PRAGMA table_info(usage)")}
    old.commit()
    old.close()
    conn = connect(tmp_path / "usage.db")
    assert "attempts" in {row[1] for row in conn.execute("PRAGMA table_info(usage)")}
    conn.close()


def test_sqlite_attempts_an_earlier_version_stored_as_blobs_become_text(tmp_path):
    from gateway.sinks.sqlite import connect

    conn = connect(tmp_path / "usage.db")
    conn.execute("PRAGMA user_version = 0")  # as a file an earlier version made
    columns = [row[1] for row in conn.execute("PRAGMA table_info(usage)")]
    values = {c: 0 for c in columns} | {"request_id": "r1", "event_time": "2026-01-01", "api_type": "t",
                                        "request_tags": "{}", "attempts": b'[{"entity":"mock/echo"}]'}
    conn.execute(f"INSERT INTO usage ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})",
                 tuple(values.values()))
    conn.commit()
    conn.close()
    conn = connect(tmp_path / "usage.db")
    assert conn.execute("SELECT typeof(attempts), attempts FROM usage").fetchone() == (
        "text", '[{"entity":"mock/echo"}]')
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()


async def test_a_database_down_at_start_does_not_stop_the_gateway(make_gateway, tmp_path):
    """Config endpoints and tokens serve, usage rows wait in the spill file, readiness says why."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gw = await make_gateway({"mock": {"kind": "mock"}},
                            [{"name": "ep", "served_entities": [{"provider": "mock", "model": "echo"}]}],
                            storage={"kind": "postgres", "dsn": f"postgresql://postgres@127.0.0.1:{port}/test"})
    client = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
    reply = await client.chat.completions.create(model="ep", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    await gw.app[WRITER].wait_submitted(1)
    await gw.app[WRITER].flushed()
    (spill,) = tmp_path.glob("usage-spill-*.jsonl")
    assert json.loads(spill.read_bytes().splitlines()[0])["endpoint"] == "ep"
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url("/readyz")) as r:
            assert r.status == 503 and "unreachable" in (await r.json())["reason"]


@pytest.mark.parametrize("kind", ["mock", "anthropic", "gemini"])
async def test_token_counts_consume_no_tokens_in_rows_or_metrics(make_gateway, start_upstream, kind):
    """countTokens and count_tokens read a prompt without a model reading it: both APIs, the
    provider's own count (Anthropic, Gemini) and the estimate (mock)."""
    import anthropic
    from google import genai
    from google.genai import types

    from tests.upstreams import UPSTREAM_KEY

    endpoint = f"count-only-{kind}"
    if kind == "mock":
        providers = {"up": {"kind": "mock"}}
    else:
        up = await start_upstream(kind)
        providers = {"up": {"kind": kind, "api_key": UPSTREAM_KEY, "base_url": up.url}}
    gw = await make_gateway(providers, [{"name": endpoint, "served_entities": [{"provider": "up", "model": "ok"}]}])

    async def token_metrics() -> tuple[str, ...]:
        async with aiohttp.ClientSession() as s:
            async with s.get(gw.url("/metrics")) as r:
                return tuple(line for line in (await r.text()).splitlines()
                             if line.startswith(("gateway_input_tokens_total", "gateway_output_tokens_total"))
                             and f'endpoint="{endpoint}"' in line)

    before = await token_metrics()
    claude = anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), api_key=TOKEN, max_retries=0)
    gem = genai.Client(api_key=TOKEN, http_options=types.HttpOptions(base_url=gw.url("/gemini")))
    counted = await claude.messages.count_tokens(model=endpoint, messages=[{"role": "user", "content": "count me please"}])
    g_counted = await gem.aio.models.count_tokens(model=endpoint, contents="count me please")
    assert counted.input_tokens > 0 and g_counted.total_tokens > 0
    rows = await gw.usage_rows(2)
    assert [(r["status_code"], r["input_tokens"], r["output_tokens"], r["total_tokens"]) for r in rows] == [(200, 0, 0, 0)] * 2
    assert await token_metrics() == before
