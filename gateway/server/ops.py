"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway import metrics
from gateway.state import WRITER


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the config is loaded (it is, or the app would not exist) and the sink answers."""
    if await request.app[WRITER].sink.ping():
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "not ready", "reason": "usage sink unreachable"}, status=503)


async def prometheus(request: web.Request) -> web.Response:
    """Prometheus text; with several workers, their files are read and merged off the loop."""
    body = await asyncio.to_thread(metrics.render) if metrics.multiprocess() else metrics.render()
    return web.Response(body=body, headers={"content-type": CONTENT_TYPE_LATEST})
