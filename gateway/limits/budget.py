"""Token-bucket arithmetic, in integer milliseconds. ``redis_scripts`` repeats it in Lua.

A bucket holds at most ``capacity`` (the limit per renewal period) and refills
continuously at ``capacity`` per ``period`` (ms). A request takes 1 from a QPM bucket and
its estimated tokens from a TPM bucket; settling may push a TPM bucket below zero (debt
repaid by refill).
"""

from __future__ import annotations

import math

from gateway.limits.rules import Check


def token_cost(check: Check, estimated_tokens: int) -> int:
    """Tokens to reserve in ``check``'s TPM bucket (0 when it has none).

    An estimate above the limit reserves the whole limit, so a large ``max_tokens`` waits
    for a full bucket instead of never passing; at least 1 so an empty bucket refuses.
    """
    if check.tpm is None:
        return 0
    return max(1, min(estimated_tokens, check.tpm))


def wait_ms(level: float, need: int, capacity: int, period: int) -> int:
    """Milliseconds until a bucket at ``level`` holds ``need`` (0 if it already does)."""
    if level >= need:
        return 0
    return math.ceil((need - level) * period / capacity)


def expiry_ms(level: float, capacity: int, period: int) -> int:
    """How long a bucket's state matters: after it has refilled, absent means full."""
    return math.ceil((capacity - level) * period / capacity) + 1000
