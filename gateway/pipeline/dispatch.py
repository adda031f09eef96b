"""One attempt against one served entity: passthrough when the provider speaks the
caller's format, translation through the IR otherwise."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.errors import BadRequest, UpstreamInvalidResponse
from gateway.pipeline.call import Call
from gateway.pipeline.replies import EmbeddingReply, EventStream, Reply, ResultReply
from gateway.providers.base import Provider, Target
from gateway.wire.openai_embeddings import EmbeddingsInput

#: A same-format passthrough: the reply, or None when the provider speaks another format.
Passthrough = Callable[[Call, Provider, Target], Awaitable[Reply | None]]
Attempt = Callable[[Call, Provider, Target], Awaitable[Reply]]


async def translate(call: Call, provider: Provider, target: Target) -> Reply:
    """The IR path: the caller's request decoded, encoded for the provider, and back."""
    if call.stream:
        return EventStream(await provider.open_stream(call.ir, target))
    return ResultReply(await provider.complete(call.ir, target))


def chat_attempt(passthrough: Passthrough) -> Attempt:
    """An attempt for a chat API: its passthrough where it applies, else translation."""

    async def attempt(call: Call, provider: Provider, target: Target) -> Reply:
        reply = await passthrough(call, provider, target)
        return reply if reply is not None else await translate(call, provider, target)

    return attempt


async def translate_embeddings(call: Call, provider: Provider, target: Target) -> Reply:
    """Embeddings through the IR: ``call.ir`` is an EmbeddingsInput."""
    inputs: EmbeddingsInput = call.ir
    if not all(isinstance(i, str) for i in inputs.input):
        raise BadRequest(f"provider '{provider.name}' takes text input only, not token arrays", param="input")
    result = await provider.embed(inputs.input, target, inputs.dimensions)  # type: ignore[arg-type]
    if len(result.vectors) != len(inputs.input):
        raise UpstreamInvalidResponse(f"provider '{provider.name}' returned {len(result.vectors)} embeddings for {len(inputs.input)} inputs")
    return EmbeddingReply(result)


def embeddings_attempt(passthrough: Passthrough | None = None) -> Attempt:
    """An attempt for an embeddings API: its passthrough where it applies, else translation."""

    async def attempt(call: Call, provider: Provider, target: Target) -> Reply:
        reply = await passthrough(call, provider, target) if passthrough is not None else None
        return reply if reply is not None else await translate_embeddings(call, provider, target)

    return attempt
