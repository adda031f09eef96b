"""The contract the pipeline calls, and the reservation it settles after the response."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.limits.config import LimiterConfig
from gateway.limits.rules import LimitChecks

#: (bucket key, capacity, renewal period in ms, tokens to give back; negative charges more)
Adjustment = tuple[str, int, int, int]
Clock = Callable[[], float]  # seconds since the epoch, like time.time
BackendErrorHook = Callable[[str], None]  # "allowed" (failed open) or "denied" (failed closed)


class Reservation:
    """The tokens one request holds in its TPM buckets until ``settle``."""

    __slots__ = ("_adjust", "_held", "_settled")

    def __init__(self, adjust: Callable[[Sequence[Adjustment]], None] | None = None,
                 held: tuple[tuple[str, int, int, int], ...] = ()) -> None:
        self._adjust = adjust
        self._held = held  # (bucket key, capacity, period ms, tokens reserved)
        self._settled = False

    def settle(self, actual_tokens: int) -> None:
        """Give back (or charge) the difference between the estimate and ``actual_tokens``.

        Never waits on I/O; a second call is ignored. Settle with 0 when the call failed
        before using any tokens.
        """
        if self._settled or self._adjust is None:
            return
        self._settled = True
        changes = [(key, cap, period, reserved - actual_tokens)
                   for key, cap, period, reserved in self._held if reserved != actual_tokens]
        if changes:
            self._adjust(changes)


#: What a request gets when no rule applies, or when the store is down and the limiter fails open.
NO_RESERVATION = Reservation()


class Limiter(Protocol):
    """Rate limits for every endpoint, backed by one store of token buckets."""

    async def acquire(self, checks: LimitChecks, estimated_tokens: int = 0) -> Reservation:
        """Take one request from every QPM bucket and reserve ``estimated_tokens`` in every
        TPM bucket of ``checks``, all or nothing; raise ``RateLimited`` otherwise."""
        ...

    async def flush(self) -> bool:
        """Apply every settled adjustment now; False if some are still waiting for the store."""
        ...

    async def close(self) -> None:
        """Flush what is pending and release connections."""
        ...


def build_limiter(config: LimiterConfig, *, clock: Clock = time.time,
                  on_backend_error: BackendErrorHook | None = None) -> Limiter:
    """The limiter ``config`` describes; the Redis one imports ``redis`` only when chosen."""
    if config.backend == "memory":
        from gateway.limits.memory import MemoryLimiter

        return MemoryLimiter(clock=clock)
    from gateway.limits.redis_limiter import RedisLimiter

    assert config.url is not None  # LimiterConfig refuses a redis backend without one
    return RedisLimiter(
        config.url, prefix=config.key_prefix, timeout=config.timeout_ms / 1000,
        fail_open=config.fail_mode == "open", clock=clock, on_backend_error=on_backend_error,
    )
