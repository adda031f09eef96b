"""The lean upstream client against real servers: aiohttp ones, and raw asyncio ones for
what a well-behaved server never does."""

from __future__ import annotations

import asyncio
import gc
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme
from aiohttp import web
from yarl import URL

from gateway.config import Timeouts
from gateway.errors import GatewayError, UpstreamStatus, UpstreamTimeout, UpstreamUnavailable
from gateway.providers.http import iter_chunks, send
from gateway.providers import upstream_client
from gateway.providers.upstream_client import ConnectFailed, ConnectionBroken, Deadline, OriginPool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def deadline(read: float = 10.0) -> Deadline:
    return Deadline(5.0, read, 30.0)


@pytest.fixture
async def app_server(aiohttp_server):  # type: ignore[no-untyped-def]
    """An aiohttp server whose handlers the tests add; it records each request's client port."""
    app = web.Application()
    app["ports"] = []

    async def start(routes: list[web.RouteDef]) -> URL:
        app.add_routes(routes)
        server = await aiohttp_server(app)
        return URL(str(server.make_url("/")))

    return app, start


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[Handler], Awaitable[URL]]]:
    servers: list[asyncio.base_events.Server] = []

    async def start(handler: Handler) -> URL:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return URL(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/")

    yield start
    for server in servers:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    return head + await reader.readexactly(length)


async def test_a_json_body_and_keep_alive_reuse(app_server) -> None:  # type: ignore[no-untyped-def]
    app, start = app_server

    async def echo(request: web.Request) -> web.Response:
        app["ports"].append(request.transport.get_extra_info("peername")[1])
        return web.json_response({"got": (await request.read()).decode(), "host": request.headers["Host"]})

    base = await start([web.post("/echo", echo)])
    pool = OriginPool(base, limit=4)
    for i in range(3):
        resp = await pool.request("POST", base / "echo", {"content-type": "application/json"}, f"body{i}".encode(),
                                  deadline())
        assert resp.status == 200 and resp.headers["content-type"] == "application/json; charset=utf-8"
        assert await resp.read() == f'{{"got": "body{i}", "host": "127.0.0.1:{base.port}"}}'.encode()
    assert len(set(app["ports"])) == 1  # one connection, reused
    pool.close()


async def test_chunked_stream_arrives_chunk_by_chunk(app_server) -> None:  # type: ignore[no-untyped-def]
    _, start = app_server
    gate = asyncio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(b"data: one\n\n")
        await gate.wait()  # the second chunk only after the client saw the first
        await resp.write(b"data: two\n\n")
        await resp.write_eof()
        return resp

    base = await start([web.post("/stream", stream)])
    pool = OriginPool(base, limit=2)
    resp = await pool.request("POST", base / "stream", {}, b"", deadline())
    chunks = resp.chunks()
    assert await anext(chunks) == b"data: one\n\n"
    gate.set()
    assert [c async for c in chunks] == [b"data: two\n\n"]
    assert resp.closed and pool._idle  # noqa: SLF001 - read to the end: back in the pool
    pool.close()


async def test_a_reused_connection_closed_by_the_server_is_retried_once(raw_server) -> None:  # type: ignore[no-untyped-def]
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        if connections == 1:
            await read_request(reader)  # the second request on this connection: closed unanswered
            writer.close()
            return
        await reader.read()  # keep the second connection until the client goes

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    for _ in range(2):
        resp = await pool.request("POST", base, {}, b"x", deadline())
        assert await resp.read() == b"ok"
    assert connections == 2
    pool.close()


async def test_a_body_cut_short_is_a_broken_connection(raw_server) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
        await writer.drain()
        writer.close()

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    resp = await pool.request("POST", base, {}, b"", deadline())
    with pytest.raises(ConnectionBroken):
        await resp.read()
    pool.close()


async def test_a_body_ended_by_the_connection_is_read_whole(raw_server) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    resp = await pool.request("POST", base, {}, b"", deadline())
    assert await resp.read() == b"until the end"
    assert not pool._idle  # noqa: SLF001 - a closed connection is not pooled
    pool.close()


async def test_garbage_instead_of_http_is_a_broken_connection(raw_server) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        await reader.read()

    base = await raw_server(handler)
    with pytest.raises(ConnectionBroken):
        await OriginPool(base, limit=1).request("POST", base, {}, b"", deadline())


async def test_no_answer_is_a_timeout_and_no_listener_a_connect_failure(raw_server) -> None:  # type: ignore[no-untyped-def]
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    base = await raw_server(silent)
    with pytest.raises(TimeoutError):
        await OriginPool(base, limit=1).request("POST", base, {}, b"", deadline(read=0.05))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = URL(f"http://127.0.0.1:{s.getsockname()[1]}/")
    with pytest.raises(ConnectFailed):
        await OriginPool(closed, limit=1).request("POST", closed, {}, b"", deadline())


async def test_the_pool_limit_holds_under_concurrency(app_server) -> None:  # type: ignore[no-untyped-def]
    _, start = app_server
    release = asyncio.Event()
    busy = 0
    most = 0
    two_in = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        nonlocal busy, most
        busy += 1
        most = max(most, busy)
        if busy == 2:
            two_in.set()
        await release.wait()
        busy -= 1
        return web.Response(body=b"done")

    base = await start([web.post("/slow", slow)])
    pool = OriginPool(base, limit=2)

    async def one() -> bytes:
        return await (await pool.request("POST", base / "slow", {}, b"", deadline())).read()

    tasks = [asyncio.create_task(one()) for _ in range(5)]
    await two_in.wait()
    release.set()
    assert await asyncio.gather(*tasks) == [b"done"] * 5
    assert most == 2
    pool.close()


async def test_stopping_early_closes_the_connection_and_the_server_sees_it(app_server) -> None:  # type: ignore[no-untyped-def]
    _, start = app_server
    gone = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        try:
            while True:
                await resp.write(b"data: more\n\n" * 64)
        finally:  # a failed write or a cancelled handler: either way the client went
            gone.set()

    base = await start([web.post("/endless", endless)])
    pool = OriginPool(base, limit=1)
    resp = await pool.request("POST", base / "endless", {}, b"", deadline())
    chunks = resp.chunks()
    assert (await anext(chunks)).startswith(b"data: more")
    await chunks.aclose()  # the reader stops
    await gone.wait()
    assert not pool._idle and pool._open == 0  # noqa: SLF001
    pool.close()


async def test_https_with_a_trusted_certificate(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"tls": True})

    app = web.Application()
    app.add_routes([web.post("/v1/x", answer)])
    server = await aiohttp_server(app, ssl=server_ctx, host="localhost")
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    url = URL(f"https://localhost:{server.port}/v1/x")
    pool = OriginPool(url, limit=1, ssl_context=client_ctx)
    assert await (await pool.request("POST", url, {}, b"", deadline())).read() == b'{"tls": true}'
    pool.close()
    with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):  # the system's CAs do not know it
        await OriginPool(url, limit=1).request("POST", url, {}, b"", deadline())


