"""What an attempt hands back to the edge, before anything is written to the caller."""

from __future__ import annotations

import msgspec

from gateway.ir import ChatResult, EmbeddingResult, StreamEvent, Usage
from gateway.providers.base import ProviderStream
from gateway.streaming.passthrough import ChatStreamSniffer


class RawReply(msgspec.Struct):
    """A complete upstream body in the caller's own format (passthrough)."""

    body: bytes
    usage: Usage | None
    output_chars: int


class RawStream(msgspec.Struct):
    """An opened upstream stream in the caller's own format, relayed chunk by chunk."""

    stream: ProviderStream[bytes]
    sniffer: ChatStreamSniffer


class ResultReply(msgspec.Struct):
    result: ChatResult


class EventStream(msgspec.Struct):
    stream: ProviderStream[list[StreamEvent]]


class EmbeddingReply(msgspec.Struct):
    result: EmbeddingResult


Reply = RawReply | RawStream | ResultReply | EventStream | EmbeddingReply
