"""A lean HTTP/1.1 client for the upstream providers, on asyncio protocols and httptools.

The gateway sends one kind of request upstream: a POST with a body it already holds, to a
handful of origins, on keep-alive connections; then it reads a JSON body or relays a stream.
This client does exactly that with little per-request work: the request head is built as
bytes in one join, responses are parsed by httptools (llhttp, in C), and body chunks go to
the reader as they arrive, with reading paused while too much is buffered.

- One pool per origin: idle connections are reused last-in first-out, at most ``limit``
  connections are open, and callers wait for one beyond that.
- An idle connection the server closed is dropped from the pool when its close arrives. A
  request on a reused connection that fails before any response byte is sent again, once,
  on a new connection (the server may have closed it just as the request went out).
- A response read to its end returns its connection to the pool unless either side asked
  for ``Connection: close``; one abandoned early (an early stop, a cancelled reader, a
  timeout) closes its connection, which also tells the upstream to stop generating.
- No ``Accept-Encoding`` is sent, so bodies arrive unencoded; HTTP proxies from the
  environment are not used (the gateway is normally the proxy).

Errors: ``ConnectFailed`` (no connection), ``ConnectionBroken`` (the connection failed
mid-exchange, or the response could not be parsed) and ``TimeoutError``;
``gateway.providers.http`` maps them to gateway errors.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import AsyncIterator, Mapping

import httptools
from yarl import URL

#: Body bytes buffered for a slow reader before the socket is paused.
HIGH_WATER = 256 * 1024


class ConnectFailed(Exception):
    """No connection to the upstream could be opened."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectionBroken(Exception):
    """The connection failed after the request was sent: closed, reset, or unparseable."""


class _Stale(ConnectionBroken):
    """A reused connection closed before any byte of the response: safe to send again."""


