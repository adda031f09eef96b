"""The usage table in SQLite (the embedded default). Writes run in a worker thread."""

from __future__ import annotations

import asyncio
import functools
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import orjson

from gateway.sinks.records import COLUMNS, UsageRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    request_id TEXT NOT NULL,
    event_time TEXT NOT NULL,
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
    tokens_estimated INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    time_to_first_byte_ms REAL,
    streaming INTEGER NOT NULL,
    request_tags TEXT NOT NULL,
    error_code TEXT,
    attempts TEXT NOT NULL,
    guardrails TEXT
);
CREATE INDEX IF NOT EXISTS usage_event_time ON usage (event_time);
"""

ADDED_COLUMNS = {"attempts": "TEXT NOT NULL DEFAULT '[]'", "guardrails": "TEXT"}
#: The usage table's data version in the file's PRAGMA user_version; 1: attempts stored as text.
_USAGE_VERSION = 1

_INSERT = f"INSERT INTO usage ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


#: Rows per INSERT statement, largest first: a batch goes in as statements of these sizes,
#: so a handful of statements stay compiled whatever the batch's size. 256 rows of the
#: usage table's 22 columns bind 5,632 values, far below SQLite's limit of 32,766.
_ROWS_PER_INSERT = (256, 64, 16, 4, 1)


def sqlite_time(ts: float) -> str:
    """UTC 'YYYY-MM-DD HH:MM:SS.ffffff': sorts as text and works with SQLite date functions."""
    seconds = math.floor(ts)
    micros = round((ts - seconds) * 1_000_000)  # as datetime.fromtimestamp rounds
    if micros == 1_000_000:
        seconds, micros = seconds + 1, 0
    return f"{_utc_second(seconds)}.{micros:06d}"


@functools.lru_cache(maxsize=64)
def _utc_second(seconds: int) -> str:
    # Rows of one batch share a handful of seconds: format each once.
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


_json = msgspec.json.Encoder().encode


def _row(r: UsageRecord) -> tuple[object, ...]:
    return (
        r.request_id, sqlite_time(r.event_time), r.api_type, r.endpoint, r.provider, r.provider_model,
        r.requester, r.user_agent, r.status_code, r.input_tokens, r.output_tokens, r.total_tokens,
        r.cache_read_tokens, r.cache_write_tokens, r.reasoning_tokens, int(r.tokens_estimated),
        r.latency_ms, r.time_to_first_byte_ms, int(r.streaming), orjson.dumps(r.request_tags).decode(), r.error_code,
        _json(r.attempts).decode(),  # text, as SQLite's JSON functions refuse a blob
        r.guardrails,
    )


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode, so several worker processes can write one file."""
    conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(SCHEMA)
    # Tables made by an earlier version lack the columns added since.
    have = {row[1] for row in conn.execute("PRAGMA table_info(usage)")}
    for column, ddl in ADDED_COLUMNS.items():
        if column not in have:
            conn.execute(f"ALTER TABLE usage ADD COLUMN {column} {ddl}")
    if conn.execute("PRAGMA user_version").fetchone()[0] < _USAGE_VERSION:
        # Before version 1, attempts went in as blobs: one pass makes them text (safe to run twice).
        with conn:
            conn.execute("UPDATE usage SET attempts = CAST(attempts AS TEXT) WHERE typeof(attempts) = 'blob'")
            conn.execute(f"PRAGMA user_version = {_USAGE_VERSION}")
    return conn


class SQLiteTableSink:
    """One table in the SQLite file: ``connect`` opens the file with the table's schema,
    ``insert`` takes the rows ``row`` makes of records. Writes run in a worker thread."""

    def __init__(self, path: Path, connect: Callable[[Path], sqlite3.Connection], insert: str,
                 row: Callable[[Any], Sequence[object]]) -> None:
        self.path = path
        self._connect = connect
        self._insert = insert
        self._row = row
        self._inserts: dict[int, str] = {}
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = await asyncio.to_thread(self._connect, self.path)

    def _write(self, records: list[Any]) -> None:
        assert self._conn is not None
        row, i = self._row, 0
        with self._conn:
            for size in _ROWS_PER_INSERT:
                sql = self._insert_of(size)
                while len(records) - i >= size:
                    self._conn.execute(sql, [v for r in records[i:i + size] for v in row(r)])
                    i += size

    def _insert_of(self, rows: int) -> str:
        """The INSERT for ``rows`` rows in one statement: one statement step per chunk
        instead of per row, so the thread gives up and takes back the GIL (a futex
        hand-over with the event loop each time) a few times per batch, not per row."""
        sql = self._inserts.get(rows)
        if sql is None:
            head, _, values = self._insert.partition(" VALUES ")
            sql = self._inserts[rows] = f"{head} VALUES {', '.join([values] * rows)}"
        return sql

    async def write(self, records: list[Any]) -> None:
        if self._conn is None:  # could not be opened at start: try again now
            await self.open()
        await asyncio.to_thread(self._write, records)

    async def ping(self) -> bool:
        return self._conn is not None

    async def close(self) -> None:
        if self._conn is not None:
            await asyncio.to_thread(self._conn.close)
            self._conn = None


class SQLiteUsageSink(SQLiteTableSink):
    """The usage table."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, connect, _INSERT, _row)
