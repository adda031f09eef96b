"""Upstream HTTP: one pooled keep-alive client per upstream origin, and error mapping.

Requests go through ``upstream_client`` (asyncio protocols and httptools). Every failure
leaves here as a GatewayError, so the router can decide on fallback by ``retryable`` alone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Mapping

import msgspec
from yarl import URL

from gateway.config import Timeouts
from gateway.errors import (
    ContentFiltered,
    GatewayError,
    UpstreamInvalidResponse,
    UpstreamStatus,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.providers.upstream_client import (
    ConnectFailed,
    ConnectionBroken,
    Deadline,
    InvalidHeader,
    OriginPool,
    UpstreamResponse,
)


class HttpClients:
    """One connection pool per upstream origin, created on first use.

    The first provider to reach an origin sets its connection limit.
    """

    def __init__(self) -> None:
        self._pools: dict[tuple[str, str, int | None], OriginPool] = {}

    def session_for(self, url: URL, max_connections: int = 256) -> OriginPool:
        key = (url.scheme, url.host or "", url.port)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = OriginPool(url, max_connections)
        return pool

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


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


#: Gemini answers a bad key with 400, not 401: ``{"error": {"code": 400, ..., "details":
#: [{"reason": "API_KEY_INVALID", ...}]}}``. Matched as a JSON member, so a caller's text
#: echoed in an error message (its quotes escaped) cannot pass for it.
_GEMINI_BAD_KEY = re.compile(rb'"reason"\s*:\s*"API_KEY_INVALID"')


#: Azure OpenAI's refusal of a prompt: ``{"error": {"code": "content_filter", "message": ...,
#: "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {"hate":
#: {"filtered": true, "severity": "medium"}, ...}}}}``; matched as a JSON member, as above.
_CONTENT_FILTER = re.compile(rb'"code"\s*:\s*"content_filter"')


class _Category(msgspec.Struct):
    filtered: bool = False


class _InnerError(msgspec.Struct):
    content_filter_result: dict[str, _Category | None] = {}


class _FilterError(msgspec.Struct):
    innererror: _InnerError | None = None


class _FilterBody(msgspec.Struct):
    error: _FilterError


_filter_body = msgspec.json.Decoder(_FilterBody)


def _content_filtered(body: bytes, provider: str) -> ContentFiltered:
    """The refusal with the provider's message and the categories it names as filtered."""
    message = f"provider '{provider}' refused the prompt (content filter): {upstream_error_message(body)}"
    try:
        inner = _filter_body.decode(body).error.innererror
    except (msgspec.DecodeError, msgspec.ValidationError):
        inner = None
    categories = [k for k, v in inner.content_filter_result.items() if v is not None and v.filtered] if inner else []
    return ContentFiltered(f"{message} (filtered: {', '.join(categories)})" if categories else message)


async def raise_for_upstream_status(resp: UpstreamResponse, provider: str) -> None:
    """Turn an upstream error status into UpstreamStatus (and release the connection)."""
    if resp.status < 400:
        return
    try:
        body = await resp.read()
    except (ConnectionBroken, TimeoutError):
        body = b""
    if resp.status in (401, 403) or (resp.status == 400 and _GEMINI_BAD_KEY.search(body)):
        # The gateway's own credentials failed: never echo the provider's view of them to a
        # caller. Gemini's 400 counts as the 401 it means (502 to the caller, no fallback retry).
        status = 401 if resp.status == 400 else resp.status
        raise UpstreamStatus(status, f"provider '{provider}' rejected the gateway's credentials (HTTP {resp.status})")
    if resp.status == 400 and _CONTENT_FILTER.search(body):
        raise _content_filtered(body, provider)
    message = f"provider '{provider}' returned HTTP {resp.status}: {upstream_error_message(body)}"
    raise UpstreamStatus(resp.status, message, retry_after=_retry_after(resp.headers))


@functools.lru_cache(maxsize=256)
def _waits(t: Timeouts) -> tuple[float, float, float]:
    return t.connect, t.first_byte, t.total


async def send(
    pool: OriginPool,
    method: str,
    url: URL,
    *,
    provider: str,
    timeouts: Timeouts,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> UpstreamResponse:
    """Send a request; return the response once its status is known to be a success.

    ``timeouts``: ``connect`` for a new connection, ``first_byte`` for the response head and
    each read after it, ``total`` for the whole exchange including the body.
    """
    try:
        resp = await pool.request(method, url, headers or {}, data or b"", Deadline(*_waits(timeouts)))
    except TimeoutError:
        raise UpstreamTimeout(f"provider '{provider}' did not answer in time") from None
    except ConnectFailed as exc:
        raise UpstreamUnavailable(f"could not connect to provider '{provider}': {exc.reason}") from None
    except ConnectionBroken:
        raise UpstreamUnavailable(f"provider '{provider}' connection failed: ConnectionBroken") from None
    except InvalidHeader as exc:
        raise GatewayError(f"provider '{provider}' is misconfigured: {exc}") from None
    await raise_for_upstream_status(resp, provider)
    return resp


async def read_body(resp: UpstreamResponse, provider: str) -> bytes:
    """The whole response body, with read failures mapped to gateway errors."""
    try:
        return await resp.read()
    except TimeoutError:
        raise UpstreamTimeout(f"provider '{provider}' timed out sending its response") from None
    except ConnectionBroken:
        raise UpstreamUnavailable(f"provider '{provider}' broke off its response: ConnectionBroken") from None


async def iter_chunks(resp: UpstreamResponse, provider: str) -> AsyncIterator[bytes]:
    """The response body as chunks as they arrive; the connection is closed if the reader stops early."""
    chunks = resp.chunks()
    try:
        async for chunk in chunks:
            yield chunk
    except TimeoutError:
        raise UpstreamTimeout(f"provider '{provider}' stalled mid-stream") from None
    except ConnectionBroken:
        raise UpstreamUnavailable(f"provider '{provider}' broke off its stream: ConnectionBroken") from None
    finally:
        # Closing (not releasing) a half-read stream drops the connection, cancelling upstream work.
        await chunks.aclose()
        resp.close()


def decode_json(decoder: msgspec.json.Decoder, body: bytes, provider: str):  # type: ignore[no-untyped-def]
    """Decode an upstream body, mapping garbage to UpstreamInvalidResponse."""
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UpstreamInvalidResponse(f"provider '{provider}' sent a response the gateway could not parse: {exc}") from None
