"""Routing: which served entities a call tries, in what order, and how hard.

The traffic split picks the first entity (by weight, or pinned by a session header); the
endpoint's fallbacks follow in their configured order, the split not re-applied. Each
entity may be retried on retryable errors with jittered exponential backoff (an upstream
``Retry-After`` is waited out when it fits), is skipped while its circuit is open, and
gets timeouts cut to what is left of the caller's deadline. A failure that is not
retryable (a 400 from the provider, a bad request) goes straight back to the caller.

A stream counts as established only once its first item arrived (``prime``): until then
nothing reached the caller, so a failing or slow (``first_token_timeout``) stream falls
over like any other failure. Every try is written to the usage record's ``attempts``.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import logging
import math
import random
import time
import zlib
from collections.abc import Awaitable, Callable
from itertools import accumulate


from gateway import metrics
from gateway.config import EndpointConfig, ServedEntity, Timeouts
from gateway.errors import (
    DeadlineExceeded,
    GatewayError,
    NoEntityAvailable,
    UpstreamError,
    UpstreamStatus,
    error_label,
)
from gateway.pipeline.breaker import Breakers
from gateway.pipeline.call import Call
from gateway.pipeline.dispatch import Attempt
from gateway.pipeline.replies import EventStream, RawStream, Reply
from gateway.providers.base import Provider, Target
from gateway.sinks.records import AttemptRecord

log = logging.getLogger("gateway.routing")


def pick(served: list[ServedEntity], rng: random.Random, session: str | None = None) -> ServedEntity:
    """The split's choice: weighted at random, or by a stable hash of the session key, so
    one session lands on the same entity in every worker and after restarts."""
    if len(served) == 1:
        return served[0]
    bounds = list(accumulate(e.weight or 0 for e in served))
    point = zlib.crc32(session.encode()) % bounds[-1] if session else rng.randrange(bounds[-1])
    return served[bisect.bisect_right(bounds, point)]


def backoff(retry: int, base_ms: int, max_ms: int, rng: random.Random) -> float:
    """Seconds before retry number ``retry`` (0-based): full jitter over an exponential cap."""
    return rng.uniform(0, min(max_ms, base_ms * 2**retry)) / 1000


def _cut(t: Timeouts, remaining: float | None) -> Timeouts:
    """``t`` bounded by the caller's remaining time.

    SDKs send their own timeout on every request (``x-stainless-timeout: 600``), which
    usually leaves ``t`` as it is: then ``t`` itself is returned, and otherwise the cut is
    made on a 0.1 s grid, so both this and the HTTP client's per-Timeouts cache keep hitting.
    """
    if remaining is None or remaining >= max(t.connect, t.first_byte, t.total) - _SLACK_S:
        return t
    return _cut_to(t, max(0.1, math.floor(remaining * 10) / 10))


#: A deadline within this much of the configured timeouts leaves them as they are.
_SLACK_S = 1.0


@functools.lru_cache(maxsize=1024)
def _cut_to(t: Timeouts, remaining: float) -> Timeouts:
    return Timeouts(connect=min(t.connect, remaining), first_byte=min(t.first_byte, remaining),
                    total=min(t.total, remaining))


class Router:
    def __init__(self, providers: dict[str, Provider], *, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.providers = providers
        self.breakers = Breakers(clock)
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep

    def plan(self, endpoint: EndpointConfig, session: str | None) -> list[ServedEntity]:
        """The split's pick, then the fallbacks in order (unless they are switched off)."""
        first = pick(endpoint.served_entities, self._rng, session)
        return [first, *endpoint.fallbacks] if endpoint.fallbacks_enabled else [first]

    def _remaining(self, call: Call) -> float | None:
        deadline = call.ctx.deadline
        if deadline is None:
            return None
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise DeadlineExceeded("The request's deadline passed before a provider answered")
        return remaining

    async def route(self, call: Call, attempt: Attempt) -> Reply:
        """Try the planned entities until one succeeds or a failure is final."""
        endpoint = call.endpoint
        routing = endpoint.routing
        record = call.ctx.record
        last: GatewayError | None = None
        reason = ""
        plan = self.plan(endpoint, call.session)
        for position, entity in enumerate(plan, 1):
            breaker = self.breakers.get(endpoint.name, entity.key, routing.circuit_breaker)
            provider = self.providers[entity.provider]
            record.provider, record.provider_model = entity.provider, entity.model
            for retry in range(routing.retries.attempts + 1):
                # Before allow(): a passed deadline must not leave a half-open probe claimed.
                remaining = self._remaining(call)
                if not breaker.allow():
                    record.attempts.append(AttemptRecord(entity.key, 0, 0.0, "circuit_open"))
                    last = last or NoEntityAvailable(f"Every served entity of '{endpoint.name}' is failing; try again later")
                    reason = "circuit_open"
                    break
                target = Target(entity.model, _cut(entity.timeouts or provider.config.timeouts, remaining))
                started = self._clock()
                try:
                    reply = await attempt(call, provider, target)
                    if isinstance(reply, (EventStream, RawStream)):
                        first_token = routing.first_token_timeout
                        if remaining is not None:
                            first_token = min(first_token or remaining, remaining)
                        await reply.stream.prime(first_token, provider.name)
                except GatewayError as err:
                    latency = round((self._clock() - started) * 1000, 3)
                    record.attempts.append(AttemptRecord(entity.key, err.http_status, latency, error_label(err)))
                    if not err.retryable:
                        breaker.success()  # the provider answered; the request was the problem
                        raise
                    breaker.failure()
                    if isinstance(err, UpstreamError):
                        metrics.UPSTREAM_ERRORS.labels(entity.provider, error_label(err)).inc()
                    last, reason = err, error_label(err)
                    if retry < routing.retries.attempts and await self._wait_to_retry(call, err, retry):
                        metrics.RETRIES.labels(endpoint.name, error_label(err)).inc()
                        continue
                    break
                except BaseException:
                    breaker.release()
                    raise
                latency = round((self._clock() - started) * 1000, 3)
                record.attempts.append(AttemptRecord(entity.key, 200, latency))
                breaker.success()
                return reply
            if position < len(plan):  # a fallback only if there is something to fall back to
                metrics.FALLBACKS.labels(endpoint.name, reason).inc()
                log.info("request %s: %s failed (%s); trying the next entity", call.ctx.request_id, entity.key, reason)
        assert last is not None
        raise last

    async def _wait_to_retry(self, call: Call, err: GatewayError, retry: int) -> bool:
        """Sleep before a retry; False when the wait would overrun the caller's deadline."""
        config = call.endpoint.routing.retries
        delay = backoff(retry, config.backoff_ms, config.max_backoff_ms, self._rng)
        if isinstance(err, UpstreamStatus) and err.retry_after is not None:
            delay = max(delay, err.retry_after)
        deadline = call.ctx.deadline
        if deadline is not None and self._clock() + delay >= deadline:
            return False
        await self._sleep(delay)
        return True