async def test_gateway_errors_from_send(raw_server) -> None:  # type: ignore[no-untyped-def]
    bad_key = b'{"error": {"message": "API key not valid", "reason": "API_KEY_INVALID"}}'
    busy = b'{"error": {"message": "slow"}}'
    answers = {
        b"/bad-key": b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(bad_key), bad_key),
        b"/busy": b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: %d\r\n\r\n%s" % (len(busy), busy),
    }

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                request = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answers[request.split(b" ")[1]])
            await writer.drain()

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    with pytest.raises(UpstreamStatus) as info:
        await send(pool, "POST", base / "bad-key", provider="g", timeouts=Timeouts())
    assert info.value.http_status == 502 and "rejected the gateway's credentials" in info.value.message
    assert "API key" not in info.value.message and not info.value.retryable  # as a 401 is
    with pytest.raises(UpstreamStatus) as info:
        await send(pool, "POST", base / "busy", provider="g", timeouts=Timeouts())
    assert (info.value.http_status, info.value.retry_after) == (429, 7.0) and "slow" in info.value.message
    pool.close()
    with pytest.raises(UpstreamTimeout):
        silent = await raw_server(lambda r, w: r.read())
        await send(OriginPool(silent, 1), "POST", silent, provider="g", timeouts=Timeouts(first_byte=0.05))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = URL(f"http://127.0.0.1:{s.getsockname()[1]}/")
    with pytest.raises(UpstreamUnavailable, match="could not connect to provider 'g'"):
        await send(OriginPool(closed, 1), "POST", closed, provider="g", timeouts=Timeouts())


