"""Caller tokens: where they are read from, and who they belong to.

A token may arrive as ``Authorization: Bearer T``, ``Authorization: Basic
base64("token:T")``, ``x-api-key: T``, ``x-goog-api-key: T`` or ``?key=T``. Authorization
wins when several are present, because SDKs send a placeholder key beside a real bearer
header. Tokens are kept only as SHA-256 hashes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Iterable, Mapping

import msgspec

from gateway.config import PrincipalKind, TokenConfig

#: Request headers that carry the caller's gateway credentials; never forwarded upstream.
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")


class Principal(msgspec.Struct, frozen=True):
    """Who a token belongs to: a user or a service principal, its groups, and whether it is an admin."""

    name: str
    groups: tuple[str, ...] = ()
    admin: bool = False
    kind: PrincipalKind = "user"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def extract_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The caller's token from the first place that has one, in the documented order."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "bearer" and value:
            return value
        if scheme == "basic" and value:
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return password or user or None
    for name in ("x-api-key", "x-goog-api-key"):
        value = headers.get(name)
        if value:
            return value.strip()
    return query.get("key") or None


class TokenStore:
    """Token hash -> principal, held in memory: no database round trip per request.

    Two sets: the configuration's tokens (fixed), and the tokens created at run time, which
    a background task replaces wholesale every few seconds (``replace_stored``); those carry
    an expiry checked on every lookup, so an expired token stops working at once.
    """

    def __init__(self, tokens: Iterable[TokenConfig] = ()) -> None:
        self._by_hash: dict[str, Principal] = {}
        self._stored: dict[str, tuple[Principal, float | None]] = {}
        for t in tokens:
            digest = (t.sha256 or hash_token(t.token or "")).lower()
            self._by_hash[digest] = Principal(t.principal, tuple(t.groups), t.admin, t.kind)

    def add(self, token: str, principal: Principal) -> None:
        self._by_hash[hash_token(token)] = principal

    def replace_stored(self, tokens: dict[str, tuple[Principal, float | None]]) -> None:
        """Swap in the run-time tokens: SHA-256 -> (principal, expiry as Unix seconds or None)."""
        self._stored = tokens

    def __len__(self) -> int:
        return len(self._by_hash) + len(self._stored)

    def lookup(self, token: str) -> Principal | None:
        # Looking up the SHA-256 of the token: any timing difference is about the hash, which
        # an attacker cannot steer towards a stored one, so this is as safe as compare_digest.
        digest = hash_token(token)
        principal = self._by_hash.get(digest)
        if principal is not None:
            return principal
        stored = self._stored.get(digest)
        if stored is None or (stored[1] is not None and time.time() >= stored[1]):
            return None
        return stored[0]
