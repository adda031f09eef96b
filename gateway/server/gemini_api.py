"""The native Gemini API: ``/gemini/{v1beta|v1}/models/{endpoint}:{method}`` and the model list.

The endpoint is named in the path. generateContent and streamGenerateContent (SSE with
``?alt=sse``, else Gemini's JSON-array stream) go through the shared chat flow;
embedContent and batchEmbedContents are translated to whatever serves the endpoint;
countTokens asks a Gemini provider, else answers with the documented estimate.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from gateway.codecs import gemini
from gateway.guards import reply_texts, request_texts
from gateway.providers.base import Target
from gateway.providers.gemini import GeminiProvider
from gateway.providers.http import read_body as read_upstream
from gateway.errors import NotFound
from gateway.pipeline import limits, passthrough
from gateway.pipeline.call import Call
from gateway.pipeline.dispatch import chat_attempt, embeddings_attempt
from gateway.pipeline.replies import EmbeddingReply
from gateway.server.chat_flow import ChatAPI, find_endpoint, read_body, serve_chat, session_of
from gateway.server.responding import JSON, SSE, json_reply, record_usage
from gateway.server.permissions import visible
from gateway.server.token_counting import answer_count
from gateway.state import CONTEXT, ENDPOINTS, LIMITER, ROUTER
from gateway.wire.openai_embeddings import EmbeddingsInput


class _Counted(msgspec.Struct):
    totalTokens: int  # noqa: N815 - Gemini's field name


_counted = msgspec.json.Decoder(_Counted)


def _sse(call: Call) -> bool:
    return call.query.get("alt") == "sse"


GEMINI = ChatAPI(
    attempt=chat_attempt(passthrough.gemini),
    encode_result=lambda call, result: gemini.encode_result(result, call.endpoint.name),
    stream_encoder=lambda call: gemini.GeminiStreamEncoder(call.endpoint.name, sse=_sse(call)),
    raw_error_event=lambda err: gemini.stream_error_event(err, sse=True),
    stream_content_type=lambda call: SSE if _sse(call) else JSON,
    request_texts=request_texts.GEMINI,
    reply_format=reply_texts.GEMINI,
)
_EMBED = embeddings_attempt()


async def call_model(request: web.Request) -> web.StreamResponse:
    """POST models/{endpoint}:{method}."""
    ctx = request[CONTEXT]
    name, _, method = request.match_info["call"].rpartition(":")
    if not name or method not in _METHODS:
        raise NotFound(f"Unknown method: models/{request.match_info['call']}")
    body = await read_body(request)
    return await _METHODS[method](request, ctx, name, body)


async def _generate(request: web.Request, ctx, name: str, body: bytes, *, stream: bool) -> web.StreamResponse:  # type: ignore[no-untyped-def]
    endpoint = find_endpoint(request, ctx, name, "chat")
    call = Call(ctx, endpoint, body, stream=stream, include_usage=True,
                decode=lambda b: gemini.decode_request(b, endpoint.name, stream),
                session=session_of(request, endpoint), query=request.query)
    return await serve_chat(request, GEMINI, call)


async def _generate_content(request: web.Request, ctx, name: str, body: bytes) -> web.StreamResponse:  # type: ignore[no-untyped-def]
    return await _generate(request, ctx, name, body, stream=False)


async def _stream_generate_content(request: web.Request, ctx, name: str, body: bytes) -> web.StreamResponse:  # type: ignore[no-untyped-def]
    return await _generate(request, ctx, name, body, stream=True)


async def _count_tokens(request: web.Request, ctx, name: str, body: bytes) -> web.Response:  # type: ignore[no-untyped-def]
    """Exact from a Gemini provider; else the documented estimate (also when it fails)."""
    endpoint = find_endpoint(request, ctx, name, "chat")
    request_ir = gemini.decode_count_tokens_request(body, endpoint.name)

    async def ask(provider: GeminiProvider, target: Target) -> bytes:
        data = await read_upstream(await provider.passthrough("countTokens", body, target), provider.name)
        _counted.decode(data)
        return data

    return await answer_count(request, ctx, endpoint, GeminiProvider, ask,  # type: ignore[arg-type]
                              lambda: gemini.encode_count_tokens(gemini.count_tokens_estimate(request_ir)))


async def _embed(request: web.Request, ctx, name: str, body: bytes, *, batch: bool) -> web.Response:  # type: ignore[no-untyped-def]
    endpoint = find_endpoint(request, ctx, name, "embeddings")
    decode = gemini.decode_batch_embed_request if batch else gemini.decode_embed_request
    texts, dimensions = decode(body, endpoint.name)
    inputs = EmbeddingsInput(endpoint.name, texts, "float", dimensions)
    call = Call(ctx, endpoint, body, stream=False, include_usage=False, decode=lambda _: inputs)
    await limits.enforce(call, request.app[LIMITER])
    reply = await request.app[ROUTER].route(call, _EMBED)
    assert isinstance(reply, EmbeddingReply)
    record_usage(ctx, reply.result.usage, lambda: sum(map(len, texts)), 0)
    encode = gemini.encode_batch_embed_result if batch else gemini.encode_embed_result
    return json_reply(ctx, encode(reply.result))


async def _embed_content(request: web.Request, ctx, name: str, body: bytes) -> web.Response:  # type: ignore[no-untyped-def]
    return await _embed(request, ctx, name, body, batch=False)


async def _batch_embed_contents(request: web.Request, ctx, name: str, body: bytes) -> web.Response:  # type: ignore[no-untyped-def]
    return await _embed(request, ctx, name, body, batch=True)


_METHODS = {
    "generateContent": _generate_content,
    "streamGenerateContent": _stream_generate_content,
    "countTokens": _count_tokens,
    "embedContent": _embed_content,
    "batchEmbedContents": _batch_embed_contents,
}


async def list_models(request: web.Request) -> web.Response:
    """The endpoints in Gemini's model-list shape (Gemini CLI probes it)."""
    ctx = request[CONTEXT]
    models = [
        {
            "name": f"models/{name}", "version": "gateway", "displayName": name, "description": f"gateway endpoint {name}",
            "inputTokenLimit": 1_048_576, "outputTokenLimit": 65_536,
            "supportedGenerationMethods": ["embedContent", "batchEmbedContents"] if ep.task == "embeddings"
            else ["generateContent", "streamGenerateContent", "countTokens"],
        }
        for name, ep in visible(ctx.principal, request.app[ENDPOINTS])
    ]
    return web.json_response({"models": models}, headers={"x-request-id": ctx.request_id})
