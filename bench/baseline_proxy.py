"""The floor for this design: a bare aiohttp + uvloop passthrough proxy.

    python -m bench.baseline_proxy --port 9100 --upstream http://127.0.0.1:9000 [--route /canned=http://127.0.0.1:9001]

It does what any aiohttp gateway must do and nothing else: read the request body, send it
upstream on a pooled keep-alive connection, and relay the reply (streams chunk by chunk as
they arrive). No auth, no parsing, no records, no metrics. The gateway's figures are read
as ratios to this one. ``--route PREFIX=URL`` sends paths under PREFIX (kept whole) to
another upstream, as the gateway's providers do for the bench's canned upstream.
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
from aiohttp import web

from bench.loop import run_with_uvloop

_FORWARD = ("content-type", "anthropic-version", "x-api-key", "authorization", "x-goog-api-key")


class Proxy:
    def __init__(self, upstream: str, connections: int, routes: dict[str, str] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.routes = [(prefix, url.rstrip("/")) for prefix, url in (routes or {}).items()]
        self.connections = connections
        self.session: aiohttp.ClientSession | None = None

    def origin(self, path: str) -> str:
        for prefix, url in self.routes:
            if path.startswith(prefix):
                return url
        return self.upstream

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        assert self.session is not None
        body = await request.read()
        headers = {k: v for k in _FORWARD if (v := request.headers.get(k)) is not None}
        async with self.session.request(
            request.method, self.origin(request.path) + request.path_qs, data=body, headers=headers,
            allow_redirects=False,
        ) as up:
            content_type = up.headers.get("content-type", "application/octet-stream")
            if not content_type.startswith("text/event-stream"):
                return web.Response(status=up.status, body=await up.read(), headers={"content-type": content_type})
            resp = web.StreamResponse(status=up.status, headers={"content-type": content_type})
            await resp.prepare(request)
            async for chunk in up.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp

    async def serve(self, host: str, port: int) -> None:
        connector = aiohttp.TCPConnector(limit=self.connections, limit_per_host=self.connections, keepalive_timeout=60)
        async with aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",)) as self.session:
            server = web.Server(self.handle, access_log=None)
            srv = await asyncio.get_running_loop().create_server(server, host, port, backlog=4096, reuse_address=True)
            print(f"baseline proxy ready on {host}:{port} -> {self.upstream}", flush=True)
            async with srv:
                await srv.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--route", action="append", default=[], metavar="PREFIX=URL")
    args = parser.parse_args()
    routes = dict(r.split("=", 1) for r in args.route)
    try:
        run_with_uvloop(Proxy(args.upstream, args.connections, routes).serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
