"""Pick the served entities for a call, and fall back along them on retryable failures.

The traffic split picks the first entity (weighted); the endpoint's fallbacks follow in
their configured order. A failure that is not retryable (a 400 from the provider, a bad
request) goes straight to the caller: another entity would refuse it too.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable

from gateway import metrics
from gateway.config import EndpointConfig, ServedEntity
from gateway.errors import GatewayError, UpstreamError, error_label
from gateway.pipeline.call import Call
from gateway.pipeline.replies import Reply
from gateway.providers.base import Provider, Target

log = logging.getLogger("gateway.routing")

Attempt = Callable[[Call, Provider, Target], Awaitable[Reply]]


def candidates(endpoint: EndpointConfig, rng: random.Random = random._inst) -> list[ServedEntity]:  # type: ignore[attr-defined]
    """The split's pick first, then the fallbacks in order."""
    served = endpoint.served_entities
    if len(served) == 1:
        first = served[0]
    else:
        first = rng.choices(served, weights=[e.weight for e in served])[0]
    return [first, *endpoint.fallbacks]


async def route(call: Call, providers: dict[str, Provider], attempt: Attempt) -> Reply:
    """Try each candidate until one succeeds or a failure is final."""
    entities = candidates(call.endpoint)
    record = call.ctx.record
    for i, entity in enumerate(entities):
        record.provider, record.provider_model = entity.provider, entity.model
        try:
            provider = providers[entity.provider]
            return await attempt(call, provider, Target(entity.model, provider.config.timeouts))
        except GatewayError as err:
            if isinstance(err, UpstreamError):
                metrics.UPSTREAM_ERRORS.labels(entity.provider, error_label(err)).inc()
            if not err.retryable or i == len(entities) - 1:
                raise
            metrics.FALLBACKS.labels(call.endpoint.name, error_label(err)).inc()
            log.info("request %s: %s/%s failed (%s); trying the next entity",
                     call.ctx.request_id, entity.provider, entity.model, error_label(err))
    raise AssertionError("an endpoint always has at least one served entity")
