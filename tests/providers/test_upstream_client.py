"""The lean upstream client against real servers: aiohttp ones, and raw asyncio ones for
what a well-behaved server never does."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme
from aiohttp import web
from yarl import URL

from gateway.config import Timeouts
from gateway.errors import UpstreamStatus, UpstreamTimeout, UpstreamUnavailable
from gateway.providers.http import send
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
    with pytest.raises((ConnectionBroken, ConnectFailed, ssl.SSLError)):  # an untrusted certificate is refused
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
    assert "API key" not in info.value.message
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
