"""The provider contract.

A provider is built once per configured provider and holds its transport (base URL,
auth headers, pooled session). It speaks one wire format (``wire``); the router sends it
IR requests, or, when the caller speaks the same format, the caller's bytes untouched
(``passthrough``).

Failures are raised as GatewayError. ``open_stream`` raises before returning when the
upstream refuses the request, so the router can still fall back; errors after that are
raised from the iteration.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import ClassVar, Generic, Literal, Protocol, TypeVar

import msgspec
from yarl import URL

from gateway.config import ProviderConfig, Timeouts
from gateway.errors import UpstreamTimeout
from gateway.ir import ChatRequest, ChatResult, EmbeddingResult, StreamEvent
from gateway.providers.http import HttpClients, iter_chunks
from gateway.providers.upstream_client import OriginPool, UpstreamResponse

T = TypeVar("T")
WireFormat = Literal["openai_chat", "openai_responses", "anthropic_messages", "gemini", "in_process"]


class Target(msgspec.Struct, frozen=True):
    """What one attempt asks of a provider: its model, and the timeouts in force for it
    (the served entity's own, else the provider's, cut to the caller's deadline)."""

    model: str
    timeouts: Timeouts


class ProviderStream(Generic[T]):
    """An opened upstream stream: ``async for item in stream`` yields lists of IR events
    (or raw byte chunks, for the same-format relay).

    ``prime()`` waits for the first item before anything is sent to the caller, so a
    failure or a slow first token can still fall back. ``aclose()`` stops the stream and
    drops the upstream connection, even when iteration never began: closing a generator
    that never started runs none of its cleanup, so the stream holds the ``response``.
    """

    def __init__(self, items: AsyncIterator[T], response: UpstreamResponse | None = None) -> None:
        self._items = items
        self._response = response
        self._head: list[T] = []

    async def prime(self, timeout: float | None, provider: str) -> None:
        """Read ahead to the first item, within ``timeout`` seconds if given."""
        try:
            async with asyncio.timeout(timeout):
                self._head.append(await anext(self._items))
        except StopAsyncIteration:
            pass
        except TimeoutError:
            await self.aclose()
            raise UpstreamTimeout(f"provider '{provider}' sent no first token within {timeout:g}s") from None
        except BaseException:
            await self.aclose()
            raise

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while self._head:
            yield self._head.pop(0)
        async for item in self._items:
            yield item

    async def aclose(self) -> None:
        aclose = getattr(self._items, "aclose", None)
        if aclose is not None:
            await aclose()
        if self._response is not None and not self._response.closed:
            self._response.close()


class StreamDecoder(Protocol):
    """An incremental provider-stream decoder: pure over bytes."""

    def feed(self, chunk: bytes) -> list[StreamEvent]: ...
    def finish(self) -> list[StreamEvent]: ...


def decoded_stream(resp: UpstreamResponse, provider: str, decoder: StreamDecoder) -> ProviderStream[list[StreamEvent]]:
    """An upstream response body as a ProviderStream of IR event batches."""

    async def batches() -> AsyncIterator[list[StreamEvent]]:
        # aclosing: a decode error or an early aclose() must still drop the upstream connection.
        async with aclosing(iter_chunks(resp, provider)) as chunks:
            async for chunk in chunks:
                events = decoder.feed(chunk)
                if events:
                    yield events
        tail = decoder.finish()
        if tail:
            yield tail

    return ProviderStream(batches(), resp)


class Provider:
    """Base class: subclasses set ``wire`` and implement what their API supports."""

    wire: ClassVar[WireFormat]
    #: The part of an upstream URL after the base, for paths a passthrough forwards to.
    default_base_url: ClassVar[str] = ""

    def __init__(self, name: str, config: ProviderConfig, http: HttpClients) -> None:
        self.name = name
        self.config = config
        self.http = http
        self.base_url = (config.base_url or self.default_base_url).rstrip("/")

    def session(self, url: URL) -> OriginPool:
        """The pooled session for an upstream URL, sized by this provider's ``max_connections``."""
        return self.http.session_for(url, self.config.max_connections)

    async def complete(self, request: ChatRequest, target: Target) -> ChatResult:
        """One non-streaming chat turn against ``target.model``."""
        raise NotImplementedError

    async def open_stream(self, request: ChatRequest, target: Target) -> ProviderStream[list[StreamEvent]]:
        """Start a streaming chat turn; returns once the upstream accepted it."""
        raise NotImplementedError

    async def embed(self, inputs: list[str], target: Target, dimensions: int | None = None) -> EmbeddingResult:
        """Embed each input string."""
        raise NotImplementedError
