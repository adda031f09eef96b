"""Writing replies to the caller: JSON bodies, relayed byte streams, encoded IR streams.

Streams are written as they arrive, never buffered. When the caller goes away mid-stream
the upstream request is dropped and the usage record keeps what was streamed (status 499).
An upstream failure after the stream started becomes the API's in-stream error event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from gateway.errors import GatewayError, error_label
from gateway.ir import Usage
from gateway.ir.result import estimate_tokens
from gateway.pipeline.call import RequestContext
from gateway.pipeline.replies import EventStream, RawStream
from gateway.providers.base import ProviderStream

log = logging.getLogger("gateway.server")

CLIENT_CLOSED = 499  # nginx's convention for "the client closed the connection"
JSON = "application/json"
SSE = "text/event-stream"


def record_usage(ctx: RequestContext, usage: Usage | None, input_chars: Callable[[], int], output_chars: int) -> None:
    """Put token counts on the usage record, estimating when the provider reported none."""
    rec = ctx.record
    if usage is None:
        usage = Usage(estimate_tokens(input_chars()), estimate_tokens(output_chars), estimated=True)
    rec.input_tokens = usage.input_tokens
    rec.output_tokens = usage.output_tokens
    rec.total_tokens = usage.total_tokens
    rec.cache_read_tokens = usage.cache_read_tokens
    rec.cache_write_tokens = usage.cache_write_tokens
    rec.reasoning_tokens = usage.reasoning_tokens
    rec.tokens_estimated = usage.estimated


def json_reply(ctx: RequestContext, body: bytes, status: int = 200) -> web.Response:
    ctx.mark_first_byte()
    return web.Response(body=body, status=status, content_type=JSON, headers={"x-request-id": ctx.request_id})


def _stream_response(ctx: RequestContext, content_type: str) -> web.StreamResponse:
    headers = {"content-type": content_type, "cache-control": "no-cache", "x-accel-buffering": "no",
               "x-request-id": ctx.request_id}
    return web.StreamResponse(status=200, headers=headers)


def _stream_failed(ctx: RequestContext, err: GatewayError) -> None:
    log.warning("request %s: stream failed after it started: %s", ctx.request_id, err.message)
    ctx.record.status_code = err.http_status
    ctx.record.error_code = error_label(err)


class StartedStream:
    """A stream whose status line is sent: from here on a failure can only end its body.

    Kept on the request (``STARTED_STREAM``) so that the edge, should anything still raise
    after a stream writer returned, ends this body instead of rendering a response into it.
    """

    __slots__ = ("ctx", "response", "error_event", "failed", "ended")

    def __init__(self, ctx: RequestContext, response: web.StreamResponse,
                 error_event: Callable[[GatewayError], bytes]) -> None:
        self.ctx = ctx
        self.response = response
        self.error_event = error_event
        self.failed = False  # an error event was written (or the caller is gone): write no other
        self.ended = False

    async def fail(self, exc: BaseException) -> None:
        """End the body with the API's error event for ``exc``; the usage record says why."""
        ctx = self.ctx
        if isinstance(exc, GatewayError):
            err = exc
        else:
            log.error("request %s: unhandled error mid-stream", ctx.request_id, exc_info=exc)
            err = GatewayError("Internal error; see the gateway log for request " + ctx.request_id)
        if self.failed:
            return  # the caller was told already, or is gone: the record keeps that first cause
        self.failed = True
        _stream_failed(ctx, err)
        if self.ended or not self.response.prepared:
            return  # the body is complete (or never began): too late for an event, not for the record
        try:
            event = self.error_event(err)
        except Exception:  # noqa: BLE001 - the encoder itself is broken: end the body without an event
            log.exception("request %s: the stream's error event could not be encoded", ctx.request_id)
            return
        await _write_quietly(self.response, event)
        if ctx.capture is not None:
            ctx.capture.add(event)

    def client_gone(self) -> None:
        self.failed = self.ended = True  # nothing more can be sent
        self.ctx.record.status_code = CLIENT_CLOSED
        self.ctx.record.error_code = "client_disconnected"

    async def settle(self, stream: ProviderStream, account: Callable[[], None]) -> None:
        """Close the upstream stream and put usage on the record: neither may raise into
        the edge, which can no longer answer with a status of its own."""
        try:
            await stream.aclose()
        except Exception as exc:  # noqa: BLE001 - see the docstring
            await self.fail(exc)
        try:
            account()
        except Exception as exc:  # noqa: BLE001 - see the docstring
            await self.fail(exc)

    async def end(self) -> None:
        if not self.ended and self.response.prepared:
            self.ended = True
            await _end_quietly(self.response)


