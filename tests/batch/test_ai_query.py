"""ai_query through a real gateway over HTTP: order, concurrency, retries, errors, types, tags.

The gateway runs on the test's event loop, so the batch (which blocks while DuckDB runs)
runs in a thread: ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")

import duckdb  # noqa: E402

from gateway.batch.client import ClientOptions, GatewayClient  # noqa: E402
from gateway.batch.session import BatchError, BatchOptions, BatchSession  # noqa: E402
from gateway.cli import main  # noqa: E402
from tests.batch.upstream import Script, scripted_app  # noqa: E402
from tests.conftest import TOKEN, Gateway  # noqa: E402
from tests.test_sql_command import run_cli  # noqa: E402

ENDPOINTS = [
    {"name": "mock-chat", "served_entities": [{"provider": "mock", "model": "echo"}]},
    {"name": "mock-embeddings", "task": "embeddings", "served_entities": [{"provider": "mock", "model": "embed"}]},
    {"name": "mock-broken", "served_entities": [{"provider": "mock", "model": "error-400"}]},
    {"name": "verbatim", "served_entities": [{"provider": "up", "model": "verbatim"}]},
    {"name": "ordered", "served_entities": [{"provider": "up", "model": "ordered"}]},
    {"name": "slow", "served_entities": [{"provider": "up", "model": "slow"}]},
    {"name": "flaky", "served_entities": [{"provider": "up", "model": "flaky"}]},
]


@pytest.fixture
async def script() -> Script:
    return Script()


@pytest.fixture
async def gw(make_gateway, aiohttp_server, script) -> Gateway:  # type: ignore[no-untyped-def]
    upstream = await aiohttp_server(scripted_app(script))
    base = str(upstream.make_url("")).rstrip("/")
    return await make_gateway({"mock": {"kind": "mock"},
                               "up": {"kind": "openai_compatible", "base_url": base + "/v1"}}, ENDPOINTS)


async def batch(gw: Gateway, capsys, *args: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    """``gateway batch`` against ``gw``: exit code, stdout, stderr."""
    return await run_cli(capsys, "batch", "--url", gw.url(), "--token", TOKEN, "--data-dir", gw.data_dir, *args)


def jsonl(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


async def test_rows_keep_their_order_when_later_rows_finish_first(gw, capsys, script):
    code, out, err = await batch(gw, capsys, "--format", "jsonl", "--concurrency", "20",
                                 "SELECT i, ai_query('ordered', i) AS r FROM range(1, 21) t(i)")
    assert code == 0, err
    assert jsonl(out) == [{"i": i, "r": f"row {i}"} for i in range(1, 21)]
    assert script.max_in_flight > 1  # they did run side by side, so finished out of order


async def test_concurrency_bound_is_respected(gw, capsys, script):
    code, out, err = await batch(gw, capsys, "--format", "jsonl", "--concurrency", "3",
                                 "SELECT ai_query('slow', 'row ' || i) AS r FROM range(12) t(i)")
    assert code == 0, err
    assert len(jsonl(out)) == 12
    assert script.max_in_flight == 3


async def test_duckdb_hands_the_function_whole_batches(gw):
    session = BatchSession(BatchOptions(client=ClientOptions(url=gw.url(), token=TOKEN, concurrency=16)))
    try:
        result = await asyncio.to_thread(session.run,
                                         "SELECT ai_query('mock-chat', 'n' || i) AS r FROM range(300) t(i)")
    finally:
        session.close()
    assert result.column("r").to_pylist() == [f"Echo: n{i}" for i in range(300)]
    assert session.functions[0].invocations == 1  # one vector of 300 rows, not 300 calls


async def test_429_is_retried_after_retry_after(gw, script):
    script.flaky_failures = 2
    waits: list[float] = []

    async def recording_sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    client = GatewayClient(ClientOptions(url=gw.url(), token=TOKEN, concurrency=1), sleep=recording_sleep)
    session = BatchSession(BatchOptions(client=ClientOptions(url=gw.url(), token=TOKEN)), client=client)
    try:
        result = await asyncio.to_thread(session.run, "SELECT ai_query('flaky', 'r' || i) AS r FROM range(3) t(i)")
    finally:
        session.close()
    assert result.column("r").to_pylist() == ["r0", "r1", "r2"]
    assert len(waits) == 2 and all(w >= 2 for w in waits)  # the gateway passed Retry-After: 2 on
    assert client.stats.retries == 2 and client.stats.calls == 3
    rows = await gw.usage_rows(at_least=5)
    tagged = [r for r in rows if json.loads(r["request_tags"]).get("batch_id") == session.batch_id
              and r["api_type"] == "mlflow/v1/chat/completions"]
    assert sorted(r["status_code"] for r in tagged) == [200, 200, 200, 429, 429]


async def test_a_failed_row_fails_the_statement_naming_the_row(gw, capsys):
    code, out, err = await batch(gw, capsys, "SELECT ai_query('verbatim', p, returnType => 'INT') AS n "
                                             "FROM (VALUES ('1'), ('2'), ('three'), ('4')) v(p)")
    assert code == 1 and out == ""
    assert "error: ai_query #1 ('verbatim') failed on row 3" in err
    assert "the response is not JSON that fits INTEGER: 'three'" in err
    code, out, err = await batch(gw, capsys, "SELECT ai_query('mock-broken', 'x')")
    assert code == 1
    assert "failed on row 1" in err and "HTTP 400" in err


async def test_fail_on_error_false_gives_result_and_error_message(gw, capsys):
    code, out, err = await batch(gw, capsys, "--format", "jsonl",
                                 "SELECT p, ai_query('verbatim', p, 'INT', false) AS a, "
                                 "ai_query('mock-broken', p, failOnError => false).errorMessage AS b "
                                 "FROM (VALUES ('1'), ('three'), (NULL)) v(p)")
    assert code == 0, err
    rows = jsonl(out)
    assert rows[0]["a"] == {"result": 1, "errorMessage": None}
    assert rows[1]["a"]["result"] is None and "not JSON that fits INTEGER" in rows[1]["a"]["errorMessage"]
    assert rows[2] == {"p": None, "a": None, "b": None}  # a NULL request makes no call
    assert "HTTP 400" in rows[0]["b"]
    assert "rows failed" in err


async def test_embeddings_endpoint_returns_float_arrays(gw, capsys):
    code, out, err = await batch(gw, capsys, "--format", "jsonl",
                                 "SELECT ai_query('mock-embeddings', 'hello') AS e, "
                                 "typeof(ai_query('mock-embeddings', 'hello')) AS t")
    assert code == 0, err
    row = jsonl(out)[0]
    assert row["t"] == "FLOAT[]" and len(row["e"]) == 8 and all(isinstance(x, float) for x in row["e"])


async def test_usage_rows_carry_the_batch_tags(gw, capsys):
    code, out, err = await batch(gw, capsys, "--tag", "project=nightly", "--format", "csv",
                                 "SELECT ai_query('mock-chat', 'q' || i) AS r FROM range(4) t(i)")
    assert code == 0, err
    batch_id = err.rsplit("batch_id=", 1)[1].split()[0]
    rows = await gw.usage_rows(at_least=5)
    tags = [json.loads(r["request_tags"]) for r in rows]
    lookup = [t for t in tags if "batch_row" not in t]  # the endpoint lookup, tagged too
    assert lookup == [{"project": "nightly", "batch_id": batch_id}]
    tags = [t for t in tags if "batch_row" in t]
    assert sorted(t["batch_row"] for t in tags) == ["1", "2", "3", "4"]
    assert {(t["batch_id"], t["batch_call"], t["project"]) for t in tags} == {(batch_id, "1", "nightly")}
    # ... and the batch's usage can be read back from SQL, joined by tag.
    code, out, err = await batch(gw, capsys, "--format", "jsonl",
                                 f"SELECT count(*) AS n, sum(total_tokens) > 0 AS tokens FROM usage "
                                 f"WHERE request_tags->>'batch_id' = '{batch_id}' "
                                 f"AND request_tags->>'batch_row' IS NOT NULL")
    assert code == 0, err
    assert jsonl(out) == [{"n": 4, "tokens": True}]


async def test_response_format_and_return_type_give_typed_results(gw, capsys, script):
    paper = '{"title": "Attention", "year": 2017}'
    schema = json.dumps({"type": "json_schema", "json_schema": {"name": "paper", "schema": {
        "type": "object", "properties": {"title": {"type": "string"}, "year": {"type": "integer"}}}}})
    code, out, err = await batch(
        gw, capsys, "--format", "jsonl",
        f"SELECT ai_query('verbatim', '{paper}', responseFormat => '{schema}').year AS from_schema, "
        f"ai_query('verbatim', '{paper}', responseFormat => 'STRUCT<paper: STRUCT<title: STRING, year: INT>>')"
        f".title AS from_ddl, "
        f"ai_query('verbatim', '{paper}', returnType => 'STRUCT<title: STRING, year: BIGINT>') AS spark_type, "
        f"ai_query('verbatim', '[1, 2]', responseFormat => '{{\"type\": \"json_object\"}}')->>'$[1]' AS json")
    assert code == 0, err
    assert jsonl(out) == [{"from_schema": 2017, "from_ddl": "Attention",
                           "spark_type": {"title": "Attention", "year": 2017}, "json": "2"}]
    formats = [b.get("response_format") for b in script.bodies]
    assert json.loads(schema) in formats
    ddl = next(f for f in formats if f and f["type"] == "json_schema" and f["json_schema"]["name"] == "paper"
               and f["json_schema"].get("strict"))
    assert ddl["json_schema"]["schema"]["required"] == ["title", "year"]
    assert {"type": "json_object"} in formats


async def test_model_parameters_reach_the_provider(gw, capsys, script):
    code, out, err = await batch(
        gw, capsys, "SELECT ai_query('verbatim', 'x', modelParameters => named_struct('max_tokens', 7, "
                    "'temperature', 0.5)) AS a, ai_query('verbatim', 'y', modelParameters => {'top_p': 0.9}) AS b")
    assert code == 0, err
    bodies = {b["messages"][0]["content"]: b for b in script.bodies}
    assert bodies["x"]["max_tokens"] == 7 and bodies["x"]["temperature"] == 0.5
    assert bodies["y"]["top_p"] == 0.9


async def test_result_goes_to_parquet_csv_and_jsonl_files(gw, capsys, tmp_path):
    source = tmp_path / "reviews.csv"
    source.write_text("id,text\n1,great\n2,awful\n")
    for suffix in ("parquet", "csv", "jsonl"):
        target = tmp_path / f"out.{suffix}"
        code, out, err = await batch(gw, capsys, "--table", f"reviews={source}", "--output", str(target),
                                     "SELECT id, ai_query('mock-chat', text) AS reply FROM reviews ORDER BY id")
        assert code == 0, err
        assert f"wrote 2 rows to {target}" in err
        rows = duckdb.sql(f"SELECT * FROM '{target}' ORDER BY id").fetchall()
        assert rows == [(1, "Echo: great"), (2, "Echo: awful")]


async def test_statements_run_in_order_and_the_last_one_is_the_result(gw, capsys, tmp_path):
    code, out, err = await batch(gw, capsys, "--format", "csv",
                                 "CREATE TABLE r AS SELECT ai_query('mock-chat', 'a') AS x; "
                                 "INSERT INTO r SELECT ai_query('mock-chat', 'b'); SELECT x FROM r ORDER BY x")
    assert code == 0, err
    assert out == "x\nEcho: a\nEcho: b\n"


async def test_mistakes_get_a_clear_error_and_exit_code(gw, capsys):
    cases = {
        "SELEC 1": "Parser Error: syntax error",
        "SELECT ai_query('no-such-endpoint', 'x')": "ai_query endpoint 'no-such-endpoint': HTTP 404",
        "SELECT ai_query('mock-chat', 'x', tone => 'warm')": "ai_query has no parameter 'tone'",
        "SELECT ai_query('mock-chat', 'x', returnType => 'WIBBLE')": "unknown type 'WIBBLE'",
        "SELECT ai_query(p, p) FROM (VALUES ('a')) v(p)": "ai_query's endpoint must be a constant",
        "SELECT * FROM 'https://example.com/x.csv'": "httpfs",
    }
    for sql, message in cases.items():
        code, out, err = await batch(gw, capsys, sql)
        assert code == 1 and message in err, (sql, err)
    code, out, err = await batch(gw, capsys)
    assert code == 2 and "give the query as an argument or with --file" in err


async def test_a_wrong_token_is_refused_before_any_row_runs(gw, capsys):
    code = await asyncio.to_thread(main, ["batch", "--url", gw.url(), "--token", "nope", "--data-dir", gw.data_dir,
                                          "SELECT ai_query('mock-chat', 'x' || i) FROM range(50) t(i)"])
    err = capsys.readouterr().err
    assert code == 1 and "HTTP 401" in err
    assert len(await gw.usage_rows()) == 1  # the endpoint lookup, no row call


def test_without_the_extra_the_error_names_it(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_duckdb(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "duckdb":
            raise ImportError("No module named 'duckdb'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_duckdb)
    assert main(["batch", "SELECT 1"]) == 2
    assert "pip install 'gateway[batch]'" in capsys.readouterr().err


def test_sql_without_ai_query_needs_no_gateway(tmp_path):
    (tmp_path / "t.json").write_text('{"a": 1}\n{"a": 2}\n')
    session = BatchSession(BatchOptions())
    try:
        assert session.run(f"SELECT sum(a) AS s FROM '{tmp_path}/t.json'").to_pylist() == [{"s": 3}]
        with pytest.raises(BatchError, match="ai_query needs a running gateway"):
            session.run("SELECT ai_query('mock-chat', 'x')")
    finally:
        session.close()


def test_the_batch_command_runs_as_a_program(tmp_path):
    import subprocess
    import sys

    (tmp_path / "q.sql").write_text("CREATE TABLE t AS SELECT 42 AS answer;\nSELECT answer FROM t")
    done = subprocess.run([sys.executable, "-m", "gateway", "batch", "--data-dir", str(tmp_path), "--format", "csv",
                           "--file", str(tmp_path / "q.sql")], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "answer\n42\n", done.stderr
