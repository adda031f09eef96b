"""Structured access logs: one JSON line per request, without query strings (``?key=``
may hold a token) or any header but the user agent."""

from __future__ import annotations

import logging

import orjson
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from gateway.logs import log_line
from gateway.state import CONTEXT


class JSONAccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        ctx = request.get(CONTEXT)
        rec = ctx.record if ctx is not None else None
        entry = {
            "request_id": ctx.request_id if ctx is not None else None,
            "method": request.method,
            "path": request.path,
            "status": rec.status_code if rec is not None and rec.status_code else response.status,
            "duration_ms": round(time * 1000, 3),
            "endpoint": rec.endpoint if rec is not None else None,
            "requester": rec.requester if rec is not None else None,
            "remote": request.remote,
            "user_agent": request.headers.get("user-agent"),
        }
        log_line(self.logger, orjson.dumps(entry).decode())

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
