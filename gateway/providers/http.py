"""Upstream HTTP: one pooled keep-alive session per upstream host, and error mapping.

Every aiohttp failure leaves here as a GatewayError, so the router can decide on
fallback by ``retryable`` alone.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Mapping

import aiohttp
import msgspec
from yarl import URL

from gateway.config import Timeouts
from gateway.errors import (
    UpstreamInvalidResponse,
    UpstreamStatus,
    UpstreamTimeout,
    UpstreamUnavailable,
)


class HttpClients:
    """One ``aiohttp.ClientSession`` per upstream origin, created on first use.

    The first provider to reach an origin sets its connection limit.
    """

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, str, int | None], aiohttp.ClientSession] = {}

    def session_for(self, url: URL, max_connections: int = 256) -> aiohttp.ClientSession:
        key = (url.scheme, url.host or "", url.port)
        session = self._sessions.get(key)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=max_connections, limit_per_host=max_connections, keepalive_timeout=60, ttl_dns_cache=300
            )
            session = aiohttp.ClientSession(
                connector=connector, skip_auto_headers=("User-Agent",)
            )
            self._sessions[key] = session
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


class _ErrorBody(msgspec.Struct):
    error: msgspec.Raw | None = None
    message: str | None = None


class _ErrorDetail(msgspec.Struct):
    message: str | None = None


_error_body = msgspec.json.Decoder(_ErrorBody | list[_ErrorBody])  # Gemini may wrap it in a list


def upstream_error_message(body: bytes) -> str:
    """The provider's own error message, if its body has one (OpenAI, Anthropic and Gemini shapes)."""
    try:
        parsed = _error_body.decode(body)
    except msgspec.DecodeError:
        return body[:200].decode("utf-8", "replace").strip() or "no body"
    if isinstance(parsed, list):
        parsed = parsed[0] if parsed else _ErrorBody()
    if parsed.error is not None:
        try:
            detail = msgspec.json.decode(parsed.error, type=_ErrorDetail | str)
        except msgspec.DecodeError:
            detail = None
        if isinstance(detail, str):
            return detail
        if detail is not None and detail.message:
            return detail.message
    return parsed.message or "no message"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


async def raise_for_upstream_status(resp: aiohttp.ClientResponse, provider: str) -> None:
    """Turn an upstream error status into UpstreamStatus (and release the connection)."""
    if resp.status < 400:
        return
    try:
        body = await resp.read()
    except (aiohttp.ClientError, asyncio.TimeoutError):
        body = b""
    finally:
        resp.release()
    if resp.status in (401, 403):
        # Never echo the provider's view of our credentials back to a caller.
        message = f"provider '{provider}' rejected the gateway's credentials (HTTP {resp.status})"
    else:
        message = f"provider '{provider}' returned HTTP {resp.status}: {upstream_error_message(body)}"
    raise UpstreamStatus(resp.status, message, retry_after=_retry_after(resp.headers))


@functools.lru_cache(maxsize=256)
def client_timeout(t: Timeouts) -> aiohttp.ClientTimeout:
    """aiohttp's timeout for ``t``, made once per distinct Timeouts (they are frozen)."""
    return aiohttp.ClientTimeout(total=t.total, sock_connect=t.connect, sock_read=t.first_byte)


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: URL | str,
    *,
    provider: str,
    timeouts: Timeouts,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> aiohttp.ClientResponse:
    """Send a request; return the response once its status is known to be a success."""
    try:
        resp = await session.request(
            method, url, data=data, headers=headers, timeout=client_timeout(timeouts), allow_redirects=False
        )
    except asyncio.TimeoutError:
        raise UpstreamTimeout(f"provider '{provider}' did not answer in time") from None
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamUnavailable(f"could not connect to provider '{provider}': {exc.strerror or 'connection failed'}") from None
    except aiohttp.ClientError as exc:
        raise UpstreamUnavailable(f"provider '{provider}' connection failed: {type(exc).__name__}") from None
    await raise_for_upstream_status(resp, provider)
    return resp


async def read_body(resp: aiohttp.ClientResponse, provider: str) -> bytes:
    """The whole response body, with read failures mapped to gateway errors."""
    try:
        return await resp.read()
    except asyncio.TimeoutError:
        raise UpstreamTimeout(f"provider '{provider}' timed out sending its response") from None
    except aiohttp.ClientError as exc:
        raise UpstreamUnavailable(f"provider '{provider}' broke off its response: {type(exc).__name__}") from None
    finally:
        resp.release()


async def iter_chunks(resp: aiohttp.ClientResponse, provider: str) -> AsyncIterator[bytes]:
    """The response body as chunks as they arrive; the connection is closed if the reader stops early."""
    try:
        async for chunk in resp.content.iter_any():
            yield chunk
    except asyncio.TimeoutError:
        raise UpstreamTimeout(f"provider '{provider}' stalled mid-stream") from None
    except aiohttp.ClientError as exc:
        raise UpstreamUnavailable(f"provider '{provider}' broke off its stream: {type(exc).__name__}") from None
    finally:
        # Closing (not releasing) a half-read stream drops the connection, cancelling upstream work.
        if not resp.content.at_eof():
            resp.close()
        else:
            resp.release()


def decode_json(decoder: msgspec.json.Decoder, body: bytes, provider: str):  # type: ignore[no-untyped-def]
    """Decode an upstream body, mapping garbage to UpstreamInvalidResponse."""
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UpstreamInvalidResponse(f"provider '{provider}' sent a response the gateway could not parse: {exc}") from None

