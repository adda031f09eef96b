"""The limits stage: QPM taken and TPM reserved before routing, settled after the response.

The reservation is an estimate: (body bytes + 1) / 4 for the prompt plus the request's
``max_tokens`` when it names one, read without decoding the body again. The edge settles it
with the real token count once the usage record is complete.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from gateway import metrics
from gateway.ir.result import estimate_tokens
from gateway.limits import LimitChecks, LimitExceeded, Limiter, LimitRule, resolve_checks
from gateway.pipeline.call import Call

if TYPE_CHECKING:
    from gateway.server.auth import Principal

# Chat Completions, Responses, Anthropic and Gemini spellings of the output cap.
_MAX_TOKENS = re.compile(rb'"(?:max_tokens|max_completion_tokens|max_output_tokens|maxOutputTokens)"\s*:\s*(\d+)')


def estimated_tokens(body: bytes) -> int:
    """A cheap upper-side guess of what the call will cost, for TPM reservation."""
    found = _MAX_TOKENS.search(body)
    return estimate_tokens(len(body)) + (int(found.group(1)) if found else 0)


#: Resolved checks per (rules, endpoint, principal, tag values the rules look at). The rules
#: list is part of the entry, so an endpoint changed through the admin API misses the cache.
_resolved: dict[tuple[object, ...], tuple[Sequence[LimitRule], LimitChecks]] = {}
_RESOLVED_MAX = 10_000


def _checks_for(rules: Sequence[LimitRule], endpoint: str, principal: Principal, tags: Mapping[str, str]) -> LimitChecks:
    """``resolve_checks``, remembered: the same caller on the same endpoint meets the same checks."""
    tag_values = tuple(tags.get(r.tag_key) for r in rules if r.tag_key is not None) if tags else ()
    key = (id(rules), endpoint, principal.name, principal.groups, principal.kind, tag_values)
    hit = _resolved.get(key)
    if hit is not None and hit[0] is rules:
        return hit[1]
    checks = resolve_checks(rules, endpoint, principal.name, principal.groups, kind=principal.kind, tags=tags)
    if len(_resolved) >= _RESOLVED_MAX:
        _resolved.clear()
    _resolved[key] = (rules, checks)
    return checks


async def enforce(call: Call, limiter: Limiter) -> None:
    """Raise RateLimited (429) if a limit of the call's endpoint refuses it."""
    rules = call.endpoint.rate_limits
    principal = call.ctx.principal
    if not rules or principal is None:
        return
    checks = _checks_for(rules, call.endpoint.name, principal, call.ctx.record.request_tags)
    try:
        call.ctx.reservation = await limiter.acquire(checks, estimated_tokens(call.body))
    except LimitExceeded as exc:
        metrics.RATE_LIMITED.labels(call.endpoint.name, exc.scope, exc.limit).inc()
        raise
