"""Token counting (Anthropic ``count_tokens``, Gemini ``countTokens``): the provider's own
count when the endpoint is served by a provider that counts, else the documented estimate.

A count consumes nothing: the usage row records the request with zero tokens, so usage
reports and token metrics hold only tokens a model actually read or wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from gateway.config import EndpointConfig
from gateway.errors import GatewayError
from gateway.pipeline.call import RequestContext
from gateway.providers.base import Provider, Target
from gateway.server.responding import json_reply
from gateway.state import PROVIDERS, ROUTER

log = logging.getLogger("gateway.server")

#: Sends the count request to a provider and returns its reply body, checked to be a count.
AskProvider = Callable[[Provider, Target], Awaitable[bytes]]


async def answer_count(request: web.Request, ctx: RequestContext, endpoint: EndpointConfig, counts: type[Provider],
                       ask: AskProvider, estimate: Callable[[], bytes]) -> web.Response:
    """Ask the endpoint's provider when it is a ``counts`` provider; otherwise, or when it
    fails, answer with ``estimate()``."""
    entity = request.app[ROUTER].plan(endpoint, None)[0]
    provider = request.app[PROVIDERS][entity.provider]
    if isinstance(provider, counts):
        target = Target(entity.model, entity.timeouts or provider.config.timeouts)
        try:
            return json_reply(ctx, await ask(provider, target))
        except (GatewayError, msgspec.DecodeError, msgspec.ValidationError) as err:
            log.warning("request %s: provider token count failed (%s); estimating", ctx.request_id,
                        getattr(err, "code", type(err).__name__))
    return json_reply(ctx, estimate())
