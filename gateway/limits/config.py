"""Rate-limit configuration: the rules of one endpoint, and where the buckets live.

The integrator adds ``rate_limits: list[LimitRule] = []`` to ``EndpointConfig`` and
``limiter: LimiterConfig = LimiterConfig()`` to ``GatewayConfig``, then calls
``check_rules`` on each endpoint's list (a single rule checks itself on decode).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec

Positive = Annotated[int, msgspec.Meta(ge=1)]

#: ``user`` without a principal is the user default: one bucket for each principal that
#: has no more specific rule.
RuleKey = Literal["endpoint", "user", "service_principal", "group"]


class _Base(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class LimitRule(_Base, kw_only=True):
    """One limit on an endpoint: who it counts (``key``, ``principal``) and how much.

    ``qpm`` is requests and ``tpm`` tokens per minute; with both set, whichever runs out
    first refuses the request.
    """

    key: RuleKey
    principal: str | None = None  # the user, service principal or group name
    qpm: Positive | None = None
    tpm: Positive | None = None

    def __post_init__(self) -> None:
        # msgspec reports a ValueError here with the rule's path, like a type error.
        if self.qpm is None and self.tpm is None:
            raise ValueError("a rate limit needs qpm, tpm or both")
        if self.key == "endpoint" and self.principal is not None:
            raise ValueError("an endpoint limit covers all traffic and takes no principal")
        if self.key in ("group", "service_principal") and not self.principal:
            raise ValueError(f"a {self.key} limit needs principal: the {self.key.replace('_', ' ')}'s name")


class LimiterConfig(_Base, kw_only=True):
    """Where the buckets live: ``memory`` (one worker process) or ``redis`` (shared by all).

    ``fail_mode`` decides what a request gets when Redis cannot answer within
    ``timeout_ms``: ``open`` lets it through, ``closed`` refuses it with a 429.
    """

    backend: Literal["memory", "redis"] = "memory"
    url: str | None = None
    fail_mode: Literal["open", "closed"] = "open"
    timeout_ms: Positive = 250
    key_prefix: str = "gateway:rl"

    def __post_init__(self) -> None:
        if self.backend == "redis" and not self.url:
            raise ValueError("the redis backend needs url, e.g. redis://127.0.0.1:6379/0")


def _identity(rule: LimitRule) -> str:
    if rule.key == "endpoint":
        return "the endpoint"
    if rule.key == "group":
        return f"group {rule.principal}"
    if rule.principal is None:
        return "the user default"
    # A user and a service principal share one namespace of principal names.
    return f"principal {rule.principal}"


def check_rules(rules: Sequence[LimitRule]) -> None:
    """Refuse two rules for the same target; the message starts with ``[index]: ``."""
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        who = _identity(rule)
        if who in seen:
            raise ValueError(f"[{i}]: a second limit for {who}; put qpm and tpm in one rule")
        seen.add(who)