def answer(status: bytes, body: bytes, *extra: bytes) -> bytes:
    head = b"".join(h + b"\r\n" for h in extra)
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), head, body)


async def test_a_400_that_merely_mentions_the_bad_key_reason_is_echoed(raw_server) -> None:  # type: ignore[no-untyped-def]
    echoed = b'{"error": {"message": "bad field: \\"reason\\": \\"API_KEY_INVALID\\""}}'

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"400 Bad Request", echoed))
        await reader.read()

    base = await raw_server(handler)
    with pytest.raises(UpstreamStatus) as info:
        await send(OriginPool(base, 1), "POST", base, provider="g", timeouts=Timeouts())
    assert info.value.http_status == 400 and "bad field" in info.value.message


async def test_connection_close_from_the_server_is_honoured(raw_server) -> None:  # type: ignore[no-untyped-def]
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(answer(b"200 OK", b"bye", b"Connection: close"))
        await reader.read()  # the client is the one to close it

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    for _ in range(2):
        assert await (await pool.request("POST", base, {}, b"", deadline())).read() == b"bye"
    assert connections == 2 and not pool._idle  # noqa: SLF001
    pool.close()


async def test_an_idle_connection_the_server_closed_is_never_reused(raw_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    requests_per_connection: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests_per_connection.append(0)
        me = len(requests_per_connection) - 1
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            requests_per_connection[me] += 1
            writer.write(answer(b"200 OK", b"ok"))
            await writer.drain()
            if me == 0:  # the first connection goes away as soon as it is idle
                writer.close()
                return

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    forgotten = asyncio.Event()
    forget = pool.forget
    monkeypatch.setattr(pool, "forget", lambda conn: (forget(conn), forgotten.set()))
    assert await (await pool.request("POST", base, {}, b"", deadline())).read() == b"ok"
    await forgotten.wait()  # the close reached the client while the connection was idle
    assert not pool._idle and pool._open == 0  # noqa: SLF001
    assert await (await pool.request("POST", base, {}, b"", deadline())).read() == b"ok"
    assert requests_per_connection == [1, 1]  # nothing was sent on the closed one
    pool.close()


async def test_a_stale_connection_is_retried_only_once(raw_server) -> None:  # type: ignore[no-untyped-def]
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        if connections == 1:
            writer.write(answer(b"200 OK", b"ok"))
            await writer.drain()
            await read_request(reader)
        writer.close()  # every later request: read, then hang up unanswered

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    assert await (await pool.request("POST", base, {}, b"", deadline())).read() == b"ok"
    with pytest.raises(ConnectionBroken):
        await pool.request("POST", base, {}, b"", deadline())
    assert connections == 2  # the reused one, then one fresh attempt
    assert pool._open == 0  # noqa: SLF001
    pool.close()


async def test_a_fresh_connection_closed_unanswered_is_not_retried(raw_server) -> None:  # type: ignore[no-untyped-def]
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.close()

    base = await raw_server(handler)
    with pytest.raises(UpstreamUnavailable, match="provider 'p' connection failed"):
        await send(OriginPool(base, 1), "POST", base, provider="p", timeouts=Timeouts())
    assert connections == 1


async def test_interim_responses_are_skipped_and_headers_read_in_any_case(raw_server) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n")
        writer.write(answer(b"429 Too Many Requests", b"{}", b"Retry-After: 3", b"X-Many: a", b"X-Many: b"))
        await reader.read()

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    resp = await pool.request("POST", base, {}, b"", deadline())
    assert resp.status == 429
    assert resp.headers["Retry-After"] == resp.headers.get("retry-after") == "3" and "RETRY-AFTER" in resp.headers
    assert resp.headers["x-many"] == "a, b" and "link" not in resp.headers
    assert await resp.read() == b"{}"
    pool.close()


async def test_a_slow_reader_pauses_the_socket_and_still_gets_every_byte(raw_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(upstream_client, "HIGH_WATER", 64 * 1024)
    body = bytes(range(256)) * 4096 * 4  # 4 MiB, far past the high-water mark and socket buffers

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 65536):
            writer.write(body[i:i + 65536])
            await writer.drain()
        await reader.read()

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    paused = asyncio.Event()
    pause = upstream_client._Connection.on_body  # noqa: SLF001

    def on_body(conn, chunk: bytes) -> None:  # type: ignore[no-untyped-def]
        pause(conn, chunk)
        if conn.paused:
            paused.set()

    monkeypatch.setattr(upstream_client._Connection, "on_body", on_body)  # noqa: SLF001
    resp = await pool.request("POST", base, {}, b"", deadline())
    await paused.wait()  # nobody reads: the buffer fills and reading stops
    conn = resp._conn  # noqa: SLF001
    assert not conn.transport.is_reading()
    assert conn.buffered <= 64 * 1024 + 256 * 1024  # the mark, plus at most the one read that crossed it
    got = bytearray()
    async for chunk in resp.chunks():
        got += chunk
    assert bytes(got) == body and pool._idle == [conn] and conn.transport.is_reading()  # noqa: SLF001
    pool.close()


async def test_a_stall_mid_body_times_out_and_closes_the_connection(raw_server) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await reader.read()  # then nothing more

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    resp = await pool.request("POST", base, {}, b"", deadline(read=0.05))
    chunks = resp.chunks()
    assert await anext(chunks) == b"first"
    with pytest.raises(TimeoutError):
        await anext(chunks)
    assert resp.closed and pool._open == 0  # noqa: SLF001
    pool.close()


async def test_reads_that_each_come_in_time_never_time_out_then_a_stall_does(raw_server) -> None:  # type: ignore[no-untyped-def]
    # The read timeout is one timer per connection that re-arms while reads keep coming:
    # a stream far longer than the timeout runs to its stall, which still times out.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(80):  # 0.8 s of chunks 10 ms apart, against a 0.3 s read timeout
            writer.write(b"5\r\ntick \r\n")
            await writer.drain()
            await asyncio.sleep(0.01)
        await reader.read()  # then nothing more

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    resp = await pool.request("POST", base, {}, b"", deadline(read=0.3))
    got = 0
    with pytest.raises(TimeoutError):
        async for chunk in resp.chunks():
            got += chunk.count(b"tick")
    assert got == 80 and resp.closed
    pool.close()


async def test_a_reused_connection_times_out_on_its_new_request_s_shorter_read_timeout(raw_server) -> None:  # type: ignore[no-untyped-def]
    requests = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        await read_request(reader)
        requests += 1
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
        writer.write(b"0\r\n\r\n")  # the first response ends; the second stalls after its first chunk
        await read_request(reader)
        requests += 1
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
        await reader.read()

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    first = await pool.request("POST", base, {}, b"", deadline(read=60.0))
    assert await first.read() == b"ok"
    second = await pool.request("POST", base, {}, b"", deadline(read=0.05))
    chunks = second.chunks()
    assert await anext(chunks) == b"ok"
    async with asyncio.timeout(10):  # the first request's 60 s timer must not be the one that counts
        with pytest.raises(TimeoutError):
            await anext(chunks)
    assert requests == 2
    pool.close()


async def test_a_cancelled_reader_closes_the_connection(raw_server) -> None:  # type: ignore[no-untyped-def]
    gone = asyncio.Event()
    first = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nb\r\ndata: one\n\n\r\n")
        await reader.read()  # returns when the client hangs up
        gone.set()

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)

    async def reader() -> None:
        resp = await pool.request("POST", base, {}, b"", deadline())
        async for _ in resp.chunks():
            first.set()

    task = asyncio.create_task(reader())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await gone.wait()
    assert not pool._idle and pool._open == 0  # noqa: SLF001
    pool.close()


