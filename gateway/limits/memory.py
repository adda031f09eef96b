"""Token buckets in this process: exact for a single worker, and the embedded default."""

from __future__ import annotations

import time
from collections.abc import Sequence

from gateway.limits.budget import expiry_ms, token_cost, wait_ms
from gateway.limits.errors import LimitExceeded, LimitKind
from gateway.limits.limiter import NO_RESERVATION, Adjustment, Clock, Reservation
from gateway.limits.rules import Check, LimitChecks


class _Bucket:
    """One bucket's level as of ``ts`` (ms), updated in place, with the rule it refills by."""

    __slots__ = ("level", "ts", "capacity", "period")

    def __init__(self, capacity: int, period: int, ts: int) -> None:
        self.level: float = capacity
        self.ts, self.capacity, self.period = ts, capacity, period

    def idle(self, now: int) -> bool:
        """Refilled by ``now``, with a second's margin: absent means full, so it can go."""
        return self.ts + expiry_ms(self.level, self.capacity, self.period) <= now


#: One check as of now: (check, requests bucket, tokens bucket, tokens to reserve, wait ms, what is short).
_Probe = tuple[Check, "_Bucket | None", "_Bucket | None", int, int, LimitKind]


def _pick(probes: Sequence[_Probe]) -> tuple[_Probe | None, _Probe | None]:
    """(the alternative to charge, the probe that refuses the request), one of them None.

    The refusal is the constraint that takes longest to clear: a required check, or the
    soonest-ready alternative when none has budget. ``redis_scripts.ACQUIRE`` decides alike.
    """
    refusal: _Probe | None = None
    chosen: _Probe | None = None
    soonest: _Probe | None = None
    for p in probes:
        wait = p[4]
        if p[0].alternative:
            if wait == 0:
                chosen = chosen or p
            elif soonest is None or wait < soonest[4]:
                soonest = p
        elif wait and (refusal is None or wait > refusal[4]):
            refusal = p
    if chosen is None and soonest is not None and (refusal is None or soonest[4] > refusal[4]):
        refusal = soonest
    return chosen, refusal


#: How often idle (refilled) buckets are forgotten.
SWEEP_MS = 60_000


class MemoryLimiter:
    """The Limiter for one process; every call is atomic because it never awaits.

    Buckets are mutable objects keyed by the check's bucket name, one map for requests and
    one for tokens, so a request formats no keys and allocates no bucket states.
    """

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._requests: dict[str, _Bucket] = {}
        self._tokens: dict[str, _Bucket] = {}
        self._next_sweep = 0

    @property
    def bucket_names(self) -> list[str]:
        """The buckets held now, ``q:<bucket>`` (requests) and ``t:<bucket>`` (tokens)."""
        return [f"q:{k}" for k in self._requests] + [f"t:{k}" for k in self._tokens]

    @staticmethod
    def _refilled(buckets: dict[str, _Bucket], key: str, capacity: int, period: int, now: int) -> _Bucket:
        """The bucket refilled up to ``now`` (a new one is full). Refilling is idempotent,
        so probing a bucket for a request that is then refused changes nothing that matters."""
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = _Bucket(capacity, period, now)
            return b
        b.capacity, b.period = capacity, period  # the rule may have changed since
        if now > b.ts:
            # A caller whose clock lags sees no elapsed time and ts never moves back, so
            # clock skew between workers cannot mint budget (redis_scripts does the same).
            level = b.level + (now - b.ts) * capacity / period
            b.level = capacity if level > capacity else level
            b.ts = now
        return b

    def _sweep(self, now: int) -> None:
        # Forget refilled buckets, as Redis expires their keys, so idle principals cost nothing.
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_MS
        for buckets in (self._requests, self._tokens):
            for key in [k for k, b in buckets.items() if b.idle(now)]:
                del buckets[key]

    async def acquire(self, checks: LimitChecks, estimated_tokens: int = 0) -> Reservation:
        """See ``Limiter.acquire``."""
        if not checks.items:
            return NO_RESERVATION
        now = int(self._clock() * 1000)
        self._sweep(now)
        probes: list[_Probe] = []
        blocked = False
        for c in checks.items:
            q = t = None
            cost = wait = 0
            kind: LimitKind = "qpm"
            if c.qpm is not None:
                q = self._refilled(self._requests, c.bucket, c.qpm, c.period_ms, now)
                wait = wait_ms(q.level, 1, c.qpm, c.period_ms)
            if c.tpm is not None:
                cost = token_cost(c, estimated_tokens)
                t = self._refilled(self._tokens, c.bucket, c.tpm, c.period_ms, now)
                t_wait = wait_ms(t.level, cost, c.tpm, c.period_ms)
                if t_wait > wait:
                    wait, kind = t_wait, "tpm"
            probes.append((c, q, t, cost, wait, kind))
            blocked = blocked or bool(wait) or c.alternative
        chosen: _Probe | None = None
        if blocked:
            chosen, refusal = _pick(probes)
            if refusal is not None:
                raise LimitExceeded(checks.endpoint, refusal[0], refusal[5], refusal[4])
        held: list[tuple[str, int, int, int]] = []
        for p in probes:
            c, q, t, cost = p[0], p[1], p[2], p[3]
            if c.alternative and p is not chosen:
                continue
            if q is not None:
                q.level -= 1
            if t is not None:
                t.level -= cost
                held.append((c.bucket, t.capacity, t.period, cost))
        return Reservation(self._adjust, tuple(held)) if held else NO_RESERVATION

    def _adjust(self, changes: Sequence[Adjustment]) -> None:
        now = int(self._clock() * 1000)
        for key, capacity, period, delta in changes:
            t = self._refilled(self._tokens, key, capacity, period, now)
            level = t.level + delta
            t.level = capacity if level > capacity else level

    async def flush(self) -> bool:
        """Settling is immediate here: nothing is ever pending."""
        return True

    async def close(self) -> None:
        """Nothing to release."""
