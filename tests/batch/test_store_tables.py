"""The usage and inference tables in batch SQL, from SQLite and from PostgreSQL."""

from __future__ import annotations

import json
import sqlite3

import pytest

pytest.importorskip("duckdb")

from tests.test_sql_command import ENDPOINTS, postgres_config, run_cli, traffic  # noqa: E402

TYPES = ("SELECT typeof(event_time) AS t, typeof(request_tags) AS tags, typeof(streaming) AS s, "
         "typeof(attempts) AS a, count(*) AS n, count(*) FILTER (WHERE request_tags->>'team' = 'a') AS team_a "
         "FROM usage GROUP BY ALL")
EXPECTED = {"t": "TIMESTAMP WITH TIME ZONE", "tags": "JSON", "s": "BOOLEAN", "a": "JSON"}


async def batch(capsys, *args: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    return await run_cli(capsys, "batch", "--format", "jsonl", *args)


async def test_sqlite_usage_and_inference_tables_load_with_duckdb_types(make_gateway, capsys):
    gw = await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS)
    await traffic(gw)
    await gw.inference_rows(at_least=3)
    code, out, err = await batch(capsys, "--data-dir", gw.data_dir, TYPES)
    assert code == 0, err
    assert json.loads(out) == {**EXPECTED, "n": 4, "team_a": 2}
    code, out, err = await batch(capsys, "--data-dir", gw.data_dir,
                                 "SELECT count(*) AS n, bool_and(NOT truncated) AS whole FROM inference "
                                 "JOIN usage USING (request_id)")
    assert json.loads(out) == {"n": 3, "whole": True}


async def test_since_bounds_the_rows_loaded(make_gateway, capsys):
    gw = await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS)
    await traffic(gw)
    conn = sqlite3.connect(f"{gw.data_dir}/usage.db")
    with conn:
        conn.execute("INSERT INTO usage SELECT * FROM usage LIMIT 1")
        conn.execute("UPDATE usage SET event_time = '2020-01-01 00:00:00.000000' "
                     "WHERE rowid = (SELECT max(rowid) FROM usage)")
    conn.close()
    code, out, err = await batch(capsys, "--data-dir", gw.data_dir, "SELECT count(*) AS n FROM usage")
    assert json.loads(out) == {"n": 4}  # default: the last 7 days
    code, out, err = await batch(capsys, "--data-dir", gw.data_dir, "--since", "all",
                                 "SELECT count(*) AS n, min(event_time)::DATE::VARCHAR AS first FROM usage")
    assert json.loads(out) == {"n": 5, "first": "2020-01-01"}


async def test_a_table_of_your_own_named_usage_is_left_alone(make_gateway, capsys):
    gw = await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS)
    await traffic(gw)
    code, out, err = await batch(capsys, "--data-dir", gw.data_dir,
                                 "CREATE TABLE usage AS SELECT 42 AS answer; SELECT * FROM usage")
    assert code == 0, err
    assert json.loads(out) == {"answer": 42}


async def test_postgres_usage_table_loads_with_the_same_types(make_gateway, capsys, postgres_dsn, tmp_path):
    gw = await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS, storage={"kind": "postgres", "dsn": postgres_dsn})
    await traffic(gw)
    code, out, err = await batch(capsys, "--config", str(postgres_config(tmp_path, postgres_dsn)), TYPES)
    assert code == 0, err
    assert json.loads(out) == {**EXPECTED, "n": 4, "team_a": 2}
