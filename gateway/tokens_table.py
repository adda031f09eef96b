"""Tokens created at run time (``gateway tokens create``), kept hashed in the store: the
SQLite file or the PostgreSQL database the usage table lives in.

A token is shown once, at creation; the table keeps its SHA-256, its principal, groups,
admin flag, expiry and revocation time. Running gateways reload the active ones every few
seconds, so a revocation reaches every worker within ``server.store_refresh_s``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid

import msgspec

from gateway.config import GatewayConfig, PrincipalKind
from gateway.endpoints_table import EndpointRegistry, EndpointsTable
from gateway.server.auth import Principal, TokenStore, hash_token
from gateway.store import Store


class StoredToken(msgspec.Struct, frozen=True):
    """A token's row, without the secret. Times are Unix seconds."""

    id: str
    principal: str
    groups: tuple[str, ...]
    admin: bool
    sha256: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    description: str = ""
    kind: PrincipalKind = "user"

    def active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


log = logging.getLogger("gateway.tokens")
_COLUMNS = "id, principal, groups, admin, sha256, created_at, expires_at, revoked_at, description, kind"
_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, principal TEXT NOT NULL, groups TEXT NOT NULL, admin INTEGER NOT NULL,
    sha256 TEXT NOT NULL UNIQUE, created_at REAL NOT NULL, expires_at REAL, revoked_at REAL,
    description TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL DEFAULT 'user'
)"""
_POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, principal TEXT NOT NULL, groups TEXT NOT NULL, admin BOOLEAN NOT NULL,
    sha256 TEXT NOT NULL UNIQUE, created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION, description TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL DEFAULT 'user'
)"""

_groups = msgspec.json.Encoder()
_groups_decode = msgspec.json.Decoder(tuple[str, ...])


def _token(row: tuple) -> StoredToken:  # type: ignore[type-arg]
    tid, principal, groups, admin, digest, created, expires, revoked, description, kind = row
    return StoredToken(tid, principal, _groups_decode.decode(groups), bool(admin), digest, created, expires,
                       revoked, description, kind)


class TokensTable:
    """The ``tokens`` table of the configured store."""

    def __init__(self, config: GatewayConfig) -> None:
        self._store = Store(config, {"sqlite": _SQLITE_SCHEMA, "postgres": _POSTGRES_SCHEMA})
        self._migrated = False

    async def _run(self, sql: str, args: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
        if not self._migrated:
            await self._migrate()
        return await self._store.run(sql, args)

    async def _migrate(self) -> None:
        # Tables made before principals had a kind: their tokens are users'.
        await self._store.add_column("tokens", "kind", "TEXT NOT NULL DEFAULT 'user'")
        self._migrated = True

    # -- operations

    async def create(self, principal: str, groups: tuple[str, ...] = (), *, kind: PrincipalKind = "user",
                     admin: bool = False, expires_in: float | None = None,
                     description: str = "") -> tuple[str, StoredToken]:
        """A new token: its secret (shown once) and its row. ``expires_in`` (seconds) must be positive."""
        if expires_in is not None and expires_in <= 0:
            raise ValueError("a token's lifetime must be positive; leave it out for a token that never expires")
        secret = "gw-" + secrets.token_urlsafe(32)
        now = time.time()
        row = StoredToken(uuid.uuid4().hex[:12], principal, groups, admin, hash_token(secret), now,
                          now + expires_in if expires_in else None, None, description, kind)
        await self._run(
            f"INSERT INTO tokens ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            (row.id, row.principal, _groups.encode(groups).decode(), admin, row.sha256, row.created_at,
             row.expires_at, None, description, kind),
        )
        return secret, row

    async def list(self) -> list[StoredToken]:
        return [_token(r) for r in await self._run(f"SELECT {_COLUMNS} FROM tokens ORDER BY created_at")]

    async def close(self) -> None:
        """Release the store connection."""
        await self._store.close()

    async def revoke(self, token_id: str) -> bool:
        """Revoke a token by id; False if there is no such unrevoked token."""
        rows = await self._run("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING id",
                               (time.time(), token_id))
        return bool(rows)


class StoreRefresher:
    """Keeps a worker's tokens and endpoints in step with the store's tables."""

    def __init__(self, tokens: TokensTable, token_store: TokenStore, endpoints: EndpointsTable,
                 registry: EndpointRegistry) -> None:
        self._tokens = tokens
        self._token_store = token_store
        self._endpoints = endpoints
        self._registry = registry
        self._seeded = False

    async def load(self) -> None:
        """Replace the run-time tokens with the table's active ones, and the endpoints with the stored ones.

        The first successful call seeds the endpoints table from the configuration first;
        until then (the store unreachable at start) the worker serves the file's endpoints.
        """
        if not self._seeded:
            await self._endpoints.seed()
            self._seeded = True
        now = time.time()
        rows = await self._tokens.list()
        self._token_store.replace_stored({
            t.sha256: (Principal(t.principal, t.groups, t.admin, t.kind), t.expires_at) for t in rows if t.active(now)
        })
        self._registry.replace(await self._endpoints.load())

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.load()
            except Exception as exc:  # noqa: BLE001 - keep the last known state through an outage
                log.warning("could not reload tokens and endpoints (%s); keeping the last known set", type(exc).__name__)

    async def start(self) -> None:
        """The first load, before serving; a store that cannot be reached then is logged, not fatal."""
        try:
            await self.load()
        except Exception as exc:  # noqa: BLE001 - serve the configuration file until the store answers
            log.error("store unreachable at start (%s): serving the configuration's endpoints and tokens; "
                      "run-time tokens and admin changes arrive once it answers", str(exc) or type(exc).__name__)
