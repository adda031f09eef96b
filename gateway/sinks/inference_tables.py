"""The ``inference`` table (request and response payloads) in SQLite and in PostgreSQL.

It lives beside the usage table, in the same file or database, and joins it on
``request_id``. Writes come in batches from a BatchWriter of their own.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import msgspec

from gateway.sinks.postgres import COMMAND_TIMEOUT_S, PostgresTableSink
from gateway.sinks.records import INFERENCE_COLUMNS, InferenceRecord
from gateway.sinks.sqlite import SQLiteTableSink, sqlite_time

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


def _row(r: InferenceRecord, time_of: Callable[[float], object]) -> list[object]:
    row = list(msgspec.structs.astuple(r))
    row[_EVENT_TIME] = time_of(r.event_time)
    return row


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(_SQLITE_SCHEMA)
    return conn


class SQLiteInferenceSink(SQLiteTableSink):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _connect, _INSERT, functools.partial(_row, time_of=sqlite_time))


class PostgresInferenceSink(PostgresTableSink):
    def __init__(self, dsn: str, command_timeout: float = COMMAND_TIMEOUT_S) -> None:
        super().__init__(dsn, "inference", _POSTGRES_SCHEMA, INFERENCE_COLUMNS,
                         functools.partial(_row, time_of=lambda ts: datetime.fromtimestamp(ts, timezone.utc)),
                         command_timeout=command_timeout)
