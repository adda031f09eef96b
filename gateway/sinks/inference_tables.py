"""The ``inference`` table (request and response payloads) in SQLite and in PostgreSQL.

It lives beside the usage table, in the same file or database, and joins it on
``request_id``. Writes come in batches from a BatchWriter of their own.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import msgspec

from gateway.sinks.postgres import CONNECT_TIMEOUT_S, _import_asyncpg
from gateway.sinks.records import INFERENCE_COLUMNS, InferenceRecord
from gateway.sinks.sqlite import sqlite_time

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS inference (
    request_id TEXT NOT NULL,
    event_time TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    api_type TEXT NOT NULL,
    requester TEXT,
    status_code INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    streaming INTEGER NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    truncated INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS inference_event_time ON inference (event_time);
CREATE INDEX IF NOT EXISTS inference_request_id ON inference (request_id);
"""
_POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS inference (
    request_id TEXT NOT NULL,
    event_time TIMESTAMPTZ NOT NULL,
    endpoint TEXT NOT NULL,
    api_type TEXT NOT NULL,
    requester TEXT,
    status_code INTEGER NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    streaming BOOLEAN NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    truncated BOOLEAN NOT NULL
);
CREATE INDEX IF NOT EXISTS inference_event_time ON inference (event_time);
CREATE INDEX IF NOT EXISTS inference_request_id ON inference (request_id);
"""
_INSERT = (f"INSERT INTO inference ({', '.join(INFERENCE_COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in INFERENCE_COLUMNS)})")
_EVENT_TIME = INFERENCE_COLUMNS.index("event_time")


def _row(r: InferenceRecord, time_of) -> list[object]:  # type: ignore[no-untyped-def]
    row = list(msgspec.structs.astuple(r))
    row[_EVENT_TIME] = time_of(r.event_time)
    return row


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


class SQLiteInferenceSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SQLITE_SCHEMA)
        return conn

    async def open(self) -> None:
        self._conn = await asyncio.to_thread(self._open)

    def _write(self, records: list[InferenceRecord]) -> None:
        assert self._conn is not None
        with self._conn:
            self._conn.executemany(_INSERT, [_row(r, sqlite_time) for r in records])

    async def write(self, records: list[InferenceRecord]) -> None:
        if self._conn is None:
            await self.open()
        await asyncio.to_thread(self._write, records)

    async def ping(self) -> bool:
        return self._conn is not None

    async def close(self) -> None:
        if self._conn is not None:
            await asyncio.to_thread(self._conn.close)
            self._conn = None


class PostgresInferenceSink:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._pool = None

    async def open(self) -> None:
        pool = await _import_asyncpg().create_pool(self.dsn, min_size=1, max_size=2, timeout=CONNECT_TIMEOUT_S)
        try:
            async with pool.acquire() as conn:
                await conn.execute(_POSTGRES_SCHEMA)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def write(self, records: list[InferenceRecord]) -> None:
        if self._pool is None:
            await self.open()
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            await conn.copy_records_to_table("inference", records=[_row(r, _utc) for r in records],
                                             columns=INFERENCE_COLUMNS)

    async def ping(self) -> bool:
        return self._pool is not None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
