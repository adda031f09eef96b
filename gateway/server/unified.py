"""The unified OpenAI-compatible API: chat completions, embeddings, models."""

from __future__ import annotations

import uuid

from aiohttp import web

from gateway.codecs import openai_chat, openai_embeddings
from gateway.guards import reply_texts, request_texts
from gateway.pipeline import limits, passthrough
from gateway.pipeline.call import Call
from gateway.pipeline.dispatch import chat_attempt, embeddings_attempt
from gateway.pipeline.replies import EmbeddingReply, RawReply
from gateway.server.chat_flow import ChatAPI, find_endpoint, read_body, serve_chat, session_of
from gateway.server.responding import json_reply, record_usage
from gateway.server.permissions import visible
from gateway.state import APPS, CONTEXT, ENDPOINTS, LIMITER, ROUTER


OPENAI_CHAT = ChatAPI(
    attempt=chat_attempt(passthrough.openai_chat),
    encode_result=lambda call, result: openai_chat.encode_result(result, call.endpoint.name),
    stream_encoder=lambda call: openai_chat.OpenAIChatStreamEncoder(
        f"chatcmpl-{uuid.uuid4().hex}", call.endpoint.name, call.include_usage),
    raw_error_event=openai_chat.stream_error_event,
    request_texts=request_texts.OPENAI_CHAT,
    reply_format=reply_texts.OPENAI_CHAT,
)


_OPENAI_EMBEDDINGS = embeddings_attempt(passthrough.openai_embeddings)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await serve_chat_completions(request, await read_body(request))


async def serve_chat_completions(request: web.Request, body: bytes) -> web.StreamResponse:
    """A Chat Completions body, routed and answered in the same shape."""
    ctx = request[CONTEXT]
    view = openai_chat.decode_view(body)
    endpoint = find_endpoint(request, ctx, view.model, "chat")
    include_usage = bool(view.stream_options and view.stream_options.include_usage)
    call = Call(ctx, endpoint, body, stream=bool(view.stream), include_usage=include_usage,
                decode=openai_chat.decode_request, session=session_of(request, endpoint))
    return await serve_chat(request, OPENAI_CHAT, call)


async def embeddings(request: web.Request) -> web.Response:
    return await serve_embeddings(request, await read_body(request))


async def serve_embeddings(request: web.Request, body: bytes) -> web.Response:
    """An OpenAI-shaped embeddings body, routed and answered in the same shape."""
    ctx = request[CONTEXT]
    parsed = openai_embeddings.decode_request(body)
    endpoint = find_endpoint(request, ctx, parsed.model, "embeddings")
    call = Call(ctx, endpoint, body, stream=False, include_usage=False, decode=lambda _: parsed)
    await limits.enforce(call, request.app[LIMITER])
    reply = await request.app[ROUTER].route(call, _OPENAI_EMBEDDINGS)
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
        for name, ep in visible(ctx.principal, request.app[ENDPOINTS])
    ]
    data += [{"id": name, "object": "model", "created": 0, "owned_by": "gateway", "task": "agent"}
             for name, _ in visible(ctx.principal, request.app[APPS])]
    return web.json_response({"object": "list", "data": data}, headers={"x-request-id": ctx.request_id})
