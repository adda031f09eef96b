"""Batch inference: SQL in DuckDB, in-process, with ``ai_query(endpoint, request, ...)``.

    calls.py        find ai_query calls in a statement, read their constant arguments, rewrite
                    each call to a function registered for it (one return type per call site)
    types.py        returnType / responseFormat: DuckDB or Spark type strings, JSON schemas
    client.py       the HTTP client to a running gateway: bounded concurrency, retries, tags
    ai_query.py     the vectorised (Arrow) scalar function DuckDB calls with a batch of rows
    store_tables.py the gateway's usage and inference tables, loaded into DuckDB when named
    session.py      one run: a DuckDB connection, the statements, the result
    command.py      the ``gateway batch`` command line

Every ai_query row is one HTTP request to the gateway, so authentication, permissions, rate
limits, fallbacks, guardrails and the usage table apply to batch work as to any client.
"""

from __future__ import annotations

from types import ModuleType

EXTRA_MESSAGE = "gateway batch needs DuckDB and PyArrow: pip install 'gateway[batch]'"


def import_duckdb() -> ModuleType:
    """The duckdb module, or a RuntimeError naming the extra to install."""
    try:
        import duckdb
        import numpy  # noqa: F401 - DuckDB's Python functions need it and do not depend on it
        import pyarrow  # noqa: F401
    except ImportError:
        raise RuntimeError(EXTRA_MESSAGE) from None
    return duckdb
