"""PostgreSQL that stops answering, in the two ways it does: a table locked by another
session, and a server that accepts the connection and then goes silent. A usage batch
write fails after ``command_timeout`` and is spilled, then replayed once the database
answers; a store refresh fails and the worker keeps the tokens it had."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import msgspec
import pytest

from gateway.config import parse_config
from gateway.endpoints_table import EndpointRegistry, EndpointsTable
from gateway.server.auth import TokenStore
from gateway.sinks.postgres import PostgresUsageSink
from gateway.sinks.records import UsageRecord
from gateway.sinks.writer import BatchWriter
from gateway.tokens_table import StoreRefresher, TokensTable

#: Small, so a hung statement fails quickly, yet far above what a statement takes on a busy CI
#: machine (a schema or a token insert timing out would fail a test for the wrong reason).
TIMEOUT_S = 0.5


class TableLock:
    """Another session holding ACCESS EXCLUSIVE on a table, in an open transaction."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn = None

    async def begin(self, table: str) -> None:
        import asyncpg

        self._conn = await asyncpg.connect(self.dsn)
        await self._conn.execute(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")

    async def end(self) -> None:
        if self._conn is not None:
            await self._conn.close()  # the transaction and its lock end with the session
            self._conn = None


class SilentServer:
    """A relay in front of PostgreSQL that, from ``begin`` to ``end``, drops what clients
    send (new connections' too) and answers nothing, as a server hung after accepting."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._parts = parts
        self._silent = False
        self._relays: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.dsn = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        userinfo = self._parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
        self.dsn = urlunsplit(self._parts._replace(netloc=netloc))

    async def begin(self, table: str) -> None:
        self._silent = True

    async def end(self) -> None:
        self._silent = False

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for relay in self._relays:
            relay.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        try:
            server_r, server_w = await asyncio.open_connection(*self._target)
            try:
                await asyncio.gather(self._pump(client_r, server_w), self._pump(server_r, client_w),
                                     return_exceptions=True)
            finally:
                server_w.close()
        finally:
            client_w.close()
            self._relays.discard(task)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                if not self._silent:
                    dst.write(data)
                    await dst.drain()
        finally:
            dst.close()  # one side gone: the other follows


@pytest.fixture(params=["table_lock", "silent_server"])
async def hang(request, postgres_dsn):  # type: ignore[no-untyped-def]
    """The database reached through ``hang.dsn``, made to stop answering by ``hang.begin(table)``."""
    if request.param == "table_lock":
        lock = TableLock(postgres_dsn)
        yield lock
        await lock.end()
    else:
        server = SilentServer(postgres_dsn)
        await server.start()
        yield server
        await server.close()


def record(i: int) -> UsageRecord:
    return UsageRecord(request_id=f"r{i}", event_time=1e9 + i, api_type="t", status_code=200)


async def submit(writer: BatchWriter, *records: UsageRecord) -> None:
    for r in records:
        writer.submit(r)
    await asyncio.wait_for(writer.flushed(), 10)  # a guard against a hang, not a clock


async def failure_of(call: Awaitable[object]) -> BaseException | None:
    """What ``call`` raised; still waiting after 10 s (a guard against a hang, not a clock) fails the test."""
    task = asyncio.ensure_future(call)
    if not (await asyncio.wait({task}, timeout=10))[0]:
        task.cancel()
        pytest.fail("still waiting for the database after 10 s")
    return task.exception()


def spilled(spill_dir: Path) -> list[str]:
    text = (spill_dir / f"usage-spill-{os.getpid()}.jsonl").read_bytes()
    return sorted(msgspec.json.decode(line, type=UsageRecord).request_id for line in text.splitlines())


async def table_ids(dsn: str) -> list[str]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        return sorted(r["request_id"] for r in await conn.fetch("SELECT request_id FROM usage"))
    finally:
        await conn.close()


async def test_a_usage_batch_the_database_does_not_answer_is_spilled_then_replayed(tmp_path, postgres_dsn, hang):
    writer = BatchWriter(PostgresUsageSink(hang.dsn, command_timeout=TIMEOUT_S), tmp_path,
                         batch_size=10, flush_interval=0.001)
    await writer.start()  # makes the table
    await hang.begin("usage")
    await submit(writer, *(record(i) for i in range(5)))  # the write times out: spilled
    assert spilled(tmp_path) == ["r0", "r1", "r2", "r3", "r4"]
    await hang.end()
    await submit(writer, record(5))  # written, and the spill replayed after it
    await asyncio.wait_for(writer.close(), 10)
    assert await table_ids(postgres_dsn) == ["r0", "r1", "r2", "r3", "r4", "r5"]
    assert not list(tmp_path.glob("usage-spill-*"))


async def test_shutdown_is_not_stalled_by_a_database_that_does_not_answer(tmp_path, postgres_dsn, hang):
    writer = BatchWriter(PostgresUsageSink(hang.dsn, command_timeout=TIMEOUT_S), tmp_path,
                         batch_size=10, flush_interval=0.001)
    await writer.start()
    await hang.begin("usage")
    for i in range(3):
        writer.submit(record(i))
    await asyncio.wait_for(writer.close(), 10)  # a guard against a hang, not a clock
    assert spilled(tmp_path) == ["r0", "r1", "r2"]
    await hang.end()
    later = BatchWriter(PostgresUsageSink(postgres_dsn), tmp_path, batch_size=10, flush_interval=0.001)
    await later.start()
    await later.close()  # the next start replays them
    assert await table_ids(postgres_dsn) == ["r0", "r1", "r2"]


async def test_a_store_refresh_the_database_does_not_answer_fails_and_keeps_the_last_tokens(hang):
    config = parse_config({"storage": {"kind": "postgres", "dsn": hang.dsn, "command_timeout_s": TIMEOUT_S}}, env={})
    tokens, endpoints = TokensTable(config), EndpointsTable(config)
    token_store = TokenStore()
    refresher = StoreRefresher(tokens, token_store, endpoints, EndpointRegistry({}))
    try:
        secret, row = await tokens.create("alice@example.com")
        await refresher.load()
        await hang.begin("tokens")
        assert isinstance(await failure_of(refresher.load()), TimeoutError)
        assert token_store.lookup(secret).name == "alice@example.com"  # type: ignore[union-attr]
        await hang.end()
        assert await tokens.revoke(row.id)  # the store answers again on a new connection
        await refresher.load()
        assert token_store.lookup(secret) is None
    finally:
        await hang.end()
        await asyncio.wait_for(tokens.close(), 10)  # a guard against a hang, not a clock
        await asyncio.wait_for(endpoints.close(), 10)
