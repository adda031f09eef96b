"""The path every chat API shares, whatever its wire format: read the body, find the
endpoint, route the call, and write the reply in the caller's format.

A client API is described once, as a ``ChatAPI``: its attempt (passthrough or
translation), how to encode a complete result, and how to encode a stream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from gateway.config import APP_PREFIX, EndpointConfig
from gateway.errors import BadRequest, EndpointNotFound, GatewayError, PayloadTooLarge
from gateway.ir import ChatResult, StreamEvent, Usage
from gateway.guards.reply_texts import ReplyFormat
from gateway.guards.request_texts import RequestTexts
from gateway.pipeline import guardrails, limits
from gateway.pipeline.call import Call, RequestContext
from gateway.pipeline.dispatch import Attempt
from gateway.pipeline.replies import EventStream, RawReply, RawStream, ResultReply
from gateway.server.permissions import require_query
from gateway.server.responding import SSE, json_reply, record_usage, relay_raw_stream, stream_events
from gateway.sinks.payloads import PayloadCapture
from gateway.state import APPS, CONFIG, CONTEXT, ENDPOINTS, JUDGE, LIMITER, ROUTER


class StreamEncoder(Protocol):
    usage: Usage | None
    output_chars: int

    def encode(self, events: list[StreamEvent]) -> bytes: ...
    def finish(self) -> bytes: ...
    def error_event(self, err: GatewayError) -> bytes: ...


class ChatAPI:
    """How one client API is served."""

    __slots__ = ("attempt", "encode_result", "stream_encoder", "raw_error_event", "stream_content_type",
                 "request_texts", "reply_format")

    def __init__(
        self, *, attempt: Attempt, encode_result: Callable[[Call, ChatResult], bytes],
        stream_encoder: Callable[[Call], StreamEncoder], raw_error_event: Callable[[GatewayError], bytes],
        request_texts: RequestTexts, reply_format: ReplyFormat | None,
        stream_content_type: Callable[[Call], str] = lambda call: SSE,
    ) -> None:
        self.attempt = attempt
        self.encode_result = encode_result
        self.stream_encoder = stream_encoder
        self.raw_error_event = raw_error_event  # an in-stream error for a relayed stream
        self.stream_content_type = stream_content_type
        #: Where input guardrails read the request's text, and how they read a relayed reply
        #: (None: this API is never relayed, its replies are always IR).
        self.request_texts = request_texts
        self.reply_format = reply_format


async def read_body(request: web.Request) -> bytes:
    """The request body, refusing oversized ones before reading them where the length is known."""
    limit = request.app[CONFIG].server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request body is larger than the {limit} byte limit")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"Request body is larger than the {limit} byte limit") from None
    request[CONTEXT].request_body = body  # a reference, for an inference table
    return body


def find_endpoint(request: web.Request, ctx: RequestContext, name: str, task: str) -> EndpointConfig:
    """The endpoint a request names (or the agent app, for ``apps/<name>``), recorded on the
    usage row; 404, 403 or 400 in the caller's shape."""
    endpoint = request.app[ENDPOINTS].get(name)
    if endpoint is None:
        # Endpoint names have no '/': apps are looked up only once no endpoint matched.
        endpoint = request.app[APPS].get(name)
        if endpoint is None:
            what = f"App '{name.removeprefix(APP_PREFIX)}'" if name.startswith(APP_PREFIX) else f"Endpoint '{name}'"
            raise EndpointNotFound(f"{what} does not exist", param="model")
    ctx.record.endpoint = endpoint.name
    require_query(ctx.principal, endpoint)
    if endpoint.task != task:
        raise BadRequest(f"Endpoint '{name}' serves {endpoint.task}, not {task}", param="model")
    if endpoint.inference_table.enabled:
        ctx.capture = PayloadCapture(endpoint.inference_table.max_payload_bytes)
    return endpoint


def session_of(request: web.Request, endpoint: EndpointConfig) -> str | None:
    """The session-affinity key, if the endpoint names a session header and it was sent."""
    header = endpoint.routing.session_header
    return request.headers.get(header) if header else None


def input_chars(call: Call) -> Callable[[], int]:
    """Prompt characters for a token estimate, computed only if the provider reported none."""
    def count() -> int:
        try:
            return call.ir.prompt_chars()
        except BadRequest:
            return len(call.body)
    return count


async def serve_chat(request: web.Request, api: ChatAPI, call: Call) -> web.StreamResponse:
    """Route ``call`` and answer in the caller's format."""
    ctx = call.ctx
    ctx.record.streaming = call.stream
    await limits.enforce(call, request.app[LIMITER])
    guarded = call.endpoint.guardrails is not None
    if guarded:
        await guardrails.check_input(call, api.request_texts, request.app[JUDGE])
    reply = await request.app[ROUTER].route(call, api.attempt)
    if guarded:
        reply = await guardrails.check_output(call, reply, api.reply_format, request.app[JUDGE], input_chars(call))
    if isinstance(reply, RawReply):
        record_usage(ctx, reply.usage, input_chars(call), reply.output_chars)
        return json_reply(ctx, reply.body)
    if isinstance(reply, ResultReply):
        record_usage(ctx, reply.result.usage, input_chars(call), reply.result.output_chars())
        return json_reply(ctx, api.encode_result(call, reply.result))
    if isinstance(reply, (RawStream, EventStream)):
        # The provider stream is open: whatever fails before a writer owns it must close it.
        try:
            content_type = api.stream_content_type(call)
            encoder = api.stream_encoder(call) if isinstance(reply, EventStream) else None
        except BaseException:
            await reply.stream.aclose()
            raise
        if encoder is None:
            return await relay_raw_stream(request, ctx, reply, api.raw_error_event, input_chars(call), content_type)
        return await stream_events(request, ctx, reply, encoder, encoder.error_event, input_chars(call), content_type)
    raise AssertionError(f"unexpected reply {type(reply).__name__}")
