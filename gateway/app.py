"""``create_app(config)``: the aiohttp application with its routes, middleware and resources.

Each resource (the upstream HTTP sessions, the usage writer and its sink) is opened and
closed by one cleanup context, so shutdown drains the usage queue before exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gateway import metrics
from gateway.config import GatewayConfig
from gateway.limits import build_limiter
from gateway.pipeline.routing import Router
from gateway.providers.http import HttpClients
from gateway.providers.registry import build_providers
from gateway.server.auth import TokenStore
from gateway.server.middlewares import edge
from gateway.server.routes import add_routes
from gateway.sinks.postgres import PostgresUsageSink
from gateway.sinks.sqlite import SQLiteUsageSink
from gateway.sinks.writer import BatchWriter, UsageSink
from gateway.responses_store import ResponseStore
from gateway.endpoints_table import EndpointRegistry, EndpointsTable
from gateway.tokens_table import StoreRefresher, TokensTable
from gateway.state import (
    CONFIG, ENDPOINTS, ENDPOINTS_TABLE, HTTP, LIMITER, PROVIDERS, RESPONSES, ROUTER, STORE_REFRESHER, TOKENS,
    TOKENS_TABLE, WRITER,
)


def make_sink(config: GatewayConfig) -> UsageSink:
    storage = config.storage
    if storage.kind == "postgres":
        assert storage.dsn is not None
        return PostgresUsageSink(storage.dsn)
    return SQLiteUsageSink(Path(storage.path or Path(config.server.data_dir) / "usage.db"))


def _http(rng: random.Random | None):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        http = HttpClients()
        app[HTTP] = http
        app[PROVIDERS] = build_providers(app[CONFIG], http)
        app[ROUTER] = Router(app[PROVIDERS], rng=rng)
        yield
        await http.close()
    return ctx


async def _usage_writer(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    storage = config.storage
    writer = BatchWriter(
        make_sink(config), Path(config.server.data_dir),
        batch_size=storage.batch_size, flush_interval=storage.flush_interval_ms / 1000, queue_size=storage.queue_size,
    )
    await writer.start()
    app[WRITER] = writer
    yield
    await writer.close()


async def _limiter(app: web.Application) -> AsyncIterator[None]:
    limiter = build_limiter(
        app[CONFIG].limiter, on_backend_error=lambda outcome: metrics.RATE_LIMIT_BACKEND_ERRORS.labels(outcome).inc()
    )
    app[LIMITER] = limiter
    yield
    await limiter.close()  # sends token adjustments still pending


async def _store_refresh(app: web.Application) -> AsyncIterator[None]:
    """Seed the store with the configuration's endpoints, load the run-time tokens and
    endpoints before serving, then reload them every few seconds. A store that is down at
    start delays the seed to the first reload that reaches it."""
    table = EndpointsTable(app[CONFIG])
    tokens = TokensTable(app[CONFIG])
    app[ENDPOINTS_TABLE] = table
    app[TOKENS_TABLE] = tokens
    try:
        refresher = StoreRefresher(tokens, app[TOKENS], table, app[ENDPOINTS])
        app[STORE_REFRESHER] = refresher
        await refresher.start()
        task = asyncio.create_task(refresher.run(app[CONFIG].server.store_refresh_s), name="store-refresh")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await table.close()
        await tokens.close()


def create_app(config: GatewayConfig, tokens: TokenStore | None = None, rng: random.Random | None = None) -> web.Application:
    """The gateway app for ``config``; ``tokens`` defaults to the config's tokens, ``rng``
    (the traffic split's and backoff's randomness) to a fresh one."""
    app = web.Application(middlewares=[edge], client_max_size=config.server.max_body_bytes)
    app[CONFIG] = config
    app[ENDPOINTS] = EndpointRegistry(config.endpoint_map())
    app[TOKENS] = tokens if tokens is not None else TokenStore(config.tokens)
    app[RESPONSES] = ResponseStore(config.server.responses_retention_s, config.server.responses_max_stored)
    app.cleanup_ctx.extend([_http(rng), _usage_writer, _limiter, _store_refresh])
    add_routes(app)
    return app