async def test_a_response_dropped_unread_gives_back_its_slot(app_server) -> None:  # type: ignore[no-untyped-def]
    _, start = app_server

    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 100)

    base = await start([web.post("/ok", ok)])
    pool = OriginPool(base, limit=1)
    resp = await pool.request("POST", base / "ok", {}, b"", deadline())
    assert pool._open == 1  # noqa: SLF001
    del resp
    gc.collect()
    assert pool._open == 0  # noqa: SLF001
    assert await (await pool.request("POST", base / "ok", {}, b"", deadline())).read() == b"x" * 100
    pool.close()


async def test_a_connection_idle_too_long_is_closed_not_reused(app_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app, start = app_server

    async def ok(request: web.Request) -> web.Response:
        app["ports"].append(request.transport.get_extra_info("peername")[1])
        return web.Response(body=b"ok")

    base = await start([web.post("/ok", ok)])
    pool = OriginPool(base, limit=1)
    assert await (await pool.request("POST", base / "ok", {}, b"", deadline())).read() == b"ok"
    monkeypatch.setattr(upstream_client, "IDLE_SECONDS", -1.0)  # every idle connection is now too old
    assert await (await pool.request("POST", base / "ok", {}, b"", deadline())).read() == b"ok"
    assert len(set(app["ports"])) == 2 and pool._open == 1  # noqa: SLF001
    pool.close()


async def test_concurrent_connects_share_one_address_lookup(app_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if not isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop):
        pytest.skip("uvloop resolves names inside libuv, not through socket.getaddrinfo")
    _, start = app_server

    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=b"ok")

    base = await start([web.post("/ok", ok)])
    lookups: list[str] = []
    getaddrinfo = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **kw: (lookups.append(host), getaddrinfo(host, *a, **kw))[1])
    url = base.with_host("localhost") / "ok"
    pool = OriginPool(url, limit=8)

    async def one() -> bytes:
        return await (await pool.request("POST", url, {}, b"", deadline())).read()

    assert await asyncio.gather(*(one() for _ in range(8))) == [b"ok"] * 8
    assert lookups == ["localhost"] and pool._open == 8  # noqa: SLF001 - eight connections, one lookup
    pool.close()