class Deadline:
    """The three timeouts of one request, as waits: the connect, then each read, all within ``total``."""

    __slots__ = ("connect", "read", "until")

    def __init__(self, connect: float, read: float, total: float) -> None:
        self.connect = connect
        self.read = read
        self.until = time.monotonic() + total

    def wait(self, step: float) -> float:
        """Seconds to wait for the next step; raises TimeoutError once the total is spent."""
        left = self.until - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return min(step, left)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Connection(asyncio.Protocol):
    """One keep-alive connection; it carries one exchange at a time."""

    def __init__(self, pool: OriginPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.busy = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.keep_alive = False
        self.complete = False
        self.framed = False  # Content-Length or chunked: the body's end is known without EOF
        self.got_bytes = False
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.paused = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.busy:  # nothing was asked: the connection is out of step, never reuse it
            self.close()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionBroken(f"unparseable response ({exc})"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if not self.busy or self.complete:
            return
        if self.headers_done and not self.framed and exc is None:
            self.complete = True  # a body delimited by the end of the connection
            self._wake()
        elif not self.got_bytes:
            self._fail(_Stale("connection closed before the response"))
        else:
            self._fail(ConnectionBroken("connection closed mid-response"))

    def pause_writing(self) -> None:  # request bodies are small; nothing to throttle
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        if key in ("content-length", "transfer-encoding"):
            self.framed = True
        self.headers[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        # Read now: once the message completes, the parser describes the next one.
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # -- the exchange

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self._wake()

    async def _wait(self, deadline: Deadline) -> None:
        if self.error is not None:
            raise self.error
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        # A plain timer on the future: cheaper than asyncio.timeout() for one wait per read.
        timer = loop.call_later(deadline.wait(deadline.read), _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None
        if self.error is not None:
            raise self.error

    def send(self, head: bytes, body: bytes) -> None:
        self._reset()
        self.busy = True
        assert self.transport is not None
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)

    async def read_head(self, deadline: Deadline) -> None:
        while not self.headers_done:
            await self._wait(deadline)

    async def next_chunk(self, deadline: Deadline) -> bytes | None:
        """The next body chunk as it arrived, or None at the end of the body."""
        while not self.chunks:
            if self.complete:
                return None
            await self._wait(deadline)
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.paused and self.buffered <= HIGH_WATER // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunk

    @property
    def reusable(self) -> bool:
        return self.complete and not self.closed and self.error is None and self.keep_alive

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()


class UpstreamResponse:
    """A response whose status and headers have arrived; the body is read on demand.

    Reading the body to its end (``read``, or ``chunks`` run out) hands the connection
    back; ``close`` drops it. ``headers`` has lower-case names.
    """

    __slots__ = ("status", "headers", "_conn", "_deadline", "_done")

    def __init__(self, conn: _Connection, deadline: Deadline) -> None:
        self.status = conn.status
        self.headers: Mapping[str, str] = conn.headers
        self._conn = conn
        self._deadline = deadline
        self._done = False

    @property
    def closed(self) -> bool:
        return self._done

    @property
    def at_eof(self) -> bool:
        return self._conn.complete and not self._conn.chunks

    async def read(self) -> bytes:
        """The whole body; the connection goes back to the pool afterwards."""
        parts = [chunk async for chunk in self.chunks()]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive. Stopping early, or failing, closes the connection."""
        try:
            while True:
                chunk = await self._conn.next_chunk(self._deadline)
                if chunk is None:
                    break
                yield chunk
        except BaseException:
            self.close()
            raise
        self.release()

    def release(self) -> None:
        """Give the connection back if the body was read to its end; otherwise close it."""
        if not self._done:
            self._done = True
            self._conn.pool.put_back(self._conn)

    def close(self) -> None:
        """Drop the connection (and with it any upstream work on this request)."""
        if not self._done:
            self._done = True
            self._conn.close()
            self._conn.pool.put_back(self._conn)


class OriginPool:
    """Keep-alive connections to one scheme://host:port."""

    def __init__(self, url: URL, limit: int, ssl_context: ssl.SSLContext | None = None) -> None:
        """``ssl_context`` for https origins defaults to the system's trusted CAs."""
        self.host = url.host or "localhost"
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl = (ssl_context or ssl.create_default_context()) if url.scheme == "https" else None
        default_port = self.port == (443 if url.scheme == "https" else 80)
        self.host_header = self.host if default_port else f"{self.host}:{self.port}"
        self.limit = limit
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._heads: dict[tuple[str, str], bytes] = {}

    def forget(self, conn: _Connection) -> None:
        """A connection closed: an idle one leaves the pool (a busy one is put back, then dropped)."""
        if conn in self._idle:
            self._idle.remove(conn)
            self._released()

    def put_back(self, conn: _Connection) -> None:
        conn.busy = False
        if conn.reusable:
            self._idle.append(conn)
            self._wake_one()
        else:
            conn.close()
            self._released()

    def _released(self) -> None:
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _acquire(self, deadline: Deadline) -> tuple[_Connection, bool]:
        """A connection to use, and whether it was reused."""
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn, True
                self._open -= 1
            if self._open < self.limit:
                self._open += 1
                try:
                    return await self._connect(deadline), False
                except BaseException:
                    self._released()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(deadline.wait(deadline.until - time.monotonic())):
                    await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass the turn on rather than lose it
                raise

    async def _connect(self, deadline: Deadline) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(deadline.wait(deadline.connect)):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self), self.host, self.port, ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except OSError as exc:
            raise ConnectFailed(exc.strerror or type(exc).__name__) from None
        return conn

    def _head(self, method: str, url: URL, headers: Mapping[str, str], length: int) -> bytes:
        key = (method, url.raw_path_qs)
        start = self._heads.get(key)
        if start is None:
            start = self._heads[key] = f"{method} {url.raw_path_qs} HTTP/1.1\r\nHost: {self.host_header}\r\n".encode()
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return start + f"{lines}Content-Length: {length}\r\n\r\n".encode("latin-1")

    async def request(self, method: str, url: URL, headers: Mapping[str, str], body: bytes,
                      deadline: Deadline) -> UpstreamResponse:
        """Send one request; returns once the response's status and headers have arrived."""
        head = self._head(method, url, headers, len(body))
        for attempt in (0, 1):
            conn, reused = await self._acquire(deadline)
            conn.send(head, body)
            try:
                await conn.read_head(deadline)
            except _Stale:
                self.put_back(conn)
                if reused and attempt == 0:
                    continue
                raise ConnectionBroken("connection closed before the response") from None
            except BaseException:
                conn.close()
                self.put_back(conn)
                raise
            return UpstreamResponse(conn, deadline)
        raise AssertionError("unreachable")

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
