"""The edge middleware: request id, authentication, error rendering, accounting.

One middleware, because these share one try/finally: whatever happens (auth failure,
bad body, provider outage, a bug), the caller gets an error in its API's shape, the
response carries ``x-request-id``, and API requests leave a usage record and metrics.
Authentication runs before the handler reads the body.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time

import msgspec
from aiohttp import web
from aiohttp.web_urldispatcher import MatchInfoError

from gateway import metrics
from gateway.codecs.errors import ERROR_BODIES, dialect_for_path
from gateway.errors import BadRequest, GatewayError, NotFound, PayloadTooLarge, Unauthenticated, error_label
from gateway.pipeline.call import RequestContext
from gateway.server.auth import extract_token
from gateway.server.responding import STARTED_STREAM
from gateway.state import CONTEXT, INFERENCE_WRITER, TOKENS, WRITER

log = logging.getLogger("gateway.server")

TAGS_HEADER = "Databricks-Ai-Gateway-Request-Tags"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_tags = msgspec.json.Decoder(dict[str, str])
#: Paths served without a token and without a usage record (Claude Code probes /anthropic with HEAD).
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/anthropic", "/anthropic/"})


class _MethodNotAllowed(GatewayError):
    status, code, kind = 405, "method_not_allowed", "invalid_request"


@functools.lru_cache(maxsize=1024)
def _api_type(canonical: str) -> str | None:
    path = canonical[len("/ai-gateway"):] if canonical.startswith("/ai-gateway/") else canonical
    return None if path in OPS_PATHS else path.lstrip("/")


def api_type_of(request: web.Request) -> str | None:
    """``mlflow/v1/chat/completions`` for an API route (any prefix); None for ops or no route."""
    info = request.match_info
    if isinstance(info, MatchInfoError):
        return None
    return _api_type(info.route.resource.canonical if info.route.resource else "")


#: Headers that carry the caller's own timeout in seconds: ours, and the one the OpenAI and
#: Anthropic SDKs send with every request.
DEADLINE_HEADERS = ("x-gateway-timeout", "x-stainless-timeout")


def caller_deadline(request: web.Request) -> float | None:
    """The monotonic time by which the caller gives up, if it told us."""
    for name in DEADLINE_HEADERS:
        value = request.headers.get(name)
        if value:
            try:
                seconds = float(value)
            except ValueError:
                continue
            if seconds > 0:
                return time.monotonic() + seconds
    return None


def parse_tags(value: str) -> dict[str, str]:
    try:
        return _tags.decode(value)
    except msgspec.DecodeError:
        raise BadRequest(f"{TAGS_HEADER} must be a JSON object of string keys to string values") from None


def _as_gateway_error(exc: web.HTTPException) -> GatewayError:
    if exc.status == 404:
        return NotFound("Unknown path")
    if exc.status == 405:
        return _MethodNotAllowed("Method not allowed")
    if exc.status == 413:
        return PayloadTooLarge("Request body is too large")
    err = BadRequest(exc.reason)
    return err


def error_response(request: web.Request, err: GatewayError, request_id: str) -> web.Response:
    body = ERROR_BODIES[dialect_for_path(request.path)](err)
    headers = {"x-request-id": request_id}
    if err.retry_after is not None:
        headers["retry-after"] = str(max(1, round(err.retry_after)))
    return web.Response(body=body, status=err.http_status, content_type="application/json", headers=headers)


@web.middleware
async def edge(request: web.Request, handler) -> web.StreamResponse:  # type: ignore[no-untyped-def]
    supplied = request.headers.get("x-request-id")
    request_id = supplied if supplied and _REQUEST_ID.match(supplied) else os.urandom(16).hex()
    api_type = api_type_of(request)
    ctx = RequestContext(request_id, api_type or "", request.headers.get("user-agent"), caller_deadline(request))
    request[CONTEXT] = ctx
    metrics.request_started()
    resp: web.StreamResponse | None = None
    try:
        if api_type is not None:
            authenticate(request, ctx)
            tags = request.headers.get(TAGS_HEADER)
            if tags:
                ctx.record.request_tags = parse_tags(tags)
        resp = await handler(request)
    except Exception as exc:  # noqa: BLE001 - the edge: every failure becomes an answer in the caller's shape
        resp = await _failed(request, ctx, exc)
    finally:
        metrics.request_ended()
        if api_type is not None:
            _account(request, ctx, resp)
    if not resp.prepared:
        resp.headers["x-request-id"] = request_id
    return resp


def authenticate(request: web.Request, ctx: RequestContext) -> None:
    token = extract_token(request.headers, request.query)
    if token is None:
        raise Unauthenticated("Missing API token: send 'Authorization: Bearer <token>'")
    principal = request.app[TOKENS].lookup(token)
    if principal is None:
        raise Unauthenticated("Invalid API token")
    ctx.principal = principal
    ctx.record.requester = principal.name


async def _failed(request: web.Request, ctx: RequestContext, exc: Exception) -> web.StreamResponse:
    started = request.get(STARTED_STREAM)
    if started is not None:
        # The status line is out: end that body with the API's error event (if it is not
        # complete yet) instead of rendering a second response into it.
        await started.fail(exc)
        await started.end()
        return started.response
    if isinstance(exc, GatewayError):
        err = exc
    elif isinstance(exc, web.HTTPException):
        err = _as_gateway_error(exc)
    else:
        log.error("request %s: unhandled error", ctx.request_id, exc_info=exc)
        err = GatewayError("Internal error; see the gateway log for request " + ctx.request_id)
    ctx.record.error_code = error_label(err)
    return error_response(request, err, ctx.request_id)


def _account(request: web.Request, ctx: RequestContext, resp: web.StreamResponse | None) -> None:
    rec = ctx.record
    elapsed = time.perf_counter() - ctx.started
    rec.latency_ms = round(elapsed * 1000, 3)
    if not rec.status_code:
        rec.status_code = resp.status if resp is not None else 500
    if rec.time_to_first_byte_ms is None:
        rec.time_to_first_byte_ms = rec.latency_ms
    metrics.observe_request(rec.endpoint or "", rec.api_type, rec.status_code, elapsed,
                            rec.time_to_first_byte_ms / 1000, rec.input_tokens, rec.output_tokens)
    if ctx.reservation is not None:
        ctx.reservation.settle(rec.total_tokens)
    request.app[WRITER].submit(rec)
    if ctx.capture is not None:
        # A whole reply is its body; a stream's chunks were kept as they were written.
        body = resp.body if isinstance(resp, web.Response) and isinstance(resp.body, bytes) else None
        request.app[INFERENCE_WRITER].submit(ctx.capture.record(rec, ctx.request_body, body))
