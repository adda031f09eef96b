"""``gateway usage``: a summary of the usage table, grouped by a column or a request tag."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import msgspec

from gateway.config import GatewayConfig
from gateway.sinks.postgres import _import_asyncpg
from gateway.sinks.sqlite import sqlite_time

_SINCE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_COLUMNS = {"endpoint", "requester", "provider", "provider_model", "api_type", "status_code"}
_TAG_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
HEADERS = ["REQUESTS", "ERRORS", "INPUT TOKENS", "OUTPUT TOKENS", "AVG LATENCY MS", "AVG TTFB MS"]


class UsageQuery(msgspec.Struct, frozen=True):
    since: float  # Unix seconds
    by: str = "endpoint"


def parse_duration(text: str) -> float:
    """'90m', '1h', '7d' -> seconds."""
    m = _SINCE.match(text)
    if not m:
        raise ValueError(f"{text!r}: use a number and a unit, e.g. 30m, 1h, 7d")
    return float(int(m.group(1)) * _UNITS[m.group(2)])


def parse_since(text: str) -> float:
    """'90m', '1h', '7d' -> the Unix time that long ago."""
    return time.time() - parse_duration(text)


def _group_expr(by: str, dialect: str) -> tuple[str, list[str]]:
    """The SQL expression for the group column, and its bind parameters."""
    if by == "status":
        by = "status_code"
    if by in _COLUMNS:
        return by, []
    if by.startswith("tag:") and _TAG_KEY.match(by[4:]):
        key = by[4:]
        if dialect == "sqlite":
            return "json_extract(request_tags, ?)", [f'$."{key}"']
        return "request_tags->>$1", [key]
    raise ValueError(f"--by {by!r}: use endpoint, requester, provider, provider_model, api_type, status or tag:KEY")


def _sqlite_report(path: Path, q: UsageQuery) -> list[tuple]:  # type: ignore[type-arg]
    expr, params = _group_expr(q.by, "sqlite")
    sql = f"""
        SELECT {expr} AS k, COUNT(*), SUM(status_code >= 400), SUM(input_tokens), SUM(output_tokens),
               AVG(latency_ms), AVG(time_to_first_byte_ms)
        FROM usage WHERE event_time >= ? GROUP BY k ORDER BY COUNT(*) DESC"""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql, [*params, sqlite_time(q.since)]).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()


async def _postgres_report(dsn: str, q: UsageQuery) -> list[tuple]:  # type: ignore[type-arg]
    asyncpg = _import_asyncpg()
    expr, params = _group_expr(q.by, "postgres")
    n = len(params) + 1
    sql = f"""
        SELECT {expr} AS k, COUNT(*), SUM((status_code >= 400)::int), SUM(input_tokens), SUM(output_tokens),
               AVG(latency_ms), AVG(time_to_first_byte_ms)
        FROM usage WHERE event_time >= ${n} GROUP BY k ORDER BY COUNT(*) DESC"""
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(sql, *params, datetime.fromtimestamp(q.since, timezone.utc))]
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()


async def run_usage_report(config: GatewayConfig, q: UsageQuery) -> tuple[list[str], list[list[str]]]:
    """Headers and rows for the summary table."""
    storage = config.storage
    if storage.kind == "postgres":
        assert storage.dsn is not None
        raw = await _postgres_report(storage.dsn, q)
    else:
        path = Path(storage.path or Path(config.server.data_dir) / "usage.db")
        raw = await asyncio.to_thread(_sqlite_report, path, q)
    rows = [
        [str(k) if k is not None else "-", str(n), str(int(err or 0)), str(int(i or 0)), str(int(o or 0)),
         f"{lat or 0:.1f}", f"{ttfb or 0:.1f}"]
        for k, n, err, i, o, lat, ttfb in raw
    ]
    return [q.by.upper(), *HEADERS], rows
