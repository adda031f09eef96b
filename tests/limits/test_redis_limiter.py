"""What only the Redis limiter does: share buckets across processes, keep its keys to
its namespace, reload scripts, and fail open or closed, never hanging, when Redis is away."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis

from gateway.limits import NO_RESERVATION, LimiterConfig, LimiterUnavailable, MemoryLimiter, build_limiter
from gateway.limits.redis_limiter import RECHECK_S, RedisLimiter
from gateway.limits.redis_scripts import Script
from gateway.limits.rules import LimitChecks
from tests.limits import (
    REDIS_URL, FakeClock, checks_for, delete_namespace, new_prefix, passes, require_redis, rules,
)

ROOT = Path(__file__).resolve().parents[2]
TPM_1000 = rules({"key": "user", "principal": "alice", "tpm": 1000})
QPM_5 = rules({"key": "user", "principal": "alice", "qpm": 5})


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    await require_redis()
    name = new_prefix()
    try:
        yield name
    finally:
        await delete_namespace(name)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- sharing ---------------------------------------------------------------------------------------

_WORKER = """
import asyncio, sys
from gateway.errors import RateLimited
from gateway.limits import LimitRule, resolve_checks
from gateway.limits.redis_limiter import RedisLimiter

async def main(url, prefix, n):
    limiter = RedisLimiter(url, prefix=prefix, timeout=5, clock=lambda: 1_700_000_000.0)
    checks = resolve_checks([LimitRule(key="endpoint", qpm=7)], "team-chat", "alice", ())
    async def one():
        try:
            await limiter.acquire(checks)
        except RateLimited:
            return 0
        return 1
    print(sum(await asyncio.gather(*(one() for _ in range(n)))))
    await limiter.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_two_processes_share_one_bucket(prefix: str) -> None:
    workers = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", _WORKER, REDIS_URL, prefix, "20",
                                             cwd=ROOT, stdout=asyncio.subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = await asyncio.gather(*(w.communicate() for w in workers))
    assert [w.returncode for w in workers] == [0, 0]
    assert sum(int(out) for out, _ in outputs) == 7


async def test_keys_stay_in_the_namespace_and_expire_once_refilled(prefix: str) -> None:
    limiter = RedisLimiter(REDIS_URL, prefix=prefix, timeout=5, clock=FakeClock())
    both = rules({"key": "user", "principal": "alice", "qpm": 5, "tpm": 1000})
    await limiter.acquire(checks_for(both, "alice"), 100)
    await limiter.close()
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        keys = sorted([k async for k in client.scan_iter(match=f"{prefix}:*")])
        assert keys == [f"{prefix}:q:team-chat:user:alice", f"{prefix}:t:team-chat:user:alice"]
        # 1 of 5 requests is back in 12 s, 100 of 1000 tokens in 6 s; plus a second's margin.
        assert 12_000 < await client.pttl(keys[0]) <= 13_000
        assert 6_000 < await client.pttl(keys[1]) <= 7_000
    finally:
        await client.aclose()


async def test_a_script_the_server_lacks_is_loaded_and_run(prefix: str) -> None:
    marker = uuid.uuid4().hex
    script = Script(f"return '{marker}'")  # a new text, so certainly not in the server's cache
    client = aioredis.from_url(REDIS_URL)
    try:
        assert await client.script_exists(script.sha) == [False]
        assert await script.run(client, [], []) == marker.encode()
        assert await client.script_exists(script.sha) == [True]
    finally:
        await client.aclose()


# -- Redis unreachable -------------------------------------------------------------------------

async def test_unreachable_redis_fails_open_with_one_warning_and_a_count_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[str] = []
    limiter = RedisLimiter(f"redis://127.0.0.1:{closed_port()}/0", timeout=0.2, on_backend_error=outcomes.append)
    caplog.set_level(logging.WARNING, logger="gateway.limits")
    async with asyncio.timeout(2):
        for _ in range(3):
            assert await limiter.acquire(checks_for(QPM_5, "alice")) is NO_RESERVATION
    assert outcomes == ["allowed"] * 3
    [warning] = [r.getMessage() for r in caplog.records if r.name == "gateway.limits"]
    assert warning.startswith("rate limits: Redis unreachable (") and warning.endswith("; failing open")
    await limiter.close()


async def test_unreachable_redis_fails_closed_with_a_429_when_configured() -> None:
    outcomes: list[str] = []
    limiter = build_limiter(
        msgspec.convert({"backend": "redis", "url": f"redis://127.0.0.1:{closed_port()}/0", "fail_mode": "closed",
                         "timeout_ms": 200}, LimiterConfig),
        on_backend_error=outcomes.append,
    )
    async with asyncio.timeout(2):
        with pytest.raises(LimiterUnavailable) as info:
            await limiter.acquire(checks_for(QPM_5, "alice"))
    assert (info.value.status, info.value.code, info.value.retry_after) == (429, "rate_limited", RECHECK_S)
    assert outcomes == ["denied"]
    await limiter.close()


async def test_a_redis_that_never_answers_costs_one_timeout_then_is_skipped() -> None:
    connections = 0

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read()  # accept the command, never reply
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    limiter = RedisLimiter(f"redis://127.0.0.1:{port}/0", timeout=0.1, fail_open=False)
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        with pytest.raises(LimiterUnavailable):
            await limiter.acquire(checks_for(QPM_5, "alice"))
        assert loop.time() - started < 1.0
        with pytest.raises(LimiterUnavailable):
            await limiter.acquire(checks_for(QPM_5, "alice"))
        assert connections == 1  # the second request did not wait on Redis again
    finally:
        await limiter.close()
        server.close()


class Proxy:
    """A TCP relay to the real Redis that a test can take down and bring back on one port."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 6379)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_a_settlement_made_while_redis_is_down_is_applied_when_it_returns(prefix: str) -> None:
    clock = FakeClock()
    proxy = Proxy()
    await proxy.start()
    limiter = RedisLimiter(f"redis://127.0.0.1:{proxy.port}/0", prefix=prefix, timeout=1, clock=clock)
    direct = RedisLimiter(REDIS_URL, prefix=prefix, timeout=5, clock=clock)
    checks: LimitChecks = checks_for(TPM_1000, "alice")
    try:
        reservation = await limiter.acquire(checks, 100)
        await proxy.stop()
        reservation.settle(30)
        assert not await limiter.flush()
        await proxy.start()
        assert await limiter.flush()
        assert await passes(direct, checks, 970)
        assert not await passes(direct, checks, 1)
    finally:
        await limiter.close()
        await direct.close()
        await proxy.stop()


async def test_build_limiter_picks_the_configured_backend() -> None:
    memory = build_limiter(LimiterConfig())
    assert isinstance(memory, MemoryLimiter)
    shared = build_limiter(LimiterConfig(backend="redis", url=REDIS_URL))
    assert isinstance(shared, RedisLimiter)
    await shared.close()
