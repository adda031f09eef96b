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
    (row,) = [r for r in await first.usage_rows(1)]
    assert row["requester"] == "carol"
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
    secret, row = await TokensTable(config).create("erin", ("ops",), admin=True)
    gw = await make_gateway({"mock": {"kind": "mock"}}, ENDPOINTS, storage={"kind": "postgres", "dsn": postgres_dsn})
    assert await status(gw, secret) == 200
    assert await TokensTable(config).revoke(row.id)
    await gw.app[STORE_REFRESHER].load()
    assert await status(gw, secret) == 401


def test_bad_expiry_is_refused(tmp_path, capsys):
    assert main(["tokens", "create", "--principal", "x", "--expires-in", "soon", "--data-dir", str(tmp_path)]) == 2
    assert "30m" in capsys.readouterr().err
