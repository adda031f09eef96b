"""The 429s the limiter raises: both are ``gateway.errors.RateLimited`` (code ``rate_limited``)."""

from __future__ import annotations

from typing import Literal

from gateway.errors import RateLimited
from gateway.limits.rules import Check, Scope

LimitKind = Literal["qpm", "tpm"]


class LimitExceeded(RateLimited):
    """A bucket had no budget. ``scope`` and ``limit`` label metrics and usage records."""

    def __init__(self, endpoint: str, check: Check, limit: LimitKind, wait_ms: int) -> None:
        amount = f"{check.qpm} requests" if limit == "qpm" else f"{check.tpm} tokens"
        super().__init__(
            f"Rate limit exceeded: {amount} per {check.period}{check.describe()} on endpoint {endpoint}",
            retry_after=wait_ms / 1000,
        )
        self.scope: Scope = check.scope
        self.limit = limit


class LimiterUnavailable(RateLimited):
    """The shared limit store did not answer and the limiter is configured to fail closed."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("Rate limits cannot be checked right now; try again shortly", retry_after=retry_after)
