"""Helpers shared by the rate-limit tests: a clock the test moves, and real Redis."""

from __future__ import annotations

import os
import uuid

import msgspec
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.errors import RateLimited
from gateway.limits import Limiter, LimitChecks, LimitRule, resolve_checks
from gateway.limits.rules import PrincipalKind

REDIS_URL = "redis://127.0.0.1:6379/0"
ALICE = "alice@example.com"


class FakeClock:
    """Seconds since the epoch, moving only when a test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def rules(*raw: dict[str, object]) -> list[LimitRule]:
    return msgspec.convert(list(raw), list[LimitRule])


def checks_for(rule_list: list[LimitRule], principal: str = ALICE, groups: tuple[str, ...] = (),
               endpoint: str = "team-chat", *, kind: PrincipalKind = "user",
               tags: dict[str, str] | None = None) -> LimitChecks:
    return resolve_checks(rule_list, endpoint, principal, groups, kind=kind, tags=tags or {})


async def passes(limiter: Limiter, checks: LimitChecks, tokens: int = 0) -> bool:
    """Whether one request with ``tokens`` estimated gets through."""
    try:
        await limiter.acquire(checks, tokens)
    except RateLimited:
        return False
    return True


def new_prefix() -> str:
    """A key namespace of one test's own, so tests sharing the server never collide."""
    return f"test:gateway-limits:{uuid.uuid4().hex}"


async def require_redis() -> None:
    """Skip when Redis is not reachable, except under CI=true, where that is a failure."""
    client = aioredis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        reason = f"Redis is not reachable at {REDIS_URL} ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires it")
        pytest.skip(f"{reason}; start one to run the Redis limiter tests")
    finally:
        await client.aclose()


async def delete_namespace(prefix: str) -> None:
    """Remove this test's keys, and only those."""
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
