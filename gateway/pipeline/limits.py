"""The limits stage: QPM taken and TPM reserved before routing, settled after the response.

The reservation is an estimate: (body bytes + 1) / 4 for the prompt plus the request's
``max_tokens`` when it names one, read without decoding the body again. The edge settles it
with the real token count once the usage record is complete.
"""

from __future__ import annotations

import re

from gateway import metrics
from gateway.ir.result import estimate_tokens
from gateway.limits import LimitExceeded, Limiter, resolve_checks
from gateway.pipeline.call import Call

# Chat Completions, Responses, Anthropic and Gemini spellings of the output cap.
_MAX_TOKENS = re.compile(rb'"(?:max_tokens|max_completion_tokens|max_output_tokens|maxOutputTokens)"\s*:\s*(\d+)')


def estimated_tokens(body: bytes) -> int:
    """A cheap upper-side guess of what the call will cost, for TPM reservation."""
    found = _MAX_TOKENS.search(body)
    return estimate_tokens(len(body)) + (int(found.group(1)) if found else 0)


async def enforce(call: Call, limiter: Limiter) -> None:
    """Raise RateLimited (429) if a limit of the call's endpoint refuses it."""
    rules = call.endpoint.rate_limits
    principal = call.ctx.principal
    if not rules or principal is None:
        return
    checks = resolve_checks(rules, call.endpoint.name, principal.name, principal.groups,
                            kind=principal.kind, tags=call.ctx.record.request_tags)
    try:
        call.ctx.reservation = await limiter.acquire(checks, estimated_tokens(call.body))
    except LimitExceeded as exc:
        metrics.RATE_LIMITED.labels(call.endpoint.name, exc.scope, exc.limit).inc()
        raise
