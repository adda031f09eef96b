"""Every typed application and request key, defined once."""

from __future__ import annotations

from aiohttp import web

from gateway.config import EndpointConfig, GatewayConfig
from gateway.limits import Limiter
from gateway.pipeline.call import RequestContext
from gateway.pipeline.routing import Router
from gateway.providers.base import Provider
from gateway.providers.http import HttpClients
from gateway.responses_store import ResponseStore
from gateway.server.auth import TokenStore
from gateway.sinks.writer import BatchWriter
from gateway.tokens_table import TokenRefresher

CONFIG = web.AppKey("config", GatewayConfig)
ENDPOINTS = web.AppKey("endpoints", dict[str, EndpointConfig])
HTTP = web.AppKey("http", HttpClients)
PROVIDERS = web.AppKey("providers", dict[str, Provider])
ROUTER = web.AppKey("router", Router)
RESPONSES = web.AppKey("responses", ResponseStore)
LIMITER = web.AppKey("limiter", Limiter)
TOKEN_REFRESHER = web.AppKey("token_refresher", TokenRefresher)
TOKENS = web.AppKey("tokens", TokenStore)
WRITER = web.AppKey("usage_writer", BatchWriter)

CONTEXT = web.RequestKey("context", RequestContext)
