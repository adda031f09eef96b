"""``create_app(config)``: the aiohttp application with its routes, middleware and resources.

Each resource (the upstream HTTP sessions, the usage and inference writers and their sinks)
is opened and closed by one cleanup context, so shutdown drains the queues before exit.
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
from gateway.guards.judge import Judge
from gateway.limits import build_limiter
from gateway.pipeline.routing import Router
from gateway.providers.http import HttpClients
from gateway.providers.registry import build_providers
from gateway.server.auth import TokenStore
from gateway.server.middlewares import edge
from gateway.server.routes import add_routes
from gateway.sinks.inference_tables import PostgresInferenceSink, SQLiteInferenceSink
from gateway.sinks.postgres import PostgresUsageSink
from gateway.sinks.records import InferenceRecord
from gateway.sinks.sqlite import SQLiteUsageSink
from gateway.sinks.writer import BatchWriter, UsageSink, WriterCounters
from gateway.responses_store import ResponseStore
from gateway.endpoints_table import EndpointRegistry, EndpointsTable
from gateway.tokens_table import StoreRefresher, TokensTable
from gateway.state import (
    APPS, CONFIG, ENDPOINTS, ENDPOINTS_TABLE, HTTP, INFERENCE_WRITER, JUDGE, LIMITER, PROVIDERS, RESPONSES, ROUTER,
    STORE_REFRESHER, TOKENS, TOKENS_TABLE, WRITER,
)


def make_sink(config: GatewayConfig, sqlite_sink: type = SQLiteUsageSink,
              postgres_sink: type = PostgresUsageSink) -> UsageSink:
    """The configured store's sink for one table (the usage table unless told otherwise)."""
    storage = config.storage
    if storage.kind == "postgres":
        assert storage.dsn is not None
        return postgres_sink(storage.dsn, storage.command_timeout_s)
    return sqlite_sink(Path(storage.path or Path(config.server.data_dir) / "usage.db"))


def _http(rng: random.Random | None):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        http = HttpClients()
        app[HTTP] = http
        app[PROVIDERS] = build_providers(app[CONFIG], http)
        app[ROUTER] = Router(app[PROVIDERS], rng=rng)
        yield
        await http.close()
    return ctx


#: Payload rows are large: fewer per batch, and a shorter queue before they spill to disk.
INFERENCE_BATCH = 100
INFERENCE_QUEUE = 1000
INFERENCE_COUNTERS = WriterCounters(metrics.INFERENCE_WRITTEN, metrics.INFERENCE_SPILLED, metrics.INFERENCE_REJECTED)


async def _writers(app: web.Application) -> AsyncIterator[None]:
    """The usage writer, and the inference-table writer (idle unless an endpoint has one)."""
    config = app[CONFIG]
    storage = config.storage
    data_dir = Path(config.server.data_dir)
    usage = BatchWriter(
        make_sink(config), data_dir,
        batch_size=storage.batch_size, flush_interval=storage.flush_interval_ms / 1000, queue_size=storage.queue_size,
    )
    inference = BatchWriter(
        make_sink(config, SQLiteInferenceSink, PostgresInferenceSink), data_dir, batch_size=INFERENCE_BATCH,
        flush_interval=storage.flush_interval_ms / 1000, queue_size=INFERENCE_QUEUE,
        table="inference", record_type=InferenceRecord, counters=INFERENCE_COUNTERS,
    )
    await usage.start()
    await inference.start()
    app[WRITER] = usage
    app[INFERENCE_WRITER] = inference
    yield
    await inference.close()
    await usage.close()


async def _guardrail_judge(app: web.Application) -> AsyncIterator[None]:
    """The judge of ``safety`` and ``valid_topics``: the configured endpoint, called through the router."""
    app[JUDGE] = Judge(app[CONFIG].guardrail_judge, app[ENDPOINTS], app[ROUTER], app[WRITER])
    yield


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
    app[APPS] = config.app_map()
    app[TOKENS] = tokens if tokens is not None else TokenStore(config.tokens)
    app[RESPONSES] = ResponseStore(config.server.responses_retention_s, config.server.responses_max_stored)
    app.cleanup_ctx.extend([_http(rng), _writers, _guardrail_judge, _limiter, _store_refresh])
    add_routes(app)
    return app
