"""The usage table in PostgreSQL, written with COPY (many rows per round trip)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import msgspec
import orjson

from gateway.config import StorageConfig
from gateway.sinks.records import COLUMNS, UsageRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    request_id TEXT NOT NULL,
    event_time TIMESTAMPTZ NOT NULL,
    api_type TEXT NOT NULL,
    endpoint TEXT,
    provider TEXT,
    provider_model TEXT,
    requester TEXT,
    user_agent TEXT,
    status_code INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    total_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    tokens_estimated BOOLEAN NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    time_to_first_byte_ms DOUBLE PRECISION,
    streaming BOOLEAN NOT NULL,
    request_tags JSONB NOT NULL,
    error_code TEXT,
    attempts JSONB NOT NULL,
    guardrails TEXT
);
CREATE INDEX IF NOT EXISTS usage_event_time ON usage (event_time);
-- Columns added since the first version, for tables made by an earlier one.
ALTER TABLE usage ADD COLUMN IF NOT EXISTS attempts JSONB NOT NULL DEFAULT '[]';
ALTER TABLE usage ADD COLUMN IF NOT EXISTS guardrails TEXT;
"""


#: Bound on each connection attempt, so an unreachable database cannot hold up a start.
CONNECT_TIMEOUT_S = 5.0
#: storage.command_timeout_s when no configuration names one. It is asyncpg's client-side
#: ``command_timeout``: it bounds a wait on a lock (the cancel request it sends ends the
#: statement on the server) and a server that stopped answering (the cancel fails too and the
#: connection is dropped), and it bounds a close. A server-side ``statement_timeout`` would
#: bound neither a silent server nor a close, and PgBouncer refuses it as a startup parameter.
COMMAND_TIMEOUT_S = StorageConfig().command_timeout_s


def _import_asyncpg():  # type: ignore[no-untyped-def]
    try:
        import asyncpg
    except ImportError:
        raise RuntimeError("PostgreSQL storage needs asyncpg: pip install 'gateway[postgres]'") from None
    return asyncpg


_EVENT_TIME = COLUMNS.index("event_time")


def _row(r: UsageRecord) -> list[object]:
    # COLUMNS is the Struct's field order, so one C call gives the row; only the time changes type.
    row = list(msgspec.structs.astuple(r))
    row[_EVENT_TIME] = datetime.fromtimestamp(r.event_time, timezone.utc)
    return row


class PostgresTableSink:
    """One table in PostgreSQL, written with COPY: ``schema`` is made on open, ``row`` turns
    a record into the values of ``columns``; ``init`` prepares each pooled connection. Every
    statement fails after ``command_timeout`` seconds (see COMMAND_TIMEOUT_S), so the writer
    spills the batch instead of waiting on a locked table or a silent server."""

    def __init__(self, dsn: str, table: str, schema: str, columns: Sequence[str],
                 row: Callable[[Any], Sequence[object]], init: Callable[[Any], Awaitable[None]] | None = None,
                 *, command_timeout: float = COMMAND_TIMEOUT_S) -> None:
        self.dsn = dsn
        self._table, self._schema, self._columns, self._row, self._init = table, schema, columns, row, init
        self._command_timeout = command_timeout
        self._pool = None

    async def open(self) -> None:
        pool = await _import_asyncpg().create_pool(self.dsn, min_size=1, max_size=2, init=self._init,
                                                   timeout=CONNECT_TIMEOUT_S, command_timeout=self._command_timeout)
        try:
            async with pool.acquire() as conn:
                await conn.execute(self._schema)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def write(self, records: list[Any]) -> None:
        if self._pool is None:  # unreachable when the gateway started: try again now
            await self.open()
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            await conn.copy_records_to_table(self._table, records=[self._row(r) for r in records],
                                             columns=self._columns)

    async def ping(self) -> bool:
        if self._pool is None:
            return False
        try:
            async with self._pool.acquire(timeout=2) as conn:
                await conn.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure means not ready
            return False
        return True

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


class PostgresUsageSink(PostgresTableSink):
    """The usage table."""

    def __init__(self, dsn: str, command_timeout: float = COMMAND_TIMEOUT_S) -> None:
        super().__init__(dsn, "usage", SCHEMA, COLUMNS, _row, _init_connection, command_timeout=command_timeout)


_json = msgspec.json.Encoder().encode  # handles the attempt Structs as well as dicts


async def _init_connection(conn) -> None:  # type: ignore[no-untyped-def]
    # COPY uses the binary format; binary jsonb is a version byte (1) and the JSON text.
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", format="binary",
        encoder=lambda v: b"\x01" + _json(v), decoder=lambda b: orjson.loads(b[1:]),
    )
