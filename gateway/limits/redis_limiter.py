"""Token buckets in Redis, shared by every worker and replica.

``acquire`` costs one EVALSHA round trip, bounded by ``timeout``. ``settle`` never waits:
adjustments are summed per bucket and sent by a background task, and kept for the next
try while Redis is unreachable. When Redis does not answer, the limiter fails open or
closed as configured, logs once per outage, calls ``on_backend_error`` for every request
it decided without Redis, and skips Redis for ``RECHECK_S`` so an outage adds no latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("The Redis rate-limit backend needs the redis extra: pip install 'gateway[redis]'") from exc

from gateway.limits.budget import token_cost
from gateway.limits.errors import LimiterUnavailable, LimitExceeded
from gateway.limits.limiter import NO_RESERVATION, Adjustment, BackendErrorHook, Clock, Reservation
from gateway.limits.redis_scripts import ACQUIRE, SETTLE
from gateway.limits.rules import LimitChecks

log = logging.getLogger("gateway.limits")

#: Seconds to skip Redis after it failed, and the Retry-After of a fail-closed refusal.
RECHECK_S = 1.0

_UNREACHABLE = (RedisError, OSError, TimeoutError)


class RedisLimiter:
    """The Limiter for many processes: buckets live under ``prefix`` in one Redis."""

    def __init__(self, url: str, *, prefix: str = "gateway:rl", timeout: float = 0.25, fail_open: bool = True,
                 clock: Clock = time.time, on_backend_error: BackendErrorHook | None = None) -> None:
        # No client-side retries: a retry would exceed the timeout the request path relies on.
        self._redis = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                        retry=Retry(NoBackoff(), 0))
        self._prefix = prefix
        self._timeout = timeout
        self._fail_open = fail_open
        self._clock = clock
        self._on_backend_error = on_backend_error
        self._down_until = 0.0  # time.monotonic() before which Redis is not tried; 0 while healthy
        self._pending: dict[str, list[int]] = {}  # TPM key -> [capacity, period ms, tokens to give back]
        self._send_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def acquire(self, checks: LimitChecks, estimated_tokens: int = 0) -> Reservation:
        """See ``Limiter.acquire``: one EVALSHA for every check together."""
        if not checks.items:
            return NO_RESERVATION
        if time.monotonic() < self._down_until:
            return self._decide_without_redis()
        keys: list[str] = []
        args: list[int] = [self._now_ms()]
        costs: list[int] = []
        for c in checks.items:
            cost = token_cost(c, estimated_tokens)
            keys += (f"{self._prefix}:q:{c.bucket}", f"{self._prefix}:t:{c.bucket}")
            args += (int(c.alternative), c.qpm or 0, c.tpm or 0, cost, c.period_ms)
            costs.append(cost)
        try:
            async with asyncio.timeout(self._timeout):
                reply = await ACQUIRE.run(self._redis, keys, args)
        except _UNREACHABLE as exc:
            self._mark_down(exc)
            return self._decide_without_redis()
        self._mark_up()
        if reply[0] == 0:
            _, wait, index, kind = reply
            raise LimitExceeded(checks.endpoint, checks.items[index - 1], kind.decode(), wait)
        charged = reply[1]
        held = tuple(
            (keys[2 * i + 1], c.tpm, c.period_ms, costs[i])
            for i, c in enumerate(checks.items)
            if c.tpm is not None and (not c.alternative or i + 1 == charged)
        )
        return Reservation(self._adjust, held) if held else NO_RESERVATION

    def _decide_without_redis(self) -> Reservation:
        if self._on_backend_error is not None:
            self._on_backend_error("allowed" if self._fail_open else "denied")
        if self._fail_open:
            return NO_RESERVATION
        raise LimiterUnavailable(retry_after=RECHECK_S)

    def _mark_down(self, exc: BaseException) -> None:
        if not self._down_until:
            log.warning("rate limits: Redis unreachable (%s); failing %s",
                        str(exc) or type(exc).__name__, "open" if self._fail_open else "closed")
        self._down_until = time.monotonic() + RECHECK_S

    def _mark_up(self) -> None:
        if self._down_until:
            log.info("rate limits: Redis reachable again")
            self._down_until = 0.0

    def _adjust(self, changes: Sequence[Adjustment]) -> None:
        for key, capacity, period, delta in changes:
            entry = self._pending.setdefault(key, [capacity, period, 0])
            entry[0], entry[1] = capacity, period
            entry[2] += delta
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        self._wake.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not await self.flush():
                await asyncio.sleep(RECHECK_S)
                self._wake.set()

    async def flush(self) -> bool:
        """See ``Limiter.flush``: one script call for every pending bucket."""
        async with self._send_lock:
            batch = {k: v for k, v in self._pending.items() if v[2]}
            self._pending = {}
            if not batch:
                return True
            args = [self._now_ms()]
            for capacity, period, delta in batch.values():
                args += (capacity, period, delta)
            sent = False
            try:
                async with asyncio.timeout(self._timeout):
                    await SETTLE.run(self._redis, list(batch), args)
                sent = True
                self._mark_up()
            except _UNREACHABLE as exc:
                self._mark_down(exc)
            finally:
                # Keep the batch for the next try: a lost adjustment would skew the bucket for good.
                # (A timeout after Redis ran the script applies it twice: rarer, and bounded by one batch.)
                if not sent:
                    for key, (capacity, period, delta) in batch.items():
                        entry = self._pending.setdefault(key, [capacity, period, 0])
                        entry[2] += delta
            return sent

    async def close(self) -> None:
        """See ``Limiter.close``; logs how many adjustments Redis never received."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if not await self.flush():
            log.error("rate limits: %d token adjustments not applied, Redis unreachable at shutdown",
                      len(self._pending))
        await self._redis.aclose()
