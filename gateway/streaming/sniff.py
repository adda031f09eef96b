"""Usage sniffing for same-format stream relays.

A relayed stream goes to the caller byte for byte; beside it, the bytes are fed to the
provider's own stream decoder (the one translation uses), which yields usage and text
for the usage record. An error event the upstream put in the stream has already reached
the caller as it was sent: the sniffer only notes it.
"""

from __future__ import annotations

from typing import Protocol

from gateway.errors import GatewayError
from gateway.ir import StreamEvent, TextDelta, ThinkingDelta, ToolCallDelta, Usage, UsageEvent


class StreamDecoder(Protocol):
    def feed(self, chunk: bytes) -> list[StreamEvent]: ...
    def finish(self) -> list[StreamEvent]: ...


class EventSniffer:
    """``relay(chunk)`` returns the chunk untouched, having noted usage and characters."""

    __slots__ = ("_decoder", "usage", "chars", "error")

    def __init__(self, decoder: StreamDecoder) -> None:
        self._decoder = decoder
        self.usage: Usage | None = None
        self.chars = 0
        self.error: GatewayError | None = None

    def relay(self, chunk: bytes) -> bytes:
        if self.error is None:
            try:
                self._note(self._decoder.feed(chunk))
            except GatewayError as err:
                self.error = err
        return chunk

    def finish(self) -> bytes:
        if self.error is None:
            try:
                self._note(self._decoder.finish())
            except GatewayError as err:
                self.error = err
        return b""

    def _note(self, events: list[StreamEvent]) -> None:
        for ev in events:
            if isinstance(ev, (TextDelta, ThinkingDelta)):
                self.chars += len(ev.text)
            elif isinstance(ev, ToolCallDelta):
                self.chars += len(ev.arguments)
            elif isinstance(ev, UsageEvent):
                self.usage = ev.usage
