"""Read-only SQL over the gateway's store (the usage and inference tables), in the store's
own engine: ``gateway sql`` and the tables ``gateway batch`` loads.

The store's engine is the right one for these tables: its SQL is what the tables were made
for (``json_extract(request_tags, '$.team')`` on SQLite, ``request_tags->>'team'`` and JSONB
on PostgreSQL), it uses their indexes (``event_time``), and it enforces read-only access
itself. DuckDB could only read them through its sqlite and postgres scanner extensions,
which are downloaded at run time rather than shipped in the wheel.

Read-only, both ways:
- SQLite: the file is opened read-only (``mode=ro``), ``PRAGMA query_only`` is set, and an
  authorizer refuses everything but reading (SELECT, WITH, functions, a few schema PRAGMAs),
  so ATTACH, writes and DDL are refused before they run. A progress handler stops a query
  still running after ``timeout_s``.
- PostgreSQL: each query runs alone in a ``READ ONLY`` transaction with ``statement_timeout``
  set (and a client-side timeout a little past it, for a server that stopped answering);
  a prepared statement holds one statement, so ``COMMIT; DELETE ...`` cannot slip through.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from gateway.config import GatewayConfig
from gateway.sinks.postgres import CONNECT_TIMEOUT_S, _import_asyncpg

#: PRAGMAs that only read the schema, allowed for looking around (``PRAGMA table_info(usage)``).
_READ_PRAGMAS = {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo"}
_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}


class QueryResult(msgspec.Struct):
    columns: list[str]
    rows: list[tuple[Any, ...]]


class StoreQueryError(Exception):
    """A query the store refused or could not run; the message is the user's to read."""


def sqlite_path(config: GatewayConfig) -> Path:
    return Path(config.storage.path or Path(config.server.data_dir) / "usage.db")


def dialect(config: GatewayConfig) -> str:
    return "postgres" if config.storage.kind == "postgres" else "sqlite"


def _authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
    # These PRAGMAs take a table or index name, never a setting to change.
    if action in _ALLOWED or (action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _READ_PRAGMAS):
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _sqlite_query(path: Path, sql: str, params: Sequence[Any], timeout_s: float) -> QueryResult:
    if not path.exists():
        raise StoreQueryError(f"there is no store at {path} yet (the gateway creates it when it starts)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout_s)
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.set_authorizer(_authorize)
        deadline = time.monotonic() + timeout_s
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            cursor = conn.execute(sql, params)
            rows = cursor.fetchall()
        except sqlite3.DatabaseError as exc:
            text = str(exc)
            if "not authorized" in text:
                raise StoreQueryError("refused: gateway sql is read-only (only SELECT and WITH queries "
                                      "are allowed)") from None
            if "interrupted" in text:
                raise StoreQueryError(f"the query was cancelled after {timeout_s:g} s") from None
            raise StoreQueryError(f"SQLite: {text}") from None
        except sqlite3.ProgrammingError as exc:  # several statements at once, bad parameters
            raise StoreQueryError(f"SQLite: {exc}") from None
        return QueryResult([d[0] for d in cursor.description or ()], rows)
    finally:
        conn.close()


async def _postgres_query(dsn: str, sql: str, params: Sequence[Any], timeout_s: float) -> QueryResult:
    asyncpg = _import_asyncpg()
    try:
        conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S, command_timeout=timeout_s + 5)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        raise StoreQueryError(f"cannot connect to PostgreSQL: {exc or type(exc).__name__}") from None
    try:
        async with conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
            stmt = await conn.prepare(sql)
            rows = await stmt.fetch(*params)
            return QueryResult([a.name for a in stmt.get_attributes()], [tuple(r) for r in rows])
    except asyncpg.ReadOnlySQLTransactionError:
        raise StoreQueryError("refused: gateway sql is read-only (the query ran in a read-only "
                              "transaction and tried to write)") from None
    except asyncpg.QueryCanceledError:
        raise StoreQueryError(f"the query was cancelled after {timeout_s:g} s (statement_timeout)") from None
    except asyncpg.PostgresError as exc:
        raise StoreQueryError(f"PostgreSQL: {exc}") from None
    except asyncio.TimeoutError:
        raise StoreQueryError(f"PostgreSQL did not answer within {timeout_s + 5:g} s") from None
    finally:
        await conn.close(timeout=5)


async def query_store(config: GatewayConfig, sql: str, params: Sequence[Any] = (), *,
                      timeout_s: float = 30.0) -> QueryResult:
    """Run one read-only query over the configured store."""
    if config.storage.kind == "postgres":
        assert config.storage.dsn is not None
        return await _postgres_query(config.storage.dsn, sql, params, timeout_s)
    return await asyncio.to_thread(_sqlite_query, sqlite_path(config), sql, params, timeout_s)
