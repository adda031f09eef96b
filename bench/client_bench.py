"""CPU per request of the upstream client alone: the gateway's (``gateway.providers.http``
over ``upstream_client``) against aiohttp's ClientSession as the gateway used it.

    python -m bench.client_bench [--requests 20000] [--concurrency 32] [--rounds 5]

A minimal HTTP/1.1 server (an asyncio protocol answering every request with a canned
Chat Completions body, on the second core when there is one) takes POSTs from
``concurrency`` tasks on keep-alive connections. Each round runs both clients, alternating
which goes first, and measures the client process's CPU time over the requests; the
figures are medians of the rounds. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable

from yarl import URL

from bench.bodies import chat_request
from bench.loop import run_with_uvloop
from bench.stats import median

_BODY = (b'{"id":"chatcmpl-1","object":"chat.completion","model":"bench","choices":[{"index":0,"message":'
         b'{"role":"assistant","content":"hello there"},"finish_reason":"stop"}],'
         b'"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}')
_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}


class _Server(asyncio.Protocol):
    """Answers each request (head plus Content-Length body) with the canned reply."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buf[:end].split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length:]
            self.transport.write(_ANSWER)  # type: ignore[attr-defined]


def _serve(port: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})

    async def main() -> None:
        await asyncio.get_running_loop().create_server(_Server, "127.0.0.1", port)
        ready.set()
        await asyncio.Event().wait()

    run_with_uvloop(main())


Client = Callable[[URL, bytes, int, int], Awaitable[float]]


async def lean(url: URL, body: bytes, requests: int, concurrency: int) -> float:
    from gateway.config import Timeouts
    from gateway.providers.http import HttpClients, read_body, send

    clients, timeouts = HttpClients(), Timeouts()
    pool = clients.session_for(url)

    async def worker(n: int) -> None:
        for _ in range(n):
            resp = await send(pool, "POST", url, provider="bench", timeouts=timeouts, data=body, headers=_HEADERS)
            await read_body(resp, "bench")

    await asyncio.gather(*(worker(10) for _ in range(concurrency)))  # connections opened, code warm
    cpu = time.process_time()
    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    cpu = time.process_time() - cpu
    await clients.close()
    return cpu


async def aiohttp_client(url: URL, body: bytes, requests: int, concurrency: int) -> float:
    import aiohttp

    # As gateway/providers/http.py configured it before the lean client.
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=256, keepalive_timeout=60, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=600, sock_connect=10, sock_read=120)
    async with aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",)) as session:

        async def worker(n: int) -> None:
            for _ in range(n):
                async with session.request("POST", url, data=body, headers=_HEADERS, timeout=timeout,
                                           allow_redirects=False) as resp:
                    await resp.read()

        await asyncio.gather(*(worker(10) for _ in range(concurrency)))
        cpu = time.process_time()
        await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
        return time.process_time() - cpu


CLIENTS: dict[str, Client] = {"lean": lean, "aiohttp": aiohttp_client}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from bench.procs import free_port

    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(10):
            raise SystemExit("the server did not start")
        os.sched_setaffinity(0, {0})
        url = URL(f"http://127.0.0.1:{port}/v1/chat/completions")
        body = chat_request("bench", False)
        per_request: dict[str, list[float]] = {name: [] for name in CLIENTS}
        for r in range(args.rounds):
            for name in (list(CLIENTS) if r % 2 == 0 else list(CLIENTS)[::-1]):
                cpu = run_with_uvloop(CLIENTS[name](url, body, args.requests, args.concurrency))
                per_request[name].append(cpu / (args.requests // args.concurrency * args.concurrency) * 1e6)
        medians = {name: round(median(v) or 0.0, 1) for name, v in per_request.items()}
        print(json.dumps({
            "requests": args.requests, "concurrency": args.concurrency, "rounds": args.rounds,
            "cpu_us_per_request": medians, "rounds_us": {k: [round(x, 1) for x in v] for k, v in per_request.items()},
            "lean_over_aiohttp": round(medians["lean"] / medians["aiohttp"], 2) if medians["aiohttp"] else None,
        }))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