async def test_connections_send_without_delay(app_server) -> None:  # type: ignore[no-untyped-def]
    _, start = app_server

    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=b"ok")

    base = await start([web.post("/ok", ok)])
    pool = OriginPool(base, limit=1)
    assert await (await pool.request("POST", base / "ok", {}, b"", deadline())).read() == b"ok"
    sock = pool._idle[0].transport.get_extra_info("socket")  # noqa: SLF001
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)  # a request head is never held back by Nagle
    pool.close()


async def test_an_address_that_never_answers_does_not_hold_up_the_next(app_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _, start = app_server

    async def ok(request: web.Request) -> web.Response:
        return web.Response(body=b"ok")

    base = await start([web.post("/ok", ok)])
    # A listener that never accepts, its queue filled: the kernel drops further SYNs, so a
    # connect to it hangs (as to a blackholed IPv6 route) until the connect timeout.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(0)
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(hung.getsockname())
        pool = OriginPool(base, limit=1)
        tcp = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")

        async def addresses() -> list[tuple]:  # type: ignore[type-arg]
            return [(*tcp, hung.getsockname()), (*tcp, ("127.0.0.1", base.port))]

        monkeypatch.setattr(pool, "_resolve", addresses)
        # Happy Eyeballs starts the second address while the first still hangs.
        resp = await pool.request("POST", base / "ok", {}, b"", Deadline(5.0, 10.0, 30.0))
        assert await resp.read() == b"ok"
        pool.close()
        for filler in fillers:
            filler.close()


async def test_bytes_after_the_response_end_its_connection_not_its_body(raw_server) -> None:  # type: ignore[no-untyped-def]
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            # Two more bytes than Content-Length says, in the same write: then a whole second answer.
            writer.write(answer(b"200 OK", b"ok") + b"!!" if connections == 1 else answer(b"200 OK", b"ok"))
            writer.write(answer(b"200 OK", b"unasked") if connections == 2 else b"")
            await writer.drain()

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    for _ in range(3):
        assert await (await pool.request("POST", base, {}, b"", deadline())).read() == b"ok"
    assert connections == 3  # neither out-of-step connection was used again
    pool.close()


async def test_the_total_timeout_bounds_a_stream_that_never_stalls_long(raw_server) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            while True:  # a chunk every 10 ms, forever: no read ever waits its 10 s
                writer.write(b"5\r\ntick \r\n")
                await writer.drain()
                await asyncio.sleep(0.01)
        except ConnectionError:
            return

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    with pytest.raises(UpstreamTimeout, match="stalled mid-stream"):
        resp = await send(pool, "POST", base, provider="p", timeouts=Timeouts(first_byte=10.0, total=0.2))
        async for _ in iter_chunks(resp, "p"):
            pass
    assert pool._open == 0  # noqa: SLF001 - the timed-out stream's connection is closed
    pool.close()


def _can_listen_on_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _can_listen_on_ipv6_loopback(), reason="this machine has no IPv6 loopback")
async def test_an_ipv6_origin_gets_a_bracketed_host_header() -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handler, "::1", 0)
    try:
        base = URL(f"http://[::1]:{server.sockets[0].getsockname()[1]}/")
        pool = OriginPool(base, limit=1)
        resp = await pool.request("POST", base / "v1", {}, b"", deadline())
        assert await resp.read() == b"ok"
        assert f"\r\nHost: [::1]:{base.port}\r\n".encode() in heads[0]
        pool.close()
    finally:
        server.close()