#: The started stream of a request, for the edge (see ``StartedStream``).
STARTED_STREAM = web.RequestKey("started_stream", StartedStream)


async def _start(request: web.Request, started: StartedStream) -> None:
    await started.response.prepare(request)
    request[STARTED_STREAM] = started
    started.ctx.record.status_code = 200


async def relay_raw_stream(
    request: web.Request, ctx: RequestContext, reply: RawStream,
    error_event: Callable[[GatewayError], bytes], input_chars: Callable[[], int], content_type: str = SSE,
) -> web.StreamResponse:
    """Relay an upstream stream in the caller's own format, sniffing usage on the way."""
    sniffer = reply.sniffer
    stream = reply.stream
    capture = ctx.capture
    started = StartedStream(ctx, _stream_response(ctx, content_type), error_event)
    resp = started.response
    try:
        await _start(request, started)
        async for chunk in stream:
            out = sniffer.relay(chunk)
            if out:
                await resp.write(out)
                ctx.mark_first_byte()
                if capture is not None:
                    capture.add(out)
        tail = sniffer.finish()
        if tail:
            await resp.write(tail)
            if capture is not None:
                capture.add(tail)
        if sniffer.error is not None:  # the upstream's own error event, relayed as sent
            started.failed = True
            _stream_failed(ctx, sniffer.error)
    except (ConnectionResetError, asyncio.CancelledError) as exc:
        # The caller went away: a failed write, or aiohttp cancelling the handler.
        started.client_gone()
        if isinstance(exc, asyncio.CancelledError):
            raise
    except Exception as exc:  # noqa: BLE001 - the status line is sent: fail inside the body
        if not resp.prepared:
            raise
        await started.fail(exc)
    finally:
        await started.settle(stream, lambda: record_usage(ctx, sniffer.usage, input_chars, sniffer.chars))
    await started.end()
    return resp


async def stream_events(
    request: web.Request, ctx: RequestContext, reply: EventStream, encoder, error_event: Callable[[GatewayError], bytes],  # type: ignore[no-untyped-def]
    input_chars: Callable[[], int], content_type: str = SSE,
) -> web.StreamResponse:
    """Encode IR stream events into the caller's format as they arrive.

    ``encoder`` has ``encode(events) -> bytes``, ``finish() -> bytes``, and ``usage`` and
    ``output_chars`` read after the stream.
    """
    stream = reply.stream
    capture = ctx.capture
    started = StartedStream(ctx, _stream_response(ctx, content_type), error_event)
    resp = started.response
    try:
        await _start(request, started)
        async for events in stream:
            out = encoder.encode(events)
            if out:
                await resp.write(out)
                ctx.mark_first_byte()
                if capture is not None:
                    capture.add(out)
        tail = encoder.finish()
        await resp.write(tail)
        if capture is not None:
            capture.add(tail)
    except (ConnectionResetError, asyncio.CancelledError) as exc:
        started.client_gone()
        if isinstance(exc, asyncio.CancelledError):
            raise
    except Exception as exc:  # noqa: BLE001 - the status line is sent: fail inside the body
        if not resp.prepared:
            raise
        await started.fail(exc)
    finally:
        await started.settle(stream, lambda: record_usage(ctx, encoder.usage, input_chars, encoder.output_chars))
    await started.end()
    return resp


async def _write_quietly(resp: web.StreamResponse, data: bytes) -> None:
    try:
        await resp.write(data)
    except ConnectionResetError:
        pass


async def _end_quietly(resp: web.StreamResponse) -> None:
    try:
        await resp.write_eof()
    except ConnectionResetError:
        pass
    except Exception:  # noqa: BLE001 - nothing more can be sent either way
        log.exception("the end of a stream could not be written")
