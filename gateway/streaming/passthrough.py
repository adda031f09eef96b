"""The same-format passthrough for OpenAI-format providers.

The request body goes upstream with ``model`` rewritten (the rest stays raw bytes), and
the response is relayed as it comes while the gateway sniffs usage from it. To record
exact token counts for streams, the gateway asks the upstream for the final usage chunk
even when the caller did not, and then drops that one chunk from what the caller sees.
"""

from __future__ import annotations

import msgspec

from gateway.errors import BadRequest, UpstreamInvalidResponse
from gateway.ir import Usage
from gateway.streaming.sse import SSEDecoder, SSEEvent
from gateway.wire import openai_chat as w
from gateway.wire.openai_embeddings import EmbeddingsView

_raw_fields = msgspec.json.Decoder(dict[str, msgspec.Raw])
_stream_options = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encode = msgspec.json.Encoder()
_decode_chunk = msgspec.json.Decoder(w.ChunkView)
_decode_completion = msgspec.json.Decoder(w.CompletionView)
_decode_embeddings = msgspec.json.Decoder(EmbeddingsView)
_TRUE = msgspec.Raw(b"true")


def rewrite_request(body: bytes, model: str, *, request_usage: bool = False) -> bytes:
    """The caller's body with ``model`` replaced; optionally ask for the stream usage chunk."""
    try:
        fields = _raw_fields.decode(body)
    except msgspec.DecodeError:
        raise BadRequest("Request body must be a JSON object") from None
    fields["model"] = msgspec.Raw(_encode.encode(model))
    if request_usage:
        options: dict[str, msgspec.Raw] = {}
        if "stream_options" in fields and bytes(fields["stream_options"]) != b"null":
            try:
                options = _stream_options.decode(fields["stream_options"])
            except msgspec.DecodeError:
                raise BadRequest("stream_options must be an object", param="stream_options") from None
        options["include_usage"] = _TRUE
        fields["stream_options"] = msgspec.Raw(_encode.encode(options))
    return _encode.encode(fields)


def openai_usage(u: w.Usage) -> Usage:
    """OpenAI's usage object in IR terms."""
    return Usage(
        input_tokens=u.prompt_tokens,
        output_tokens=u.completion_tokens,
        cache_read_tokens=u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else 0,
        reasoning_tokens=u.completion_tokens_details.reasoning_tokens if u.completion_tokens_details else 0,
    )


def _view(decoder: msgspec.json.Decoder, body: bytes, provider: str):  # type: ignore[no-untyped-def]
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise UpstreamInvalidResponse(f"provider '{provider}' sent a response that is not a valid JSON object") from None


def sniff_completion(body: bytes, provider: str) -> tuple[Usage | None, int]:
    """Usage (if reported) and reply characters of a non-streamed completion body."""
    view = _view(_decode_completion, body, provider)
    chars = sum(len(c.message.content or "") for c in view.choices if c.message)
    return (openai_usage(view.usage) if view.usage else None), chars


def sniff_embeddings(body: bytes, provider: str) -> Usage | None:
    """Usage of an embeddings response body, if reported."""
    view = _view(_decode_embeddings, body, provider)
    return openai_usage(view.usage) if view.usage else None


class ChatStreamSniffer:
    """Watches an OpenAI SSE stream for usage and text as it is relayed.

    ``relay(chunk)`` returns the bytes to send on: the chunk itself, or, when the gateway
    added the usage request, the chunk's whole events without the usage-only event.
    """

    __slots__ = ("_sse", "_drop_usage_chunk", "usage", "chars", "error")

    def __init__(self, drop_usage_chunk: bool) -> None:
        self._sse = SSEDecoder()
        self._drop_usage_chunk = drop_usage_chunk
        self.usage: Usage | None = None
        self.chars = 0
        self.error = None  # OpenAI in-stream errors pass to the caller as sent

    def relay(self, chunk: bytes) -> bytes:
        sse = self._sse
        whole = sse.between_events
        events = sse.feed(chunk)
        return self._sniff(events, chunk, whole and sse.between_events)

    def finish(self) -> bytes:
        return self._sniff(self._sse.finish(), b"", False)

    def _sniff(self, events: list[SSEEvent], chunk: bytes, whole: bool) -> bytes:
        """``whole``: the chunk began and ended between events, so it can go out as it came."""
        drop = self._drop_usage_chunk
        kept: list[bytes] = []
        dropped = False
        for ev in events:
            data = ev.data
            if data == b"[DONE]":
                kept.append(data)
                continue
            try:
                view = _decode_chunk.decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                kept.append(data)
                continue
            for choice in view.choices:
                if choice.delta is not None:
                    self.chars += len(choice.delta.content or "")
                    for call in choice.delta.tool_calls or ():
                        self.chars += len(call)
            if view.usage is not None:
                self.usage = openai_usage(view.usage)
                if drop and not view.choices:
                    dropped = True
                    continue
            kept.append(data)
        if not drop or (whole and not dropped):
            return chunk
        # While the gateway may drop its own usage event, a chunk that starts or ends mid-event
        # goes out as its whole events, re-framed: relaying raw halves next to re-framed
        # events would corrupt the stream.
        return b"".join(_reframe(data) for data in kept)


def _reframe(data: bytes) -> bytes:
    """One event of ``data``, a data line per line."""
    if b"\n" in data:
        data = data.replace(b"\n", b"\ndata: ")
    return b"data: " + data + b"\n\n"
