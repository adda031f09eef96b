"""A lean HTTP/1.1 client for the upstream providers, on asyncio protocols and httptools.

The gateway sends one kind of request upstream: a POST with a body it already holds, to a
handful of origins, on keep-alive connections; then it reads a JSON body or relays a stream.
This client does exactly that with little per-request work: the request head is built as
bytes in one join, responses are parsed by httptools (llhttp, in C), and body chunks go to
the reader as they arrive, with reading paused while too much is buffered.

- One pool per origin: idle connections are reused last-in first-out, at most ``limit``
  connections are open, and callers wait for one beyond that. A connection idle for
  ``IDLE_SECONDS`` is closed rather than reused (a middlebox may have dropped it silently).
- An idle connection the server closed is dropped from the pool when its close arrives. A
  request on a reused connection that fails before any response byte is sent again, once,
  on a new connection (the server may have closed it just as the request went out).
- A response read to its end returns its connection to the pool unless either side asked
  for ``Connection: close``; one abandoned early (an early stop, a cancelled reader, a
  timeout) closes its connection, which also tells the upstream to stop generating.
- Interim responses (``100 Continue``, ``103 Early Hints``) are skipped.
- New connections: the origin's addresses are resolved once per ``DNS_TTL`` (concurrent
  connects share one lookup), then tried with Happy Eyeballs (RFC 8305, 250 ms apart), as
  aiohttp does, so a dead IPv6 route does not eat the connect timeout.
- No ``Accept-Encoding`` is sent, so bodies arrive unencoded; HTTP proxies from the
  environment are not used (the gateway is normally the proxy).

Errors: ``ConnectFailed`` (no connection), ``ConnectionBroken`` (the connection failed
mid-exchange, or the response could not be parsed) and ``TimeoutError``;
``gateway.providers.http`` maps them to gateway errors.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
import time
from collections.abc import AsyncIterator, Mapping

import aiohappyeyeballs
import httptools
from yarl import URL

#: Body bytes buffered for a slow reader before the socket is paused.
HIGH_WATER = 256 * 1024
#: An idle connection older than this is closed instead of reused (aiohttp's keep-alive default).
IDLE_SECONDS = 60.0
#: Seconds an origin's resolved addresses are reused (aiohttp's ttl_dns_cache default).
DNS_TTL = 300.0
#: Happy Eyeballs: the next address is tried this long after the previous one started.
HAPPY_EYEBALLS_DELAY = 0.25
#: Request heads cached per pool, by method and path (Gemini paths carry the model).
_HEAD_CACHE = 256
#: How early a read timeout may fire (timer granularity), in seconds.
_TIMER_SLACK = 0.001


class ConnectFailed(Exception):
    """No connection to the upstream could be opened."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectionBroken(Exception):
    """The connection failed after the request was sent: closed, reset, or unparseable."""


class InvalidHeader(ValueError):
    """A request header (from the configuration, most likely) holds CR, LF or NUL."""


def _bad_header(headers: Mapping[str, str]) -> str:
    # Names the header, never its value: it may be a credential.
    bad = next((k for k, v in headers.items() if any(c in k + v for c in "\r\n\0")), "?")
    return f"request header {bad!r} contains CR, LF or NUL"


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


