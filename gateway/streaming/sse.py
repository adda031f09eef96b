"""Server-sent events: an incremental decoder and the encoder for one event.

The decoder follows the shape every incremental parser here has:
``events = decoder.feed(chunk)`` ... ``events += decoder.finish()``; it is pure over
bytes, so a test can split a stream at every offset and get the same events.
"""

from __future__ import annotations

import msgspec

from gateway.errors import GatewayError
from gateway.ir import StreamEvent


class SSEEvent(msgspec.Struct, frozen=True):
    data: bytes
    event: str | None = None


class SSEDecoder:
    """Splits a byte stream into events. Lines end with LF, CRLF or CR; ':' lines are comments.

    An event ends at a blank line, so bytes after the last blank line wait, unread, in a
    list joined once when the next blank line arrives: an event arriving in many small
    reads costs one copy, not one per read, and no state but those bytes crosses reads.
    A CR that ends a read ends its line at once; an LF starting the next read is then the
    rest of that CRLF.
    """

    __slots__ = ("_pending", "_skip_lf")

    def __init__(self) -> None:
        self._pending: list[bytes] = []
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 10:  # LF
                chunk = chunk[1:]
                if not chunk:
                    return []
        if b"\r" in chunk:
            self._skip_lf = chunk[-1] == 13  # CR
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        pending = self._pending
        if pending:
            # A blank line may begin in the bytes already waiting: "...\n" + "\n...".
            pending.append(chunk)
            if b"\n\n" not in chunk and not (chunk[0] == 10 and pending[-2][-1] == 10):
                return []
            chunk = b"".join(pending)
            pending.clear()
        elif chunk[-1] == 10 and (one := _one_event(chunk)) is not None:
            return [one]
        end = chunk.rfind(b"\n\n")
        if end < 0:
            pending.append(chunk)
            return []
        if end + 2 < len(chunk):
            pending.append(chunk[end + 2:])
        out: list[SSEEvent] = []
        blocks = chunk.split(b"\n\n")
        blocks.pop()  # what followed the last blank line: already waiting in pending
        for block in blocks:
            # The shapes providers send, first: one data line; an event line and a data line.
            if block[:6] == b"data: " and b"\n" not in block:
                out.append(SSEEvent(block[6:]))
                continue
            if block[:7] == b"event: ":
                nl = block.find(b"\n")
                if nl > 0 and block[nl + 1:nl + 7] == b"data: " and block.find(b"\n", nl + 1) < 0:
                    out.append(SSEEvent(block[nl + 7:], block[7:nl].decode("utf-8", "replace")))
                    continue
            _lines(block, out)
        return out

    @property
    def between_events(self) -> bool:
        """No bytes of an unfinished event are waiting."""
        return not self._pending

    def finish(self) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        if self._pending:
            _lines(b"".join(self._pending), out)
            self._pending.clear()
        return out


def _one_event(chunk: bytes) -> SSEEvent | None:
    """``chunk`` as one event when it is exactly one in the shape providers send (a data
    line, or an event line and a data line, then the blank line): how a model's deltas
    mostly arrive, one per read. None for anything else. ``chunk`` ends with LF and holds no CR."""
    nl = chunk.find(b"\n")
    last = len(chunk) - 2  # where the blank line's LF must be, so that nothing but it follows a line
    if chunk[:6] == b"data: ":
        return SSEEvent(chunk[6:-2]) if nl == last else None
    if chunk[:7] == b"event: " and chunk[nl + 1:nl + 7] == b"data: " and chunk.find(b"\n", nl + 1) == last:
        return SSEEvent(chunk[nl + 7:-2], chunk[7:nl].decode("utf-8", "replace"))
    return None


def _lines(block: bytes, out: list[SSEEvent]) -> None:
    """The events of lines between blank lines (every field form the SSE spec allows)."""
    data: list[bytes] = []
    event: str | None = None
    for line in block.split(b"\n"):
        if not line:
            if data:
                out.append(SSEEvent(b"\n".join(data), event))
                data = []
            event = None
            continue
        if line[0] == 58:  # ':' comment / keep-alive
            continue
        field, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            event = value.decode("utf-8", "replace")
    if data:
        out.append(SSEEvent(b"\n".join(data), event))


def encode_sse(data: bytes, event: str | None = None) -> bytes:
    """One SSE event; ``data`` must be a single line (JSON from our encoders always is)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


class SSEEventDecoder:
    """Base of the provider stream decoders: SSE framing, an ``_event(data, out)`` hook per
    event, and one rule they share: an error event arriving after good events in the same
    chunk is raised on the next call, so the good events are handed over first."""

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._error: GatewayError | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Events completed by ``chunk``; raises the GatewayError an error event carries."""
        return self.feed_events(self._sse.feed(chunk))

    def feed_events(self, events: list[SSEEvent]) -> list[StreamEvent]:
        """``feed`` for events already framed (by a reader that looks at them first)."""
        self._raise_pending()
        out: list[StreamEvent] = []
        try:
            for sse in events:
                self._event(sse.data, out)
        except GatewayError as exc:
            if not out:
                raise
            self._error = exc
        return out

    def _raise_pending(self) -> None:
        if self._error is not None:
            raise self._error

    def _event(self, data: bytes, out: list[StreamEvent]) -> None:
        raise NotImplementedError
