"""Rate limits: queries and tokens per minute, per endpoint, user, service principal and group.

The pipeline's limits stage, per request::

    checks = resolve_checks(endpoint.rate_limits, endpoint.name, principal.name, principal.groups)
    reservation = await limiter.acquire(checks, estimated_tokens)   # raises RateLimited (429)
    ...                                                            # the call
    reservation.settle(actual_tokens)                              # never waits

``build_limiter(config.limiter)`` makes the limiter once per worker; ``close()`` it on
shutdown. ``RedisLimiter`` is imported from ``gateway.limits.redis_limiter`` (it needs the
``redis`` extra).
"""

from gateway.limits.config import LimiterConfig, LimitRule, check_rules
from gateway.limits.errors import LimiterUnavailable, LimitExceeded
from gateway.limits.limiter import NO_RESERVATION, Limiter, Reservation, build_limiter
from gateway.limits.memory import MemoryLimiter
from gateway.limits.rules import Check, LimitChecks, resolve_checks

__all__ = [
    "NO_RESERVATION", "Check", "LimitChecks", "LimitExceeded", "LimitRule", "Limiter", "LimiterConfig",
    "LimiterUnavailable", "MemoryLimiter", "Reservation", "build_limiter", "check_rules", "resolve_checks",
]
