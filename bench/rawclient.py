"""A lean HTTP/1.1 load client on asyncio protocols, for non-streamed requests.

The aiohttp client costs ~250 µs of CPU per request; on a 2-core machine where the load
generator shares a core with the upstream, that caps what can be offered. This client
sends pre-built request bytes on keep-alive connections and parses only the status line,
``Content-Length`` or chunked framing: a few tens of µs per request, so the load generator
stays far below the systems it measures. Connections are opened during the warm-up, so
the measured window holds no connection set-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import urlsplit

Done = Callable[[int, int], None]  # (status, latency ns)


def build_request(url: str, headers: dict[str, str], body: bytes) -> tuple[str, int, bytes]:
    u = urlsplit(url)
    path = u.path + (f"?{u.query}" if u.query else "")
    lines = [f"POST {path} HTTP/1.1", f"Host: {u.hostname}:{u.port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    return u.hostname or "127.0.0.1", u.port or 80, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Conn(asyncio.Protocol):
    """One keep-alive connection in a closed loop: the next request goes as the last answer ends."""

    def __init__(self, request: bytes, done: Done, running: Callable[[], bool], lost: Callable[[_Conn], None]) -> None:
        self.request = request
        self.done = done
        self.running = running
        self.lost = lost
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.sent = 0
        self.busy = False
        self.closing = False  # the server said Connection: close

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self) -> None:
        assert self.transport is not None
        self.busy = True
        self.sent = time.perf_counter_ns()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.busy:
            end = self._complete()
            if end is None:
                return
            status = int(self.buf[9:12])
            head = bytes(self.buf[: self.buf.find(b"\r\n\r\n")]).lower()
            del self.buf[:end]
            self.busy = False
            self.done(status, time.perf_counter_ns() - self.sent)
            if b"\r\nconnection: close" in head:
                # The server ends keep-alive here: reopen rather than lose a request on it.
                self.closing = True
                if self.transport is not None:
                    self.transport.close()
                return
            if self.running():
                self.send()

    def _complete(self) -> int | None:
        """End offset of a whole response in the buffer, or None."""
        buf = self.buf
        head = buf.find(b"\r\n\r\n")
        if head < 0:
            return None
        headers = bytes(buf[:head]).lower()
        i = headers.find(b"\r\ncontent-length:")
        if i >= 0:
            j = headers.find(b"\r\n", i + 2)
            length = int(headers[i + 17 : j if j >= 0 else None])
            end = head + 4 + length
            return end if len(buf) >= end else None
        if b"\r\ntransfer-encoding: chunked" in headers:
            pos = head + 4
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
                pos = eol + 2 + size + 2
                if len(buf) < pos:
                    return None
                if size == 0:
                    return pos
        return head + 4  # no body (e.g. 204)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.lost(self)


async def run_closed_loop(
    url: str, headers: dict[str, str], body: bytes, concurrency: int, done: Done, running: Callable[[], bool],
    on_error: Callable[[str], None],
) -> Callable[[], None]:
    """Open ``concurrency`` connections and start each one's loop; returns a closer."""
    host, port, request = build_request(url, headers, body)
    loop = asyncio.get_running_loop()
    conns: set[_Conn] = set()
    closing = False

    def lost(conn: _Conn) -> None:
        conns.discard(conn)
        if closing or not running():
            return
        if conn.busy and not conn.closing:
            on_error("connection closed mid-request")
        loop.create_task(reopen(0.0 if conn.closing else 0.01))

    async def reopen(delay: float) -> None:
        await asyncio.sleep(delay)
        if running() and not closing:
            await open_one()

    async def open_one() -> None:
        try:
            _, conn = await loop.create_connection(lambda: _Conn(request, done, running, lost), host, port)
        except OSError as exc:
            on_error(type(exc).__name__)
            return
        conns.add(conn)
        conn.send()

    await asyncio.gather(*(open_one() for _ in range(concurrency)))

    def close() -> None:
        nonlocal closing
        closing = True
        for conn in list(conns):
            if conn.transport is not None:
                conn.transport.close()

    return close
