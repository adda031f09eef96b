"""Same-format passthroughs, one per client API: the caller's bytes go to a provider that
speaks its format with only the model changed, and the reply's bytes come back untouched
while usage is sniffed from them. Each returns None for a provider of another format."""

from __future__ import annotations

import msgspec

from gateway.config import AgentAPI
from gateway.errors import UpstreamInvalidResponse
from gateway.pipeline.call import Call
from gateway.pipeline.replies import RawReply, RawStream, Reply
from gateway.providers.base import Provider, ProviderStream, Target
from gateway.providers.http import iter_chunks, read_body
from gateway.providers.agent_app import AgentAppProvider
from gateway.providers import anthropic as anthropic_provider
from gateway.providers import gemini as gemini_provider
from gateway.providers.anthropic import AnthropicProvider, AnthropicStreamDecoder
from gateway.providers.gemini import GeminiProvider, GeminiStreamDecoder
from gateway.providers.openai import OpenAIProvider
from gateway.streaming.passthrough import ChatStreamSniffer, rewrite_request, sniff_completion, sniff_embeddings
from gateway.streaming.responses_sniff import ResponsesStreamSniffer, decode_response_view, sniff_response
from gateway.streaming.sniff import EventSniffer, anthropic_block_chars, gemini_text_chars


async def openai_chat(call: Call, provider: Provider, target: Target) -> Reply | None:
    """Chat Completions to an OpenAI or OpenAI-compatible server, or an agent app that serves it."""
    if isinstance(provider, AgentAppProvider):
        return await agent_app(call, provider, target, "chat_completions")
    if not isinstance(provider, OpenAIProvider):
        return None
    ask_usage = call.stream and not call.include_usage
    body = rewrite_request(call.body, target.model, request_usage=ask_usage)
    resp = await provider.passthrough("/chat/completions", body, target)
    if call.stream:
        return RawStream(ProviderStream(iter_chunks(resp, provider.name), resp), ChatStreamSniffer(drop_usage_chunk=ask_usage))
    data = await read_body(resp, provider.name)
    usage, chars = sniff_completion(data, provider.name)
    return RawReply(data, usage, chars)


async def openai_embeddings(call: Call, provider: Provider, target: Target) -> Reply | None:
    """Embeddings to an OpenAI or OpenAI-compatible server."""
    if not isinstance(provider, OpenAIProvider):
        return None
    resp = await provider.passthrough("/embeddings", rewrite_request(call.body, target.model), target)
    data = await read_body(resp, provider.name)
    return RawReply(data, sniff_embeddings(data, provider.name), 0)


async def gemini(call: Call, provider: Provider, target: Target) -> Reply | None:
    """generateContent to a Gemini provider: the body goes as it came (the model is in the
    URL). JSON-array streams are re-encoded instead, from the SSE the provider is asked for."""
    sse = call.query.get("alt") == "sse"
    if not isinstance(provider, GeminiProvider) or (call.stream and not sse):
        return None
    method = "streamGenerateContent" if call.stream else "generateContent"
    resp = await provider.passthrough(method, call.body, target, sse=True)
    if call.stream:
        return RawStream(ProviderStream(iter_chunks(resp, provider.name), resp),
                         EventSniffer(GeminiStreamDecoder(provider.name), gemini_text_chars))
    data = await read_body(resp, provider.name)
    result = gemini_provider.decode_result(data, target.model, provider.name)
    return RawReply(data, result.usage, result.output_chars())


async def openai_responses(call: Call, provider: Provider, target: Target) -> Reply | None:
    """Responses to OpenAI itself, or Azure OpenAI's v1 API (compatible servers rarely serve
    /responses: they get the request translated to Chat Completions), or an agent app that
    serves Responses."""
    if isinstance(provider, AgentAppProvider):
        return await agent_app(call, provider, target, "responses")
    if not isinstance(provider, OpenAIProvider) or not provider.serves_responses:
        return None
    resp = await provider.passthrough("/responses", rewrite_request(call.body, target.model), target)
    if call.stream:
        return RawStream(ProviderStream(iter_chunks(resp, provider.name), resp), ResponsesStreamSniffer())
    data = await read_body(resp, provider.name)
    try:
        view = decode_response_view(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise UpstreamInvalidResponse(f"provider '{provider.name}' sent a response that is not a valid JSON object") from None
    return RawReply(data, view.usage.to_ir() if view.usage else None, 0)


async def anthropic(call: Call, provider: Provider, target: Target) -> Reply | None:
    """Messages to an Anthropic provider, with the caller's version, betas and query."""
    if not isinstance(provider, AnthropicProvider):
        return None
    body = rewrite_request(call.body, target.model)
    resp = await provider.passthrough(body, target, call.headers, call.query)
    if call.stream:
        return RawStream(ProviderStream(iter_chunks(resp, provider.name), resp),
                         EventSniffer(AnthropicStreamDecoder(provider.name), anthropic_block_chars))
    data = await read_body(resp, provider.name)
    result = anthropic_provider.decode_result(data, provider.name)
    return RawReply(data, result.usage, result.output_chars())


async def agent_app(call: Call, provider: AgentAppProvider, target: Target, api: AgentAPI) -> Reply | None:
    """A caller of the API the app serves: the body goes as sent (an app's caller already
    names it as its model), and the reply's bytes come back untouched. Nothing is added to
    the request: an agent may refuse fields it does not know, such as ``stream_options``."""
    if not provider.serves(api):
        return None
    body = call.body if target.model == call.endpoint.name else rewrite_request(call.body, target.model)
    resp = await provider.post(body, target)
    if call.stream:
        sniffer = ChatStreamSniffer(drop_usage_chunk=False) if api == "chat_completions" else ResponsesStreamSniffer()
        return RawStream(ProviderStream(iter_chunks(resp, provider.name), resp), sniffer)
    data = await read_body(resp, provider.name)
    if api == "chat_completions":
        usage, chars = sniff_completion(data, provider.name)
    else:
        try:
            usage, chars = sniff_response(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise UpstreamInvalidResponse(f"provider '{provider.name}' sent a response that is not a valid JSON object") from None
    return RawReply(data, usage, chars)
