"""Run-time tokens: created with `gateway tokens create` (shown once, stored hashed), working
on every worker, expiring and revoked without a restart."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import aiohttp
import pytest

from gateway.cli import main
from gateway.config import parse_config
from gateway.state import STORE_REFRESHER
from gateway.tokens_table import TokensTable

ENDPOINTS = [{"name": "ep", "served_entities": [{"provider": "mock", "model": "echo"}]}]


async def status(gw, token: str) -> int:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url("/v1/chat/completions"), headers={"Authorization": f"Bearer {token}"},
                          json={"model": "ep", "messages": [{"role": "user", "content": "x"}]}) as r:
            return r.status


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))  # the CLI runs its own event loop


async def create_with_cli(capsys, data_dir: str, *extra: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    assert await cli("tokens", "create", "--principal", "carol", "--group", "ml", "--data-dir", data_dir, *extra) == 0
    out = capsys.readouterr().out.splitlines()
    token_id = out[0].split()[1]
    return token_id, out[1]


async def test_created_token_works_on_every_worker_and_revocation_reaches_them(make_gateway, tmp_path, capsys):
    token_id, secret = await create_with_cli(capsys, str(tmp_path))
    quiet = {"store_refresh_s": 3600}  # reloads happen when the test says
    first = await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS, server=quiet)
    second = await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS, server=quiet)  # same store: another worker
    assert await status(first, secret) == 200 and await status(second, secret) == 200
    # Both workers write to the one table; the second's row may already be there too.
    rows = await first.usage_rows(1)
    assert rows and {r["requester"] for r in rows} == {"carol"}
    # Stored hashed: the secret is nowhere in the database file.
    assert secret.encode() not in (tmp_path / "usage.db").read_bytes()
    assert await cli("tokens", "revoke", token_id, "--data-dir", str(tmp_path)) == 0
    for gw in (first, second):  # what each worker's periodic refresh does
        await gw.app[STORE_REFRESHER].load()
        assert await status(gw, secret) == 401
    assert await cli("tokens", "revoke", token_id, "--data-dir", str(tmp_path)) == 1
    capsys.readouterr()
    assert await cli("tokens", "list", "--data-dir", str(tmp_path)) == 0
    listing = capsys.readouterr().out
    assert token_id in listing and "revoked" in listing and secret not in listing


async def test_expired_token_stops_at_once(make_gateway, tmp_path):
    table = TokensTable(parse_config({"server": {"data_dir": str(tmp_path)}}, env={}))
    secret, row = await table.create("dave", expires_in=3600)
    await table.close()
    gw = await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS)
    assert await status(gw, secret) == 200
    conn = sqlite3.connect(tmp_path / "usage.db")
    with conn:
        conn.execute("UPDATE tokens SET expires_at = ? WHERE id = ?", (time.time() - 1, row.id))
    conn.close()
    await gw.app[STORE_REFRESHER].load()
    assert await status(gw, secret) == 401


async def test_tokens_in_postgres(make_gateway, tmp_path, postgres_dsn):  # type: ignore[no-untyped-def]
    import asyncpg

    conn = await asyncpg.connect(postgres_dsn)
    await conn.execute("DROP TABLE IF EXISTS tokens")
    await conn.close()
    config = parse_config({"storage": {"kind": "postgres", "dsn": postgres_dsn}}, env={})
    table = TokensTable(config)
    secret, row = await table.create("erin", ("ops",), admin=True)
    gw = await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS, storage={"kind": "postgres", "dsn": postgres_dsn})
    assert await status(gw, secret) == 200
    assert await table.revoke(row.id)
    await table.close()
    await gw.app[STORE_REFRESHER].load()
    assert await status(gw, secret) == 401


def test_bad_expiry_is_refused(tmp_path, capsys):
    assert main(["tokens", "create", "--principal", "x", "--expires-in", "soon", "--data-dir", str(tmp_path)]) == 2
    assert "30m" in capsys.readouterr().err


def test_a_zero_lifetime_is_refused(tmp_path, capsys):
    assert main(["tokens", "create", "--principal", "x", "--expires-in", "0m", "--data-dir", str(tmp_path)]) == 2
    assert "lifetime must be positive" in capsys.readouterr().err


async def test_a_service_principal_token_from_the_cli(make_gateway, tmp_path, capsys):
    _, secret = await create_with_cli(capsys, str(tmp_path), "--service-principal")
    gw = await make_gateway({"mock": {"kind": "mock"}}, [{
        "name": "ep", "served_entities": [{"provider": "mock", "model": "echo"}],
        "permissions": [{"service_principal": "carol"}]}])
    assert await status(gw, secret) == 200
    assert await cli("tokens", "list", "--data-dir", str(tmp_path)) == 0
    assert "service_principal" in capsys.readouterr().out


OLD_SCHEMA = ("CREATE TABLE tokens (id TEXT PRIMARY KEY, principal TEXT NOT NULL, groups TEXT NOT NULL, "
              "admin {bool} NOT NULL, sha256 TEXT NOT NULL UNIQUE, created_at {real} NOT NULL, "
              "expires_at {real}, revoked_at {real}, description TEXT NOT NULL DEFAULT '')")
OLD_ROW = "INSERT INTO tokens VALUES ('old1', 'frank', '[]', {false}, 'abc', 1.0, NULL, NULL, '')"


async def assert_migrated(table: TokensTable) -> None:
    """A store written before principals had a kind: its tokens are users', new ones take a kind."""
    await table.create("gina", kind="service_principal")
    assert [(t.principal, t.kind) for t in await table.list()] == [("frank", "user"), ("gina", "service_principal")]
    await table.close()


async def test_a_sqlite_tokens_table_from_before_principal_kinds_is_migrated(tmp_path):
    conn = sqlite3.connect(tmp_path / "usage.db")
    with conn:
        conn.execute(OLD_SCHEMA.format(bool="INTEGER", real="REAL"))
        conn.execute(OLD_ROW.format(false="0"))
    conn.close()
    await assert_migrated(TokensTable(parse_config({"server": {"data_dir": str(tmp_path)}}, env={})))


async def test_a_postgres_tokens_table_from_before_principal_kinds_is_migrated(postgres_dsn):  # type: ignore[no-untyped-def]
    import asyncpg

    pg = await asyncpg.connect(postgres_dsn)
    await pg.execute("DROP TABLE IF EXISTS tokens")
    await pg.execute(OLD_SCHEMA.format(bool="BOOLEAN", real="DOUBLE PRECISION"))
    await pg.execute(OLD_ROW.format(false="false"))
    await pg.close()
    await assert_migrated(TokensTable(parse_config({"storage": {"kind": "postgres", "dsn": postgres_dsn}}, env={})))