class Headers(dict[str, str]):
    """Response headers under lower-case names, looked up case-insensitively.

    A repeated header's values are joined with ", " (RFC 9110 5.3).
    """

    __slots__ = ()

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return dict.get(self, name.lower(), default)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; it carries one exchange at a time."""

    def __init__(self, pool: OriginPool, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.busy = False
        self.idle_since = 0.0
        # The read timeout: one timer per connection, not one per read. A wait only moves
        # ``_expires``; the timer, when it fires, fails a wait that is past it, or re-arms
        # for the rest. A stream of many small reads so costs a float per read.
        self._expires = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers = Headers()
        self.interim = False
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
        if not self.busy or self.complete:  # nothing was asked: the connection is out of step, never reuse it
            self.close()
            return
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if not self.complete:  # a response already read whole stands; the connection does not
                self._fail(ConnectionBroken(f"unparseable response ({exc})"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
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

    def on_message_begin(self) -> None:
        if self.complete:  # bytes after the whole response, in the same read: out of step
            raise ConnectionBroken("bytes after the response")

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        if key in ("content-length", "transfer-encoding"):
            self.framed = True
        text = value.decode("latin-1")
        seen = dict.get(self.headers, key)
        self.headers[key] = text if seen is None else f"{seen}, {text}"

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # an interim response; llhttp ends it here and parses the real one next
            self.interim = True
            return
        self.status = status
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
        if self.interim:
            self.interim = False
            self.headers = Headers()
            self.framed = False
            return
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
        loop = self.loop
        expires = self._expires = loop.time() + deadline.wait(deadline.read)
        if self._timer is None or self._timer.when() > expires:
            self._arm(expires)
        waiter = self.waiter = loop.create_future()
        try:
            await waiter
        finally:
            self.waiter = None
        if self.error is not None:
            raise self.error

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return  # no read is waiting: the next wait arms it again
        # uvloop's timers count whole milliseconds: one may fire a fraction of one early.
        if self.loop.time() + _TIMER_SLACK >= self._expires:
            waiter.set_exception(TimeoutError())
        else:
            self._arm(self._expires)

    def send(self, head: bytes, body: bytes) -> None:
        self._reset()
        self.busy = True
        assert self.transport is not None
        try:
            if len(body) < 65536:
                self.transport.write(head + body)
            else:
                self.transport.write(head)
                self.transport.write(body)
        except (RuntimeError, OSError):  # uvloop raises once the transport is gone
            raise _Stale("connection closed before the request") from None

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
        if self.paused and self.buffered <= HIGH_WATER // 2:
            self._resume()
        return chunk

    def take_all(self) -> bytes:
        """Every chunk buffered, joined (for a body that has already arrived whole)."""
        chunks = self.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.paused:
            self._resume()
        return body

    def _resume(self) -> None:
        self.paused = False
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    @property
    def reusable(self) -> bool:
        return self.complete and not self.closed and self.error is None and self.keep_alive

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class UpstreamResponse:
    """A response whose status and headers have arrived; the body is read on demand.

    Reading the body to its end (``read``, or ``chunks`` run out) hands the connection
    back; ``close`` drops it. ``headers`` has lower-case names.
    """

    __slots__ = ("status", "headers", "_conn", "_deadline", "_done")

    def __init__(self, conn: _Connection, deadline: Deadline) -> None:
        self.status = conn.status
        self.headers: Headers = conn.headers
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
        conn = self._conn
        if conn.complete and conn.error is None and not self._done:
            body = conn.take_all()  # the usual case: the body came with the head
            self.release()
            return body
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

    def __del__(self) -> None:
        # A response dropped unread (an exception between send and read) must not keep its
        # pool slot: close it as aiohttp's ClientResponse.__del__ does.
        if not self._done:
            try:
                self.close()
            except RuntimeError:  # the event loop is already closed
                pass


class OriginPool:
    """Keep-alive connections to one scheme://host:port."""

    def __init__(self, url: URL, limit: int, ssl_context: ssl.SSLContext | None = None) -> None:
        """``ssl_context`` for https origins defaults to the system's trusted CAs."""
        self.host = url.host or "localhost"
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.ssl = (ssl_context or ssl.create_default_context()) if url.scheme == "https" else None
        # Bracketed for an IPv6 literal, without the scheme's default port.
        self.host_header = url.host_port_subcomponent or self.host
        self.limit = limit
        self._idle: list[_Connection] = []  # oldest first: put back in the order they came free
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._heads: dict[tuple[str, str], bytes] = {}
        self._addresses: list[tuple] = []  # type: ignore[type-arg]
        self._resolved_until = 0.0
        self._resolving: asyncio.Future[list[tuple]] | None = None  # type: ignore[type-arg]

    def forget(self, conn: _Connection) -> None:
        """A connection closed: an idle one leaves the pool (a busy one is put back, then dropped)."""
        if conn in self._idle:
            self._idle.remove(conn)
            self._released()

    def put_back(self, conn: _Connection) -> None:
        conn.busy = False
        if conn.reusable:
            conn.idle_since = time.monotonic()
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

    def _take_idle(self) -> _Connection | None:
        """The newest idle connection still fit to use; closes the ones that are not."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                self._open -= 1  # off the idle list, so forget() will not count it again
                conn.close()
                continue
            if time.monotonic() - conn.idle_since > IDLE_SECONDS:
                # This one and every older one below it have idled too long.
                stale = [*idle, conn]
                idle.clear()
                self._open -= len(stale)
                for old in stale:
                    old.close()
                break
            return conn
        return None

    async def _acquire(self, deadline: Deadline) -> tuple[_Connection, bool]:
        """A connection to use, and whether it was reused."""
        while True:
            conn = self._take_idle() if self._idle else None
            if conn is not None:
                return conn, True
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

    async def _resolve(self) -> list[tuple]:  # type: ignore[type-arg]
        """The origin's addresses: cached for ``DNS_TTL``; one lookup shared by concurrent connects."""
        if self._addresses and time.monotonic() < self._resolved_until:
            return self._addresses
        if self._resolving is None:
            loop = asyncio.get_running_loop()
            self._resolving = asyncio.ensure_future(loop.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM))
            self._resolving.add_done_callback(self._resolved)
        # Shielded: a caller giving up must not cancel the lookup the others wait on.
        return await asyncio.shield(self._resolving)

    def _resolved(self, lookup: asyncio.Future[list[tuple]]) -> None:  # type: ignore[type-arg]
        self._resolving = None
        if not lookup.cancelled() and lookup.exception() is None and lookup.result():
            self._addresses = lookup.result()
            self._resolved_until = time.monotonic() + DNS_TTL

    async def _connect(self, deadline: Deadline) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(deadline.wait(deadline.connect)):
                addresses = await self._resolve()
                if not addresses:
                    raise ConnectFailed(f"no address for {self.host}")
                sock = await aiohappyeyeballs.start_connection(addresses, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY)
                try:
                    _, conn = await loop.create_connection(
                        lambda: _Connection(self, loop), sock=sock, ssl=self.ssl,
                        server_hostname=self.host if self.ssl else None,
                    )
                except BaseException:
                    sock.close()
                    raise
        except OSError as exc:
            raise ConnectFailed(exc.strerror or str(exc) or type(exc).__name__) from None
        return conn

    def _head(self, method: str, url: URL, headers: Mapping[str, str], length: int) -> bytes:
        """The request head, built as bytes once per request (its first lines once per path)."""
        key = (method, url.raw_path_qs)
        start = self._heads.get(key)
        if start is None:
            if len(self._heads) >= _HEAD_CACHE:
                self._heads.clear()
            start = self._heads[key] = f"{method} {url.raw_path_qs} HTTP/1.1\r\nHost: {self.host_header}\r\n".encode()
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        # Each line ends in one CR LF: any other CR, LF or NUL would split the head.
        n = len(headers)
        if lines.count("\n") != n or lines.count("\r") != n or "\0" in lines:
            raise InvalidHeader(_bad_header(headers))
        # Caller headers arrive decoded as UTF-8 with surrogateescape: encoding them back the
        # same way relays the caller's bytes as they were.
        return start + f"{lines}Content-Length: {length}\r\n\r\n".encode("utf-8", "surrogateescape")

    async def request(self, method: str, url: URL, headers: Mapping[str, str], body: bytes,
                      deadline: Deadline) -> UpstreamResponse:
        """Send one request; returns once the response's status and headers have arrived."""
        head = self._head(method, url, headers, len(body))
        for attempt in (0, 1):
            conn, reused = await self._acquire(deadline)
            try:
                conn.send(head, body)
                await conn.read_head(deadline)
            except _Stale:
                self.put_back(conn)
                if reused and attempt == 0:
                    continue  # the server closed it as the request went out: once more, on a new one
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
        self._open -= len(self._idle)
        self._idle.clear()