async def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent(raw_server) -> None:  # type: ignore[no-untyped-def]
    connections: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(await reader.read())
        writer.close()

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    for value in ("Bearer sk-secret\r\nX-Injected: 1", "Bearer sk-secret\n", "Bearer sk-\0secret"):
        with pytest.raises(GatewayError) as caught:
            await send(pool, "POST", base / "v1", provider="p", timeouts=Timeouts(), data=b"{}",
                       headers={"content-type": "application/json", "authorization": value})
        assert caught.value.http_status == 500
        assert "'authorization'" in caught.value.message and "sk-" not in caught.value.message
    assert connections == []  # no connection was even opened
    pool.close()


async def test_header_values_are_sent_as_the_utf8_bytes_they_came_as(raw_server) -> None:  # type: ignore[no-untyped-def]
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    base = await raw_server(handler)
    pool = OriginPool(base, limit=1)
    # aiohttp decodes caller headers as UTF-8 with surrogateescape; this one was not valid UTF-8.
    value = "caf\u00e9 \u20ac " + b"\xff".decode("utf-8", "surrogateescape")
    resp = await pool.request("POST", base / "v1", {"anthropic-beta": value}, b"", deadline())
    await resp.read()
    assert b"anthropic-beta: caf\xc3\xa9 \xe2\x82\xac \xff\r\n" in heads[0]
    pool.close()
