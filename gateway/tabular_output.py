"""Query results to a terminal or a pipe: an aligned table, CSV, or JSON lines.

Shared by ``gateway sql`` and ``gateway batch``. In a table, NULL shows as ``NULL``, nested
values (structs, lists, JSON) as JSON, and a long cell is cut at ``max_width`` characters
with ``…`` (line breaks shown as ``\\n``) so rows stay one line each; CSV and JSON lines
carry every value whole.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import uuid
from collections.abc import Sequence
from typing import Any, TextIO

import orjson

FORMATS = ("table", "csv", "jsonl")


def _default(value: Any) -> Any:
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _json(value: Any) -> str:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


def cell_text(value: Any) -> str:
    """A value as text for CSV and tables (JSON for nested values)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()
    if isinstance(value, (dict, list, tuple)):
        return _json(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def _table_cell(value: Any, max_width: int) -> str:
    if value is None:
        return "NULL"
    text = cell_text(value).replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= max_width else text[: max_width - 1] + "…"


def write_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, out: TextIO, *,
               max_width: int = 80) -> None:
    """Write ``rows`` under ``columns`` to ``out`` as ``fmt`` (one of FORMATS)."""
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([cell_text(v) for v in row] for row in rows)
    elif fmt == "jsonl":
        for row in rows:
            out.write(_json(dict(zip(columns, row))) + "\n")
    elif fmt == "table":
        cells = [[_table_cell(v, max_width) for v in row] for row in rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip(),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
        out.write("\n".join(lines) + "\n")
        out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")
    else:
        raise ValueError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
