"""Usage sniffing for same-format stream relays.

A relayed stream goes to the caller byte for byte; beside it, its events are fed to the
provider's own stream decoder (the one translation uses), which yields usage and text
for the usage record. An error event the upstream put in the stream has already reached
the caller as it was sent: the sniffer only notes it.

Most events of a stream are text deltas, and the record needs only their length: a
``measure`` reads that from a small view of the event, and only the rest (usage, the
end of the stream, errors, anything it does not recognise) goes through the decoder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import msgspec

from gateway.errors import GatewayError
from gateway.ir import StreamEvent, TextDelta, ThinkingDelta, ToolCallDelta, Usage, UsageEvent
from gateway.streaming.sse import SSEDecoder, SSEEvent

#: The text length of an event, or None to hand the event to the decoder.
Measure = Callable[[SSEEvent], "int | None"]


class EventDecoder(Protocol):
    """A provider stream decoder fed framed events (``SSEEventDecoder``)."""

    def feed_events(self, events: list[SSEEvent]) -> list[StreamEvent]: ...
    def finish(self) -> list[StreamEvent]: ...


class EventSniffer:
    """``relay(chunk)`` returns the chunk untouched, having noted usage and characters."""

    __slots__ = ("_decoder", "_sse", "_measure", "usage", "chars", "error")

    def __init__(self, decoder: EventDecoder, measure: Measure | None = None) -> None:
        self._decoder = decoder
        self._sse = SSEDecoder()
        self._measure = measure
        self.usage: Usage | None = None
        self.chars = 0
        self.error: GatewayError | None = None

    def relay(self, chunk: bytes) -> bytes:
        if self.error is None:
            events = self._sse.feed(chunk)
            if events:
                self._decode(events)
        return chunk

    def finish(self) -> bytes:
        if self.error is None:
            self._decode(self._sse.finish())
        if self.error is None:
            try:
                self._note(self._decoder.finish())
            except GatewayError as err:
                self.error = err
        return b""

    def _decode(self, events: list[SSEEvent]) -> None:
        measure = self._measure
        if measure is not None:
            rest: list[SSEEvent] = []
            for ev in events:
                chars = measure(ev)
                if chars is None:
                    rest.append(ev)
                else:
                    self.chars += chars
            events = rest
        if events:
            try:
                self._note(self._decoder.feed_events(events))
            except GatewayError as err:
                self.error = err

    def _note(self, events: list[StreamEvent]) -> None:
        for ev in events:
            if isinstance(ev, (TextDelta, ThinkingDelta)):
                self.chars += len(ev.text)
            elif isinstance(ev, ToolCallDelta):
                self.chars += len(ev.arguments)
            elif isinstance(ev, UsageEvent):
                self.usage = ev.usage


# ---- Anthropic: content-block events carry the text; usage, stop and errors come in others --

class _BlockText(msgspec.Struct):
    text: str = ""
    thinking: str = ""
    partial_json: str = ""


class _BlockView(msgspec.Struct):
    delta: _BlockText | None = None
    content_block: _BlockText | None = None


_decode_block = msgspec.json.Decoder(_BlockView)
_NO_TEXT = frozenset({"content_block_stop", "ping"})
_BLOCK_TEXT = frozenset({"content_block_start", "content_block_delta"})


def anthropic_block_chars(ev: SSEEvent) -> int | None:
    """The text length of an Anthropic content-block event (text, thinking, tool arguments).

    None, so the decoder judges it, for message_start / message_delta (usage),
    message_stop (the stream ended whole), error, an unnamed event, and one that does
    not parse. The decoder never sees the blocks, so a tool called without arguments
    counts no ``{}``.
    """
    name = ev.event
    if name in _NO_TEXT:
        return 0
    if name not in _BLOCK_TEXT:
        return None
    try:
        view = _decode_block.decode(ev.data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    part = view.delta if view.delta is not None else view.content_block
    return 0 if part is None else len(part.text) + len(part.thinking) + len(part.partial_json)


# ---- Gemini: every chunk carries text and cumulative usage; the finish chunk has the final usage

class _GeminiPart(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    text: str = ""
    thought: bool = False
    thought_signature: str = ""


class _GeminiContent(msgspec.Struct):
    parts: list[_GeminiPart] = []


class _GeminiCandidate(msgspec.Struct, rename="camel"):
    content: _GeminiContent | None = None
    finish_reason: str | None = None


class _GeminiChunk(msgspec.Struct, rename="camel"):
    candidates: list[_GeminiCandidate] = []
    error: msgspec.Raw | None = None
    prompt_feedback: msgspec.Raw | None = None


_decode_gemini = msgspec.json.Decoder(_GeminiChunk)


def gemini_text_chars(ev: SSEEvent) -> int | None:
    """The text length of a Gemini chunk that only continues the text (text and thought parts).

    None, so the decoder judges it, for a chunk with a finish reason (it carries the final
    usage), without candidates (usage alone, a blocked prompt), with an error, with any
    other kind of part (a function call), and one that does not parse. Usage in the chunks
    measured here is cumulative, so the finish chunk's supersedes it.
    """
    try:
        chunk = _decode_gemini.decode(ev.data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if chunk.error is not None or chunk.prompt_feedback is not None or not chunk.candidates:
        return None
    candidate = chunk.candidates[0]  # the decoder reads only the first, too
    if candidate.finish_reason is not None or candidate.content is None:
        return None
    return sum(len(part.text) for part in candidate.content.parts)
