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
    """Splits a byte stream into events. Lines end with LF, CRLF or CR; ':' lines are comments."""

    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf:
            # A trailing CR may be half of a CRLF: keep it until the next chunk says.
            tail = b"\r" if buf.endswith(b"\r") else b""
            buf = buf[: len(buf) - len(tail)].replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail
        out: list[SSEEvent] = []
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            self._line(buf[start:nl], out)
            start = nl + 1
        self._buf = buf[start:]
        return out

    def finish(self) -> list[SSEEvent]:
        out: list[SSEEvent] = []
        if self._buf:
            self._line(self._buf.rstrip(b"\r"), out)
            self._buf = b""
        self._line(b"", out)
        return out

    def _line(self, line: bytes, out: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                out.append(SSEEvent(b"\n".join(self._data), self._event))
            self._data = []
            self._event = None
            return
        if line[0] == 58:  # ':' comment / keep-alive
            return
        field, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            self._data.append(value)
        elif field == b"event":
            self._event = value.decode("utf-8", "replace")


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
        self._raise_pending()
        out: list[StreamEvent] = []
        try:
            for sse in self._sse.feed(chunk):
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
