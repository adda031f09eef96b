"""One attempt against one served entity: passthrough when the provider speaks the
caller's format, translation through the IR otherwise."""

from __future__ import annotations

from gateway.errors import BadRequest, UpstreamInvalidResponse
from gateway.pipeline.call import Call
from gateway.pipeline.replies import EmbeddingReply, EventStream, RawReply, RawStream, Reply, ResultReply
from gateway.providers.base import Provider, ProviderStream, Target
from gateway.providers.http import iter_chunks, read_body
from gateway.providers.openai import OpenAIProvider
from gateway.streaming.passthrough import ChatStreamSniffer, rewrite_request, sniff_completion, sniff_embeddings
from gateway.wire.openai_embeddings import EmbeddingsInput


async def openai_chat_attempt(call: Call, provider: Provider, target: Target) -> Reply:
    """A Chat Completions call: bytes through to OpenAI-format providers, IR to the rest."""
    if isinstance(provider, OpenAIProvider):
        ask_usage = call.stream and not call.include_usage
        body = rewrite_request(call.body, target.model, request_usage=ask_usage)
        resp = await provider.passthrough("/chat/completions", body, target.timeouts)
        if call.stream:
            chunks = ProviderStream(iter_chunks(resp, provider.name), resp)
            return RawStream(chunks, ChatStreamSniffer(drop_usage_chunk=ask_usage))
        data = await read_body(resp, provider.name)
        usage, chars = sniff_completion(data, provider.name)
        return RawReply(data, usage, chars)
    if call.stream:
        return EventStream(await provider.open_stream(call.ir, target))
    return ResultReply(await provider.complete(call.ir, target))


async def openai_embeddings_attempt(call: Call, provider: Provider, target: Target) -> Reply:
    """An Embeddings call: bytes through to OpenAI-format providers, IR to the rest."""
    if isinstance(provider, OpenAIProvider):
        resp = await provider.passthrough("/embeddings", rewrite_request(call.body, target.model), target.timeouts)
        data = await read_body(resp, provider.name)
        return RawReply(data, sniff_embeddings(data, provider.name), 0)
    inputs: EmbeddingsInput = call.ir
    if not all(isinstance(i, str) for i in inputs.input):
        raise BadRequest(f"provider '{provider.name}' takes text input only, not token arrays", param="input")
    result = await provider.embed(inputs.input, target, inputs.dimensions)  # type: ignore[arg-type]
    if len(result.vectors) != len(inputs.input):
        raise UpstreamInvalidResponse(f"provider '{provider.name}' returned {len(result.vectors)} embeddings for {len(inputs.input)} inputs")
    return EmbeddingReply(result)
