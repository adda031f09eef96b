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
#: has no more specific rule. ``request_tag`` counts requests by a tag of the
#: ``Databricks-Ai-Gateway-Request-Tags`` header.
RuleKey = Literal["endpoint", "user", "service_principal", "group", "request_tag"]
RenewalPeriod = Literal["minute", "hour"]

#: Milliseconds in each renewal period: a bucket refills completely once per period.
PERIOD_MS: dict[str, int] = {"minute": 60_000, "hour": 3_600_000}


class _Base(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class LimitRule(_Base, kw_only=True):
    """One limit on an endpoint: who it counts (``key``, ``principal``, ``tag_key``) and how much.

    ``qpm`` counts requests and ``tpm`` tokens per ``renewal_period`` (a minute unless set
    to ``hour``); with both set, whichever runs out first refuses the request. A
    ``request_tag`` rule without ``tag_value`` gives every value of ``tag_key`` its own
    bucket; with ``tag_value`` it overrides that default for the one value.
    """

    key: RuleKey
    principal: str | None = None  # the user, service principal or group name
    qpm: Positive | None = None
    tpm: Positive | None = None
    renewal_period: RenewalPeriod = "minute"
    tag_key: str | None = None
    tag_value: str | None = None

    def __post_init__(self) -> None:
        # msgspec reports a ValueError here with the rule's path, like a type error.
        if self.qpm is None and self.tpm is None:
            raise ValueError("a rate limit needs qpm, tpm or both")
        if self.key in ("endpoint", "request_tag") and self.principal is not None:
            raise ValueError(f"a {self.key.replace('_', ' ')} limit takes no principal")
        if self.key in ("group", "service_principal") and not self.principal:
            raise ValueError(f"a {self.key} limit needs principal: the {self.key.replace('_', ' ')}'s name")
        if self.key == "request_tag":
            if not self.tag_key:
                raise ValueError("a request_tag limit needs tag_key: the tag it counts")
        elif self.tag_key is not None or self.tag_value is not None:
            raise ValueError("tag_key and tag_value belong to request_tag limits only")

    @property
    def period_ms(self) -> int:
        """The renewal period in milliseconds."""
        return PERIOD_MS[self.renewal_period]


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
    if rule.key == "request_tag":
        return f"tag {rule.tag_key}" + ("" if rule.tag_value is None else f"={rule.tag_value}")
    if rule.principal is None:
        return "the user default"
    return f"{rule.key.replace('_', ' ')} {rule.principal}"


def check_rules(rules: Sequence[LimitRule]) -> None:
    """Refuse two rules for the same target; the message starts with ``[index]: ``."""
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        who = _identity(rule)
        if who in seen:
            raise ValueError(f"[{i}]: a second limit for {who}; put qpm and tpm in one rule")
        seen.add(who)
