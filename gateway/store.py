"""The gateway's own small tables (run-time tokens, endpoints managed through the admin API),
kept in the configured store: the SQLite file or the PostgreSQL database the usage table
lives in. Statements are written with PostgreSQL's ``$n`` placeholders. These tables are
read by a background refresh every few seconds and written by admin actions, never on the
request path.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

from gateway.config import GatewayConfig
from gateway.sinks.postgres import CONNECT_TIMEOUT_S, _import_asyncpg


class Store:
    """One connection to the store for this object's life (opened on first use, reopened
    after a failure), and the table's schema made once on it. Statements run one at a time;
    on PostgreSQL each fails after ``storage.command_timeout_s``, so a locked table or a
    silent server fails a refresh (which keeps the last state) instead of stalling it."""

    def __init__(self, config: GatewayConfig, schema: dict[str, str]) -> None:
        """``schema`` holds the CREATE TABLE statement for ``sqlite`` and for ``postgres``."""
        storage = config.storage
        self._dsn = storage.dsn if storage.kind == "postgres" else None
        self._command_timeout = storage.command_timeout_s
        self._path = Path(storage.path or Path(config.server.data_dir) / "usage.db")
        self._schema = schema
        self._sqlite_conn: sqlite3.Connection | None = None
        self._pg_conn = None  # asyncpg.Connection
        self._lock = asyncio.Lock()

    def _sqlite(self, sql: str, args: tuple) -> list[tuple]:  # type: ignore[type-arg]
        if self._sqlite_conn is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # Used from worker threads, one statement at a time (the lock in ``run``).
            conn = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
            conn.execute(self._schema["sqlite"])
            self._sqlite_conn = conn
        with self._sqlite_conn:
            return self._sqlite_conn.execute(sql, args).fetchall()

    async def _postgres(self, sql: str, args: tuple) -> list[tuple]:  # type: ignore[type-arg]
        asyncpg = _import_asyncpg()
        if self._pg_conn is None or self._pg_conn.is_closed():
            conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S, command_timeout=self._command_timeout)
            try:
                await conn.execute(self._schema["postgres"])
            except BaseException:
                await conn.close()
                raise
            self._pg_conn = conn
        try:
            return [tuple(r) for r in await self._pg_conn.fetch(sql, *args)]
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError):  # TimeoutError is an OSError
            self._drop_postgres()  # the next statement reconnects
            raise

    def _drop_postgres(self) -> None:
        conn, self._pg_conn = self._pg_conn, None
        if conn is not None:
            conn.terminate()

    async def run(self, sql: str, args: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
        """Run one statement; the rows it returns."""
        async with self._lock:
            if self._dsn is None:
                return await asyncio.to_thread(self._sqlite, re.sub(r"\$\d+", "?", sql), args)
            return await self._postgres(sql, args)

    async def close(self) -> None:
        """Close the connection; a later statement opens a new one."""
        async with self._lock:
            if self._sqlite_conn is not None:
                self._sqlite_conn.close()
                self._sqlite_conn = None
            if self._pg_conn is not None:
                conn, self._pg_conn = self._pg_conn, None
                await conn.close()

    async def add_column(self, table: str, column: str, definition: str) -> None:
        """Add ``column`` to a table made by an earlier version, if it lacks it (both dialects)."""
        try:
            await self.run(f"SELECT {column} FROM {table} LIMIT 1")
            return
        except Exception:  # noqa: BLE001 - sqlite3 and asyncpg name a missing column differently
            pass
        try:
            await self.run(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        except Exception:  # noqa: BLE001 - another worker added it first; the check below decides
            pass
        await self.run(f"SELECT {column} FROM {table} LIMIT 1")

