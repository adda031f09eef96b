"""Token buckets in this process: exact for a single worker, and the embedded default."""

from __future__ import annotations

import time
from collections.abc import Sequence

from gateway.limits.budget import expiry_ms, refill, token_cost, wait_ms
from gateway.limits.errors import LimitExceeded, LimitKind
from gateway.limits.limiter import NO_RESERVATION, Adjustment, Clock, Reservation
from gateway.limits.rules import Check, LimitChecks


class _Probe:
    """One check's buckets as of now, and how long until they could serve the request."""

    __slots__ = ("check", "cost", "q", "t", "wait", "kind")

    def __init__(self, check: Check, cost: int, q: tuple[float, int] | None, t: tuple[float, int] | None) -> None:
        self.check, self.cost, self.q, self.t = check, cost, q, t
        self.wait = 0
        self.kind: LimitKind = "qpm"
        if q is not None and check.qpm is not None:
            self.wait = wait_ms(q[0], 1, check.qpm, check.period_ms)
        if t is not None and check.tpm is not None:
            t_wait = wait_ms(t[0], cost, check.tpm, check.period_ms)
            if t_wait > self.wait:
                self.wait, self.kind = t_wait, "tpm"


def _pick(probes: Sequence[_Probe]) -> tuple[_Probe | None, _Probe | None]:
    """(the alternative to charge, the probe that refuses the request), one of them None.

    The refusal is the constraint that takes longest to clear: a required check, or the
    soonest-ready alternative when none has budget. ``redis_scripts.ACQUIRE`` decides alike.
    """
    refusal: _Probe | None = None
    chosen: _Probe | None = None
    soonest: _Probe | None = None
    for p in probes:
        if p.check.alternative:
            if p.wait == 0:
                chosen = chosen or p
            elif soonest is None or p.wait < soonest.wait:
                soonest = p
        elif p.wait and (refusal is None or p.wait > refusal.wait):
            refusal = p
    if chosen is None and soonest is not None and (refusal is None or soonest.wait > refusal.wait):
        refusal = soonest
    return chosen, refusal


#: How often idle (refilled) buckets are forgotten.
SWEEP_MS = 60_000


class MemoryLimiter:
    """The Limiter for one process; every call is atomic because it never awaits."""

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, int, int]] = {}  # key -> (tokens, ts, expires at), ms
        self._next_sweep = 0

    def _level(self, key: str, capacity: int, period: int, now: int) -> tuple[float, int]:
        state = self._buckets.get(key)
        return (float(capacity), now) if state is None else refill(state[0], state[1], capacity, period, now)

    def _store(self, key: str, level: float, ts: int, capacity: int, period: int) -> None:
        self._buckets[key] = (level, ts, ts + expiry_ms(level, capacity, period))

    def _sweep(self, now: int) -> None:
        # Forget refilled buckets, as Redis expires their keys, so idle principals cost nothing.
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_MS
        for key in [k for k, (_, _, expires) in self._buckets.items() if expires <= now]:
            del self._buckets[key]

    async def acquire(self, checks: LimitChecks, estimated_tokens: int = 0) -> Reservation:
        """See ``Limiter.acquire``."""
        if not checks.items:
            return NO_RESERVATION
        now = int(self._clock() * 1000)
        self._sweep(now)
        probes = [
            _Probe(
                c, token_cost(c, estimated_tokens),
                None if c.qpm is None else self._level(f"q:{c.bucket}", c.qpm, c.period_ms, now),
                None if c.tpm is None else self._level(f"t:{c.bucket}", c.tpm, c.period_ms, now),
            )
            for c in checks.items
        ]
        chosen, refusal = _pick(probes)
        if refusal is not None:
            raise LimitExceeded(checks.endpoint, refusal.check, refusal.kind, refusal.wait)
        held: list[tuple[str, int, int, int]] = []
        for p in probes:
            c = p.check
            if c.alternative and p is not chosen:
                continue
            if p.q is not None and c.qpm is not None:
                self._store(f"q:{c.bucket}", p.q[0] - 1, p.q[1], c.qpm, c.period_ms)
            if p.t is not None and c.tpm is not None:
                self._store(f"t:{c.bucket}", p.t[0] - p.cost, p.t[1], c.tpm, c.period_ms)
                held.append((f"t:{c.bucket}", c.tpm, c.period_ms, p.cost))
        return Reservation(self._adjust, tuple(held)) if held else NO_RESERVATION

    def _adjust(self, changes: Sequence[Adjustment]) -> None:
        now = int(self._clock() * 1000)
        for key, capacity, period, delta in changes:
            level, ts = self._level(key, capacity, period, now)
            self._store(key, min(capacity, level + delta), ts, capacity, period)

    async def flush(self) -> bool:
        """Settling is immediate here: nothing is ever pending."""
        return True

    async def close(self) -> None:
        """Nothing to release."""
