"""The unified OpenAI-compatible API: chat completions, embeddings, models."""

from __future__ import annotations

import uuid

from aiohttp import web

from gateway.codecs import openai_chat, openai_embeddings
from gateway.config import EndpointConfig
from gateway.errors import BadRequest, EndpointNotFound, PayloadTooLarge
from gateway.pipeline.call import Call, RequestContext
from gateway.pipeline import passthrough
from gateway.pipeline.dispatch import chat_attempt, openai_embeddings_attempt
from gateway.pipeline.replies import EmbeddingReply, EventStream, RawReply, RawStream, ResultReply
from gateway.server.responding import json_reply, record_usage, relay_raw_stream, stream_events
from gateway.state import CONFIG, CONTEXT, ENDPOINTS, ROUTER


_OPENAI_CHAT = chat_attempt(passthrough.openai_chat)


async def read_body(request: web.Request) -> bytes:
    """The request body, refusing oversized ones before reading them where the length is known."""
    limit = request.app[CONFIG].server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request body is larger than the {limit} byte limit")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"Request body is larger than the {limit} byte limit") from None


def find_endpoint(request: web.Request, ctx: RequestContext, name: str, task: str) -> EndpointConfig:
    endpoint = request.app[ENDPOINTS].get(name)
    if endpoint is None:
        raise EndpointNotFound(f"Endpoint '{name}' does not exist", param="model")
    ctx.record.endpoint = endpoint.name
    if endpoint.task != task:
        raise BadRequest(f"Endpoint '{name}' serves {endpoint.task}, not {task}", param="model")
    return endpoint


def session_of(request: web.Request, endpoint: EndpointConfig) -> str | None:
    """The session-affinity key, if the endpoint names a session header and it was sent."""
    header = endpoint.routing.session_header
    return request.headers.get(header) if header else None


def _input_chars(call: Call):  # type: ignore[no-untyped-def]
    def count() -> int:
        try:
            return call.ir.prompt_chars()
        except BadRequest:
            return len(call.body)
    return count


async def chat_completions(request: web.Request) -> web.StreamResponse:
    ctx = request[CONTEXT]
    body = await read_body(request)
    view = openai_chat.decode_view(body)
    endpoint = find_endpoint(request, ctx, view.model, "chat")
    stream = bool(view.stream)
    ctx.record.streaming = stream
    include_usage = bool(view.stream_options and view.stream_options.include_usage)
    call = Call(ctx, endpoint, body, stream=stream, include_usage=include_usage, decode=openai_chat.decode_request,
                session=session_of(request, endpoint))
    reply = await request.app[ROUTER].route(call, _OPENAI_CHAT)
    if isinstance(reply, RawReply):
        record_usage(ctx, reply.usage, _input_chars(call), reply.output_chars)
        return json_reply(ctx, reply.body)
    if isinstance(reply, ResultReply):
        result = reply.result
        record_usage(ctx, result.usage, _input_chars(call), result.output_chars())
        return json_reply(ctx, openai_chat.encode_result(result, endpoint.name))
    if isinstance(reply, RawStream):
        return await relay_raw_stream(request, ctx, reply, openai_chat.stream_error_event, _input_chars(call))
    if isinstance(reply, EventStream):
        encoder = openai_chat.OpenAIChatStreamEncoder(f"chatcmpl-{uuid.uuid4().hex}", endpoint.name, include_usage)
        return await stream_events(request, ctx, reply, encoder, openai_chat.stream_error_event, _input_chars(call))
    raise AssertionError(f"unexpected reply {type(reply).__name__}")


async def embeddings(request: web.Request) -> web.Response:
    ctx = request[CONTEXT]
    body = await read_body(request)
    parsed = openai_embeddings.decode_request(body)
    endpoint = find_endpoint(request, ctx, parsed.model, "embeddings")
    call = Call(ctx, endpoint, body, stream=False, include_usage=False, decode=lambda _: parsed)
    reply = await request.app[ROUTER].route(call, openai_embeddings_attempt)
    chars = sum(len(i) for i in parsed.input if isinstance(i, str))
    if isinstance(reply, RawReply):
        record_usage(ctx, reply.usage, lambda: chars, 0)
        return json_reply(ctx, reply.body)
    assert isinstance(reply, EmbeddingReply)
    record_usage(ctx, reply.result.usage, lambda: chars, 0)
    return json_reply(ctx, openai_embeddings.encode_result(reply.result, endpoint.name, parsed.encoding_format))


async def list_models(request: web.Request) -> web.Response:
    ctx = request[CONTEXT]
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "gateway", "task": ep.task}
        for name, ep in request.app[ENDPOINTS].items()
    ]
    return web.json_response({"object": "list", "data": data}, headers={"x-request-id": ctx.request_id})
