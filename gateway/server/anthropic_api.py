"""The native Anthropic Messages API: ``/anthropic/v1/messages`` (stream and not),
``/anthropic/v1/messages/count_tokens`` and ``/anthropic/v1/models``.

Token counts come exactly from an Anthropic provider, else as the documented estimate.
To an Anthropic provider the request passes through untouched but for ``model`` (thinking
blocks and their signatures, ``cache_control``, server tools, betas and unknown fields
included), with the caller's ``anthropic-version`` / ``anthropic-beta`` headers and query
string; to any other provider it is translated.
"""

from __future__ import annotations

import uuid

import msgspec
from aiohttp import web

from gateway.codecs import anthropic_messages as codec
from gateway.guards import reply_texts, request_texts
from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.base import Target
from gateway.providers.http import read_body as read_upstream
from gateway.streaming.passthrough import rewrite_request
from gateway.pipeline import passthrough
from gateway.pipeline.call import Call
from gateway.pipeline.dispatch import chat_attempt
from gateway.server.chat_flow import ChatAPI, find_endpoint, read_body, serve_chat, session_of
from gateway.server.responding import json_reply
from gateway.server.permissions import visible
from gateway.server.token_counting import answer_count
from gateway.state import CONTEXT, ENDPOINTS


class _Counted(msgspec.Struct):
    input_tokens: int


_counted = msgspec.json.Decoder(_Counted)


class _StreamEncoder(codec.AnthropicStreamEncoder):
    error_event = staticmethod(codec.stream_error_event)


ANTHROPIC = ChatAPI(
    attempt=chat_attempt(passthrough.anthropic),
    encode_result=lambda call, result: codec.encode_result(result, call.endpoint.name),
    stream_encoder=lambda call: _StreamEncoder(call.reply_id, call.endpoint.name),
    raw_error_event=codec.stream_error_event,
    request_texts=request_texts.ANTHROPIC,
    reply_format=reply_texts.ANTHROPIC,
)


async def create_message(request: web.Request) -> web.StreamResponse:
    ctx = request[CONTEXT]
    body = await read_body(request)
    view = codec.decode_view(body)
    endpoint = find_endpoint(request, ctx, view.model, "chat")
    # Anthropic streams always carry usage, so the IR is asked for it too.
    call = Call(ctx, endpoint, body, stream=bool(view.stream), include_usage=True, decode=codec.decode_request,
                session=session_of(request, endpoint), headers=request.headers, query=request.query,
                reply_id=f"msg_{uuid.uuid4().hex[:24]}")
    return await serve_chat(request, ANTHROPIC, call)


async def count_tokens(request: web.Request) -> web.Response:
    """Exact from an Anthropic provider; else the documented estimate, (characters + 1) / 4
    of the prompt and tool schemas (also when the provider cannot be reached)."""
    ctx = request[CONTEXT]
    body = await read_body(request)
    view = codec.decode_view(body)
    endpoint = find_endpoint(request, ctx, view.model, "chat")
    request_ir = codec.decode_count_tokens_request(body)  # validates, whoever counts

    async def ask(provider: AnthropicProvider, target: Target) -> bytes:  # type: ignore[override]
        resp = await provider.passthrough(rewrite_request(body, target.model), target, request.headers,
                                          request.query, count_tokens=True)
        data = await read_upstream(resp, provider.name)
        _counted.decode(data)
        return data

    return await answer_count(request, ctx, endpoint, AnthropicProvider, ask,  # type: ignore[arg-type]
                              lambda: codec.encode_count_tokens(codec.count_tokens_estimate(request_ir)))


async def list_models(request: web.Request) -> web.Response:
    """The endpoints in Anthropic's model-list shape (coding agents probe it)."""
    ctx = request[CONTEXT]
    data = [
        {"type": "model", "id": name, "display_name": name, "created_at": "2025-01-01T00:00:00Z"}
        for name, ep in visible(ctx.principal, request.app[ENDPOINTS]) if ep.task == "chat"
    ]
    body = {"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}
    return web.json_response(body, headers={"x-request-id": ctx.request_id})


async def probe(request: web.Request) -> web.Response:
    """Claude Code sends ``HEAD`` to its base URL before the first request."""
    return web.Response(status=200)
