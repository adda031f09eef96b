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
from gateway.sinks.postgres import _import_asyncpg


class Store:
    def __init__(self, config: GatewayConfig, schema: dict[str, str]) -> None:
        """``schema`` holds the CREATE TABLE statement for ``sqlite`` and for ``postgres``."""
        storage = config.storage
        self._dsn = storage.dsn if storage.kind == "postgres" else None
        self._path = Path(storage.path or Path(config.server.data_dir) / "usage.db")
        self._schema = schema

    def _sqlite(self, sql: str, args: tuple) -> list[tuple]:  # type: ignore[type-arg]
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, timeout=30)
        try:
            conn.execute(self._schema["sqlite"])
            with conn:
                return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    async def run(self, sql: str, args: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
        """Run one statement; the rows it returns."""
        if self._dsn is None:
            return await asyncio.to_thread(self._sqlite, re.sub(r"\$\d+", "?", sql), args)
        conn = await _import_asyncpg().connect(self._dsn)
        try:
            await conn.execute(self._schema["postgres"])
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
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

