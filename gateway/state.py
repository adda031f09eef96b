"""Every typed application and request key, defined once."""

from __future__ import annotations

from aiohttp import web

from gateway.config import EndpointConfig, GatewayConfig
from gateway.guards.judge import Judge
from gateway.limits import Limiter
from gateway.pipeline.call import RequestContext
from gateway.pipeline.routing import Router
from gateway.providers.base import Provider
from gateway.providers.http import HttpClients
from gateway.responses_store import ResponseStore
from gateway.server.auth import TokenStore
from gateway.sinks.writer import BatchWriter
from gateway.endpoints_table import EndpointRegistry, EndpointsTable
from gateway.tokens_table import StoreRefresher, TokensTable

CONFIG = web.AppKey("config", GatewayConfig)
ENDPOINTS = web.AppKey("endpoints", EndpointRegistry)
APPS = web.AppKey("apps", dict[str, EndpointConfig])  # agent apps, as endpoints keyed apps/<name>
ENDPOINTS_TABLE = web.AppKey("endpoints_table", EndpointsTable)
HTTP = web.AppKey("http", HttpClients)
PROVIDERS = web.AppKey("providers", dict[str, Provider])
ROUTER = web.AppKey("router", Router)
RESPONSES = web.AppKey("responses", ResponseStore)
LIMITER = web.AppKey("limiter", Limiter)
STORE_REFRESHER = web.AppKey("store_refresher", StoreRefresher)
TOKENS = web.AppKey("tokens", TokenStore)
TOKENS_TABLE = web.AppKey("tokens_table", TokensTable)
WRITER = web.AppKey("usage_writer", BatchWriter)
INFERENCE_WRITER = web.AppKey("inference_writer", BatchWriter)
JUDGE = web.AppKey("guardrail_judge", Judge)

CONTEXT = web.RequestKey("context", RequestContext)
