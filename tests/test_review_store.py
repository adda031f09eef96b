"""The gateway's own tables in the store: one connection for a table's life, and endpoints
that remember whether the configuration file or the admin API made them, on both stores."""

from __future__ import annotations

import sqlite3

import pytest

from gateway.config import parse_config
from gateway.store import Store
from tests.test_admin_api import PROVIDERS, SEED, TOKENS, body, call, chat

SCHEMA = {"sqlite": "CREATE TABLE IF NOT EXISTS notes (n INTEGER)",
          "postgres": "CREATE TABLE IF NOT EXISTS notes (n INTEGER)"}


async def test_a_sqlite_store_keeps_one_connection_until_closed(tmp_path, monkeypatch):
    opened = []
    connect = sqlite3.connect

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(args)
        return connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", counting)
    store = Store(parse_config({"server": {"data_dir": str(tmp_path)}}, env={}), SCHEMA)
    for n in range(5):
        await store.run("INSERT INTO notes VALUES ($1)", (n,))
    assert await store.run("SELECT count(*) FROM notes") == [(5,)]
    assert len(opened) == 1
    await store.close()
    assert await store.run("SELECT count(*) FROM notes") == [(5,)]  # a statement after close opens anew
    assert len(opened) == 2
    await store.close()


async def test_a_postgres_store_keeps_one_connection_until_closed(postgres_dsn):
    store = Store(parse_config({"storage": {"kind": "postgres", "dsn": postgres_dsn}}, env={}), SCHEMA)
    backends = {(await store.run("SELECT pg_backend_pid()"))[0][0] for _ in range(5)}
    assert len(backends) == 1
    await store.close()
    assert (await store.run("SELECT pg_backend_pid()"))[0][0] not in backends
    await store.close()


async def test_postgres_endpoints_are_migrated_and_those_dropped_from_the_file_leave_at_restart(
        make_gateway, postgres_dsn):
    import asyncpg

    pg = await asyncpg.connect(postgres_dsn)
    await pg.execute("DROP TABLE IF EXISTS endpoints")
    await pg.execute("CREATE TABLE endpoints (name TEXT PRIMARY KEY, config TEXT NOT NULL, "
                     "updated_at DOUBLE PRECISION NOT NULL)")  # as a version before the source column made it
    await pg.execute("INSERT INTO endpoints VALUES ('old', $1, 1.0)",
                     '{"name": "old", "served_entities": [{"provider": "mock", "model": "echo"}]}')
    storage = {"kind": "postgres", "dsn": postgres_dsn}
    retired = {"name": "retired", "served_entities": [{"provider": "mock", "model": "echo"}]}
    try:
        first = await make_gateway(PROVIDERS, [*SEED, retired], tokens=TOKENS, storage=storage)
        assert (await call(first, "POST", "/api/2.0/serving-endpoints",
                           json={"name": "made-by-api", **body(("mock", "echo", None))}))[0] == 200
        assert (await chat(first, "retired"))[0] == 200 and (await chat(first, "old"))[0] == 200
        restarted = await make_gateway(PROVIDERS, SEED, tokens=TOKENS, storage=storage)
        assert (await chat(restarted, "retired"))[0] == 404
        for name in ("seeded", "made-by-api", "old"):  # a row from before sources is nobody's to retire
            assert (await chat(restarted, name))[0] == 200, name
        rows = dict(await pg.fetch("SELECT name, source FROM endpoints"))
        assert rows == {"seeded": "config", "made-by-api": "api", "old": "api"}
    finally:
        await pg.execute("DROP TABLE IF EXISTS endpoints")
        await pg.close()


@pytest.mark.parametrize("edit", ["update", "delete"])
async def test_a_seeded_endpoint_changed_through_the_admin_api_follows_the_file_again_at_restart(make_gateway, edit):
    first = await make_gateway(PROVIDERS, SEED, tokens=TOKENS)
    if edit == "update":
        assert (await call(first, "PUT", "/api/2.0/serving-endpoints/seeded", json=body(("mock", "error-500", None))))[0] == 200
        assert (await chat(first, "seeded"))[0] == 500
    else:
        assert (await call(first, "DELETE", "/api/2.0/serving-endpoints/seeded"))[0] == 200
        assert (await chat(first, "seeded"))[0] == 404
    restarted = await make_gateway(PROVIDERS, SEED, tokens=TOKENS)
    assert (await chat(restarted, "seeded"))[0] == 200  # the file names it: the file's version is served
