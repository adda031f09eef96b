"""The batch's HTTP client to a running gateway, on an event loop of its own.

DuckDB calls ai_query from its own threads and waits for the result, so the client's event
loop runs in a background thread (``BackgroundLoop``) and each batch of rows is handed to
it whole. Requests share one bound (``concurrency``) across every ai_query in the
statement; a row waiting to retry gives its place up while it waits.

Retries: 429 and 5xx answers and connection failures are retried up to ``retries`` times.
A 429's ``Retry-After`` is honoured (never retried sooner; longer than ``max_retry_wait_s``
fails the row instead of stalling the batch); other waits are full-jitter exponential
backoff. Other 4xx answers are final: the same request would fail again.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec
import orjson

from gateway.server.middlewares import TAGS_HEADER

T = TypeVar("T")
_BACKOFF_BASE_S = 0.5
_BACKOFF_CAP_S = 30.0


class ClientOptions(msgspec.Struct, frozen=True, kw_only=True):
    url: str  # the gateway's base URL, e.g. http://127.0.0.1:8080
    token: str
    concurrency: int = 8
    retries: int = 5
    max_retry_wait_s: float = 60.0
    timeout_s: float = 300.0  # per attempt
    tags: dict[str, str] = {}  # sent with every call, beside batch_id / batch_call / batch_row


class Outcome(msgspec.Struct):
    """One row's call: the decoded JSON response, or an error message (never both)."""

    body: Any = None
    error: str | None = None
    request_id: str | None = None


class ClientStats(msgspec.Struct):
    calls: int = 0  # rows sent (a retried row counts once)
    retries: int = 0


class GatewayRequestError(Exception):
    """A request outside any row failed (endpoint lookup): the message says what happened."""


def retry_after_s(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds, or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_text(status: int, raw: bytes) -> str:
    """The gateway's error message, whatever API shape it came in."""
    message = None
    try:
        body = orjson.loads(raw)
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            message = err.get("message")
        elif isinstance(body, dict):
            message = body.get("message")
    except orjson.JSONDecodeError:
        message = raw[:200].decode(errors="replace").strip() or None
    return f"HTTP {status}: {message}" if message else f"HTTP {status}"


class GatewayClient:
    """Calls to one gateway, made on the loop that opened it."""

    def __init__(self, options: ClientOptions, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.options = options
        self.stats = ClientStats()
        self._sleep = sleep
        self._base = options.url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None

    async def open(self) -> None:
        self._slots = asyncio.Semaphore(self.options.concurrency)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.options.concurrency),
            timeout=aiohttp.ClientTimeout(total=self.options.timeout_s),
            headers={"authorization": f"Bearer {self.options.token}", "user-agent": "gateway-batch"},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, tags: dict[str, str]) -> dict[str, str]:
        return {TAGS_HEADER: orjson.dumps({**self.options.tags, **tags}).decode()}

    async def endpoint_task(self, endpoint: str, tags: dict[str, str]) -> str:
        """``chat`` or ``embeddings``: what the endpoint serves, as the gateway describes it."""
        assert self._session is not None
        url = f"{self._base}/api/2.0/serving-endpoints/{quote(endpoint, safe='')}"
        try:
            async with self._session.get(url, headers=self._headers(tags)) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            reason = exc or type(exc).__name__
            raise GatewayRequestError(f"cannot reach the gateway at {self._base}: {reason}") from None
        if status != 200:
            raise GatewayRequestError(f"ai_query endpoint {endpoint!r}: {_error_text(status, raw)}")
        task = orjson.loads(raw).get("task", "")
        return "embeddings" if "embeddings" in task else "chat"

    async def post(self, path: str, body: dict[str, Any], tags: dict[str, str]) -> Outcome:
        """POST ``body``, retrying as the module docstring says."""
        assert self._session is not None and self._slots is not None
        self.stats.calls += 1
        data = orjson.dumps(body)
        headers = {"content-type": "application/json", **self._headers(tags)}
        request_id = None
        for attempt in range(self.options.retries + 1):
            wait: float | None = None
            try:
                async with self._slots, self._session.post(self._base + path, data=data, headers=headers) as resp:
                    raw = await resp.read()
                    request_id = resp.headers.get("x-request-id", request_id)
                    if resp.status == 200:
                        return Outcome(body=orjson.loads(raw), request_id=request_id)
                    error = _error_text(resp.status, raw)
                    retryable = resp.status == 429 or resp.status >= 500
                    if resp.status == 429:
                        wait = retry_after_s(resp.headers.get("retry-after"))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                error, retryable = f"cannot reach the gateway: {exc or type(exc).__name__}", True
            except orjson.JSONDecodeError:
                error, retryable = "the gateway's answer is not JSON", False
            if not retryable or attempt == self.options.retries:
                break
            if wait is None:
                wait = random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2 ** attempt))
            elif wait > self.options.max_retry_wait_s:
                error += f" (Retry-After {wait:.0f} s is longer than the {self.options.max_retry_wait_s:.0f} s allowed)"
                break
            else:
                # Rows refused together would come back together: spread them a little, never sooner.
                wait += random.uniform(0, 0.1 * wait)
            self.stats.retries += 1
            await self._sleep(wait)
        return Outcome(error=error, request_id=request_id)


class BackgroundLoop:
    """An event loop in a daemon thread; ``run`` blocks the calling thread until a coroutine
    finishes there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="gateway-batch-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
