"""Usage sniffing for a relayed OpenAI Responses stream: the final ``response.completed``
(or ``.incomplete`` / ``.failed``) event carries the usage; text deltas count characters.

OpenAI names every event on its ``event:`` line, so only the final events are decoded
whole; a delta is read for its ``delta`` alone, and the rest (``response.created`` and
the ``.done`` events, which repeat the whole response or item) are not decoded at all.
An unnamed event is decoded whole and judged by its ``type``.
"""

from __future__ import annotations

import msgspec

from gateway.ir import Usage
from gateway.streaming.sse import SSEDecoder, SSEEvent


class _InputDetails(msgspec.Struct):
    cached_tokens: int = 0


class _OutputDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class UsageView(msgspec.Struct):
    """Responses usage as an upstream reports it (details may be absent)."""

    input_tokens: int = 0
    output_tokens: int = 0
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None

    def to_ir(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens, output_tokens=self.output_tokens,
            cache_read_tokens=self.input_tokens_details.cached_tokens if self.input_tokens_details else 0,
            reasoning_tokens=self.output_tokens_details.reasoning_tokens if self.output_tokens_details else 0,
        )


class _ResponseView(msgspec.Struct):
    usage: UsageView | None = None
    output: list[msgspec.Raw] = []


class _Text(msgspec.Struct):
    text: str | None = None


class _ItemView(msgspec.Struct):
    content: list[_Text] | str | None = None


class _OutputView(msgspec.Struct):
    usage: UsageView | None = None
    output: list[_ItemView] = []


_decode_output = msgspec.json.Decoder(_OutputView)


def sniff_response(body: bytes) -> tuple[Usage | None, int]:
    """Usage (if reported) and output text characters of a whole Response body; raises
    msgspec.DecodeError or ValidationError for a body that is not a Response object."""
    view = _decode_output.decode(body)
    chars = 0
    for item in view.output:
        if isinstance(item.content, str):
            chars += len(item.content)
        elif item.content:
            chars += sum(len(part.text or "") for part in item.content)
    return (view.usage.to_ir() if view.usage else None), chars


class _EventView(msgspec.Struct):
    type: str = ""
    delta: str | None = None
    response: _ResponseView | None = None


class _DeltaView(msgspec.Struct):
    delta: str | None = None


_decode_event = msgspec.json.Decoder(_EventView)
_decode_delta = msgspec.json.Decoder(_DeltaView)
decode_response_view = msgspec.json.Decoder(_ResponseView).decode
_FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesStreamSniffer:
    """``relay(chunk)`` returns the chunk untouched, having noted usage and characters."""

    __slots__ = ("_sse", "usage", "chars", "error")

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self.usage: Usage | None = None
        self.chars = 0
        self.error = None  # errors reach the caller as the upstream sent them

    def relay(self, chunk: bytes) -> bytes:
        self._note(self._sse.feed(chunk))
        return chunk

    def finish(self) -> bytes:
        self._note(self._sse.finish())
        return b""

    def _note(self, events: list[SSEEvent]) -> None:
        for ev in events:
            name = ev.event
            if name is not None and name not in _FINAL:
                if name.endswith(".delta") and "arguments" not in name:
                    try:
                        self.chars += len(_decode_delta.decode(ev.data).delta or "")
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        pass
                continue
            try:
                view = _decode_event.decode(ev.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            if view.delta and view.type.endswith(".delta") and "arguments" not in view.type:
                self.chars += len(view.delta)
            elif view.type in _FINAL and view.response is not None and view.response.usage is not None:
                self.usage = view.response.usage.to_ir()
