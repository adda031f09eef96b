"""A fast fake LLM upstream: OpenAI Chat Completions, Anthropic Messages and Gemini, from canned bodies.

    python -m bench.upstream --port 9000

The first path segment picks the mode, so one process serves every mode and a provider's
``base_url`` selects it:

    /v1/chat/completions              zero delay (the whole stream in one write)
    /d20/v1/chat/completions          answer after 20 ms
    /s64x20/v1/chat/completions       stream 64 deltas paced 20 ms apart, each stamped t=<ns>

Paths after the mode: ``/v1/chat/completions`` (OpenAI; ``stream: true`` streams, with the
usage chunk when ``include_usage`` is asked), ``/v1/messages`` (Anthropic),
``/v1beta/models/{m}:generateContent`` and ``:streamGenerateContent`` (Gemini, SSE).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time

from aiohttp import web

from bench.bodies import CANNED, Canned, Format
from bench.loop import run_with_uvloop

ZERO_DELAY_DELTAS = 8
_MODE = re.compile(r"^/(?:d(\d+)|s(\d+)x(\d+))(?=/)")


class Route:
    __slots__ = ("canned", "stream_by_path", "delay", "deltas", "pace")

    def __init__(self, fmt: Format, stream_by_path: bool | None, delay: float, deltas: int, pace: float) -> None:
        self.canned: Canned = CANNED[fmt]
        self.stream_by_path = stream_by_path  # Gemini says it in the path; None: read the body
        self.delay = delay
        self.deltas = deltas
        self.pace = pace


def parse_route(path: str) -> Route | None:
    delay, deltas, pace = 0.0, ZERO_DELAY_DELTAS, 0.0
    m = _MODE.match(path)
    if m:
        if m.group(1):
            delay = int(m.group(1)) / 1000
        else:
            deltas, pace = int(m.group(2)), int(m.group(3)) / 1000
        path = path[m.end():]
    if path.endswith("/chat/completions"):
        return Route("openai", None, delay, deltas, pace)
    if path.endswith("/messages"):
        return Route("anthropic", None, delay, deltas, pace)
    if path.endswith(":generateContent"):
        return Route("gemini", False, delay, deltas, pace)
    if path.endswith(":streamGenerateContent"):
        return Route("gemini", True, delay, deltas, pace)
    return None


_routes: dict[str, Route | None] = {}


async def handle(request: web.BaseRequest) -> web.StreamResponse:
    path = request.path
    if path in _routes:
        route = _routes[path]
    else:
        route = parse_route(path)
        if len(_routes) < 1000:
            _routes[path] = route
    if route is None:
        if request.method == "GET":
            return web.Response(text="ok")  # health probes, model lists
        return web.Response(status=404, text="unknown path")
    body = await request.read()
    stream = route.stream_by_path
    if stream is None:
        stream = b'"stream":true' in body or b'"stream": true' in body
    if route.delay:
        await asyncio.sleep(route.delay)
    canned = route.canned
    if not stream:
        return web.Response(body=canned.json, content_type=canned.content_type)
    usage = b"include_usage" in body
    resp = web.StreamResponse(headers={"Content-Type": canned.stream_content_type, "Cache-Control": "no-cache"})
    await resp.prepare(request)
    if not route.pace:
        await resp.write(_whole_stream(canned, route.deltas, usage))
    else:
        await _paced(resp, canned, route.deltas, route.pace, usage)
    await resp.write_eof()
    return resp


_whole: dict[tuple[int, int, bool], bytes] = {}


def _whole_stream(canned: Canned, deltas: int, usage: bool) -> bytes:
    key = (id(canned), deltas, usage)
    body = _whole.get(key)
    if body is None:
        body = _whole[key] = canned.whole_stream(deltas, usage)
    return body


async def _paced(resp: web.StreamResponse, canned: Canned, deltas: int, pace: float, usage: bool) -> None:
    # Each delta is stamped as it is written; sleeps are scheduled against the start time so
    # pacing does not drift when the loop is busy.
    start = time.monotonic()
    for i in range(deltas):
        if i:
            await asyncio.sleep(max(0.0, start + i * pace - time.monotonic()))
        chunk = canned.delta(f"t={time.monotonic_ns()} ")
        await resp.write(canned.stream_head + chunk if i == 0 else chunk)
    tail = canned.stream_tail
    if usage and canned.stream_usage:
        tail = tail.replace(b"data: [DONE]", canned.stream_usage + b"data: [DONE]")
    await resp.write(tail)


async def serve(host: str, port: int) -> None:
    server = web.Server(handle, access_log=None)
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(server, host, port, backlog=4096, reuse_address=True)
    print(f"upstream ready on {host}:{port}", flush=True)
    async with srv:
        await srv.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        run_with_uvloop(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
