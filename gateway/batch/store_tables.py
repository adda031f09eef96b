"""The gateway's ``usage`` and ``inference`` tables as DuckDB tables, for batch SQL.

A statement that names one of them (and has not made a table of that name itself) gets it
copied in from the store, read-only through ``gateway.store_query``, rows since ``since``
only. The columns keep the store's names, with DuckDB types: ``event_time`` TIMESTAMPTZ,
flags BOOLEAN, ``request_tags`` and ``attempts`` JSON (so ``request_tags->>'batch_id'``
works as it does on PostgreSQL).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

import msgspec

from gateway.config import GatewayConfig
from gateway.sinks.records import InferenceRecord, UsageRecord
from gateway.sinks.sqlite import sqlite_time
from gateway.store_query import dialect, query_store

STORE_TABLES = {"usage": UsageRecord, "inference": InferenceRecord}
_LOAD_TIMEOUT_S = 600.0


def _column_kinds(record: type) -> list[tuple[str, str]]:
    """(column, kind) with kind one of text, int, float, bool, json, time."""
    kinds = []
    for field in msgspec.structs.fields(record):
        t = field.type
        if field.name == "event_time":
            kind = "time"
        elif t is bool:
            kind = "bool"
        elif t is int:
            kind = "int"
        elif t is float or t == float | None:
            kind = "float"
        elif t is str or t == str | None:
            kind = "text"
        else:  # dicts and lists of attempts
            kind = "json"
        kinds.append((field.name, kind))
    return kinds


def _select(table: str, kinds: list[tuple[str, str]], flavour: str) -> str:
    """The store query giving every column in one raw form for both stores: times as UTC
    text, flags as integers, JSON as text."""
    if flavour == "sqlite":
        return f"SELECT {', '.join(c for c, _ in kinds)} FROM {table} WHERE event_time >= ?"
    exprs = []
    for column, kind in kinds:
        if kind == "time":
            exprs.append(f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS {column}")
        elif kind == "bool":
            exprs.append(f"{column}::int AS {column}")
        elif kind == "json":
            exprs.append(f"{column}::text AS {column}")
        else:
            exprs.append(column)
    return f"SELECT {', '.join(exprs)} FROM {table} WHERE event_time >= $1"


def _cast(column: str, kind: str) -> str:
    return {
        "time": f"CAST({column} || '+00' AS TIMESTAMPTZ) AS {column}",
        "bool": f"CAST({column} AS BOOLEAN) AS {column}",
        "json": f"CAST({column} AS JSON) AS {column}",
    }.get(kind, column)


def named_store_tables(duckdb: ModuleType, sql: str) -> set[str]:
    """The store tables a statement names, by DuckDB's tokenizer (binding would fail on the
    very tables not loaded yet); a name the statement itself creates is the user's own."""
    raw = sql.encode()
    tokens = duckdb.tokenize(sql)
    words = [raw[start:tokens[i + 1][0] if i + 1 < len(tokens) else len(raw)].strip().decode().strip('"').lower()
             for i, (start, kind) in enumerate(tokens)
             if kind in (duckdb.token_type.identifier, duckdb.token_type.keyword)]
    named = {w for w in words if w in STORE_TABLES}
    if words[:1] == ["create"]:
        rest = [w for w in words[1:] if w not in ("or", "replace", "temp", "temporary", "if", "not", "exists")]
        if len(rest) > 1 and rest[0] in ("table", "view"):
            named.discard(rest[1])
    return named


def load_store_table(conn: Any, config: GatewayConfig, table: str, since: float) -> int:
    """Copy ``table``'s rows since ``since`` (Unix seconds) into DuckDB; the row count."""
    import pyarrow as pa

    kinds = _column_kinds(STORE_TABLES[table])
    flavour = dialect(config)
    param: Any = sqlite_time(since) if flavour == "sqlite" else datetime.fromtimestamp(since, timezone.utc)
    result = asyncio.run(query_store(config, _select(table, kinds, flavour), [param], timeout_s=_LOAD_TIMEOUT_S))
    raw_types = {"int": pa.int64(), "bool": pa.int64(), "float": pa.float64()}
    columns = list(zip(*result.rows)) if result.rows else [() for _ in kinds]
    raw = pa.table({c: pa.array(list(values), type=raw_types.get(kind, pa.string()))
                    for (c, kind), values in zip(kinds, columns)})
    staging = f"__store_{table}"
    conn.register(staging, raw)
    try:
        casts = ", ".join(_cast(c, kind) for c, kind in kinds)
        conn.sql(f"CREATE TEMP TABLE {table} AS SELECT {casts} FROM {staging}")
    finally:
        conn.unregister(staging)
    return len(result.rows)
