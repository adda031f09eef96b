"""``gateway sql``: read-only queries over the usage and inference tables, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap

import openai

from gateway.cli import main
from gateway.state import WRITER
from tests.conftest import TOKEN, Gateway

ENDPOINTS = [
    {"name": "chat", "served_entities": [{"provider": "mock", "model": "echo"}], "inference_table": {"enabled": True}},
    {"name": "other", "served_entities": [{"provider": "mock", "model": "echo"}]},
]


async def traffic(gw: Gateway) -> None:
    """Three tagged requests to ``chat``, one to ``other``; returns once all are written."""
    client = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
    for i, (model, team) in enumerate([("chat", "a"), ("chat", "a"), ("chat", "b"), ("other", "b")]):
        await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": f"hello {i}"}],
            extra_headers={"Databricks-Ai-Gateway-Request-Tags": json.dumps({"team": team})})
    await gw.app[WRITER].wait_submitted(4)
    await gw.app[WRITER].flushed()


async def run_cli(capsys, *args: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """The command line in a thread (the gateway answers on this loop): exit code, stdout, stderr."""
    code = await asyncio.to_thread(main, list(args))
    out, err = capsys.readouterr()
    return code, out, err


async def sql(capsys, *args: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    return await run_cli(capsys, "sql", *args)


def postgres_config(tmp_path, dsn: str):  # type: ignore[no-untyped-def]
    """A configuration file naming only the PostgreSQL store."""
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent(f"""
        endpoints: []
        storage: {{kind: postgres, dsn: "{dsn}"}}
    """))
    return config


async def test_sql_over_sqlite_in_every_format(make_gateway, capsys):
    gw = await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS)
    await traffic(gw)
    await gw.inference_rows(at_least=3)
    query = ("SELECT json_extract(request_tags, '$.team') AS team, count(*) AS n FROM usage "
             "GROUP BY team ORDER BY team")
    code, out, err = await sql(capsys, "--data-dir", gw.data_dir, query)
    assert code == 0, err
    assert out.splitlines() == ["team  n", "----  -", "a     2", "b     2", "(2 rows)"]
    code, out, err = await sql(capsys, "--data-dir", gw.data_dir, "--format", "csv", query)
    assert out == "team,n\na,2\nb,2\n"
    code, out, err = await sql(capsys, "--data-dir", gw.data_dir, "--format", "jsonl",
                               "SELECT u.endpoint, i.request FROM inference i JOIN usage u USING (request_id) "
                               "ORDER BY i.event_time LIMIT 1")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["endpoint"] == "chat" and json.loads(row["request"])["messages"][0]["content"] == "hello 0"


async def test_sqlite_store_is_read_only(make_gateway, capsys):
    gw = await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS)
    await traffic(gw)
    for statement in ("DELETE FROM usage", "UPDATE usage SET endpoint = 'x'", "DROP TABLE usage",
                      "INSERT INTO usage SELECT * FROM usage", f"ATTACH '{gw.data_dir}/other.db' AS o",
                      "PRAGMA journal_mode = DELETE", "CREATE TABLE t (a)"):
        code, out, err = await sql(capsys, "--data-dir", gw.data_dir, statement)
        assert code == 1 and "refused: gateway sql is read-only" in err, (statement, err)
    conn = sqlite3.connect(f"{gw.data_dir}/usage.db")
    assert conn.execute("SELECT count(*) FROM usage").fetchone() == (4,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    code, out, err = await sql(capsys, "--data-dir", gw.data_dir, "PRAGMA table_info(usage)")
    assert code == 0 and "request_tags" in out


async def test_bad_sql_gets_the_engines_message_and_exit_1(make_gateway, capsys, tmp_path):
    gw = await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS)
    await traffic(gw)
    code, out, err = await sql(capsys, "--data-dir", gw.data_dir, "SELEC * FROM usage")
    assert code == 1 and err == 'error: SQLite: near "SELEC": syntax error\n'
    code, out, err = await sql(capsys, "--data-dir", gw.data_dir, "SELECT * FROM nope")
    assert code == 1 and "no such table: nope" in err
    code, out, err = await sql(capsys, "--data-dir", str(tmp_path / "missing"), "SELECT 1")
    assert code == 1 and "there is no store at" in err
    code, out, err = await sql(capsys, "--data-dir", gw.data_dir)
    assert code == 2 and "give the query as an argument or with --file" in err


def test_sql_reads_the_query_from_a_file_or_stdin(tmp_path):
    conn = sqlite3.connect(tmp_path / "usage.db")
    conn.execute("CREATE TABLE usage (endpoint TEXT)")
    conn.execute("INSERT INTO usage VALUES ('chat')")
    conn.commit()
    conn.close()
    (tmp_path / "q.sql").write_text("SELECT endpoint FROM usage")
    run = [sys.executable, "-m", "gateway", "sql", "--data-dir", str(tmp_path), "--format", "csv", "--file"]
    assert subprocess.run([*run, str(tmp_path / "q.sql")], capture_output=True, text=True).stdout == "endpoint\nchat\n"
    piped = subprocess.run([*run, "-"], input="SELECT count(*) AS n FROM usage", capture_output=True, text=True)
    assert piped.returncode == 0 and piped.stdout == "n\n1\n"


async def test_sql_over_postgres_is_read_only_with_a_timeout(make_gateway, capsys, postgres_dsn, tmp_path):
    gw = await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS, storage={"kind": "postgres", "dsn": postgres_dsn})
    await traffic(gw)
    config = postgres_config(tmp_path, postgres_dsn)
    code, out, err = await sql(capsys, "--config", str(config), "--format", "jsonl",
                               "SELECT request_tags->>'team' AS team, count(*) AS n FROM usage "
                               "WHERE endpoint = 'chat' GROUP BY 1 ORDER BY 1")
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [{"team": "a", "n": 2}, {"team": "b", "n": 1}]
    for statement in ("DELETE FROM usage", "CREATE TABLE t (a int)", "COMMIT; DELETE FROM usage"):
        code, out, err = await sql(capsys, "--config", str(config), statement)
        assert code == 1, statement
        assert "read-only" in err or "multiple commands" in err, (statement, err)
    code, out, err = await sql(capsys, "--config", str(config), "--timeout", "0.2", "SELECT pg_sleep(5)")
    assert code == 1 and "cancelled after 0.2 s" in err
    code, out, err = await sql(capsys, "--config", str(config), "SELECT nope FROM usage")
    assert code == 1 and 'PostgreSQL: column "nope" does not exist' in err
    code, out, err = await sql(capsys, "--config", str(config), "SELECT count(*) AS n FROM usage")
    assert out.splitlines()[2] == "4"
