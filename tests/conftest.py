"""Shared fixtures: the gateway on a real socket, and fake upstream providers."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.config import parse_config
from gateway.state import INFERENCE_WRITER, WRITER
from tests.upstreams import Recorder, anthropic_app, gemini_app, openai_app

TOKEN = "gw-test-token-0123456789"
OTHER_TOKEN = "gw-second-token-abcdef"


class Gateway:
    def __init__(self, server: Any, app: web.Application, data_dir: str) -> None:
        self.server = server
        self.app = app
        self.data_dir = data_dir

    def url(self, path: str = "") -> str:
        return str(self.server.make_url(path))

    async def usage_rows(self, at_least: int = 0) -> list[dict[str, Any]]:
        """Every usage row written so far, once ``at_least`` requests finished (no sleeping)."""
        return await self.rows("usage", WRITER, at_least)

    async def inference_rows(self, at_least: int = 0) -> list[dict[str, Any]]:
        """Every inference-table row written so far, once ``at_least`` were submitted."""
        return await self.rows("inference", INFERENCE_WRITER, at_least)

    async def rows(self, table: str, writer_key, at_least: int) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
        writer = self.app[writer_key]
        await writer.wait_submitted(at_least)
        await writer.flushed()
        conn = sqlite3.connect(f"{self.data_dir}/usage.db")
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]
        finally:
            conn.close()


MakeGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
def make_gateway(aiohttp_server, tmp_path) -> MakeGateway:  # type: ignore[no-untyped-def]
    async def make(providers: dict[str, Any], endpoints: list[dict[str, Any]], **sections: Any) -> Gateway:
        raw = {
            "server": {"data_dir": str(tmp_path), **sections.pop("server", {})},
            "providers": providers,
            "endpoints": endpoints,
            "tokens": sections.pop("tokens", [
                {"principal": "alice@example.com", "groups": ["ml"], "token": TOKEN},
                {"principal": "bob@example.com", "token": OTHER_TOKEN},
            ]),
            "storage": {"flush_interval_ms": 1, **sections.pop("storage", {})},
            **sections,
        }
        app = create_app(parse_config(raw, env={}))
        server = await aiohttp_server(app)
        return Gateway(server, app, str(tmp_path))

    return make


MOCK_ENDPOINTS = [
    {"name": "mock-chat", "served_entities": [{"provider": "mock", "model": "echo"}]},
    {"name": "mock-tools", "served_entities": [{"provider": "mock", "model": "tool"}]},
    {"name": "mock-parallel", "served_entities": [{"provider": "mock", "model": "parallel-tools"}]},
    {"name": "mock-embeddings", "task": "embeddings", "served_entities": [{"provider": "mock", "model": "embed"}]},
]


@pytest.fixture
async def mock_gateway(make_gateway: MakeGateway) -> Gateway:
    return await make_gateway({"mock": {"kind": "mock"}}, MOCK_ENDPOINTS)


class Upstream:
    def __init__(self, recorder: Recorder, server: Any) -> None:
        self.recorder = recorder
        self.server = server

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
def start_upstream(aiohttp_server):  # type: ignore[no-untyped-def]
    async def start(kind: str) -> Upstream:
        rec = Recorder()
        app = {"openai": openai_app, "anthropic": anthropic_app, "gemini": gemini_app}[kind](rec)
        return Upstream(rec, await aiohttp_server(app))

    return start


@pytest.fixture
async def postgres_dsn() -> str:
    """A reachable PostgreSQL (skipped when there is none, except under CI=true)."""
    import os

    asyncpg = pytest.importorskip("asyncpg")
    dsn = os.environ.get("GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL at {dsn} is unreachable: {exc}")
    await conn.execute("DROP TABLE IF EXISTS usage")
    await conn.close()
    return dsn
