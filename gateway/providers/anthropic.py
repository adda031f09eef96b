"""The Anthropic Messages provider: IR <-> ``/v1/messages`` JSON, and its transport.

Anthropic redacted thinking has no IR part of its own; it travels as a ``ThinkingPart``
with empty text whose signature is ``REDACTED_THINKING_PREFIX`` + the opaque data, so a
later turn sent back to Anthropic restores the block unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from msgspec import UNSET
from yarl import URL

from gateway.config import ProviderConfig, Timeouts
from gateway.errors import (
    BadRequest, GatewayError, UpstreamError, UpstreamInvalidResponse, UpstreamStatus, UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.ir import (
    ChatRequest, ChatResult, EmbeddingResult, FinishEvent, FinishReason, ImagePart, Part, StreamEvent,
    TextDelta, TextPart, ThinkingDelta, ThinkingPart, ToolCallDelta, ToolCallPart, ToolCallStart,
    ToolResultPart, Usage, UsageEvent,
)
from gateway.providers.base import Provider, ProviderStream, Target, decoded_stream
from gateway.providers.http import HttpClients, decode_json, read_body, send
from gateway.providers.upstream_client import UpstreamResponse
from gateway.streaming.sse import SSEEventDecoder
from gateway.wire import anthropic as w

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; the IR may leave it unset.
REDACTED_THINKING_PREFIX = "anthropic-redacted-thinking:"
#: Caller headers a same-format passthrough forwards: they change what the request means.
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")
FORWARDED_QUERY = frozenset({"beta"})

_EMPTY_OBJECT = msgspec.Raw(b"{}")
_EMPTY_SCHEMA = msgspec.Raw(b'{"type":"object","properties":{}}')
_json_object = msgspec.json.Decoder(dict[str, msgspec.Raw])

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Anthropic's error types, for `error` events that arrive inside a 200 stream.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


# ---- IR request -> Anthropic ---------------------------------------------------------------

def _image(part: ImagePart) -> w.ImageBlock:
    if part.data is not None:
        if not part.media_type:
            raise BadRequest("an inline image needs a media_type")
        return w.ImageBlock(w.Base64Source(part.media_type, part.data))
    url = part.url or ""
    if url.startswith("data:"):
        # Anthropic takes no data: URLs; split "data:image/png;base64,XXXX" into a base64 source.
        header, comma, data = url[5:].partition(",")
        params = header.split(";")
        if not comma or not params[0] or "base64" not in params[1:]:
            raise BadRequest("an image data URL must be base64 with a media type")
        return w.ImageBlock(w.Base64Source(params[0], data))
    if not url:
        raise BadRequest("an image needs a url or data")
    return w.ImageBlock(w.URLSource(url))


def _tool_input(arguments: str) -> msgspec.Raw:
    # Anthropic wants an object; IR arguments are text that a client may have left empty or broken.
    try:
        _json_object.decode(arguments)
    except msgspec.DecodeError:
        return _EMPTY_OBJECT
    return msgspec.Raw(arguments)


def _block(part: Part) -> w.ContentBlock | None:
    if isinstance(part, TextPart):
        return w.TextBlock(part.text) if part.text else None  # Anthropic rejects empty text blocks
    if isinstance(part, ToolCallPart):
        return w.ToolUseBlock(part.id, part.name, _tool_input(part.arguments))
    if isinstance(part, ToolResultPart):
        return w.ToolResultBlock(
            part.tool_call_id, part.content or UNSET, True if part.is_error else UNSET
        )
    if isinstance(part, ThinkingPart):
        if part.signature is None:
            return None  # Anthropic rejects unsigned thinking
        if part.signature.startswith(REDACTED_THINKING_PREFIX):
            return w.RedactedThinkingBlock(part.signature[len(REDACTED_THINKING_PREFIX):])
        return w.ThinkingBlock(part.text, part.signature)
    return _image(part)


def _messages(req: ChatRequest) -> list[w.MessageParam]:
    # Anthropic wants alternating roles: tool results ride in user turns, and neighbours merge.
    turns: list[tuple[str, list[w.ContentBlock]]] = []
    for message in req.messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = [b for b in map(_block, message.parts) if b is not None]
        if not blocks:
            continue
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    return [
        # In a user turn, tool_result blocks must come before any other content.
        w.MessageParam(role, sorted(blocks, key=lambda b: not isinstance(b, w.ToolResultBlock)))
        if role == "user" else w.MessageParam(role, blocks)
        for role, blocks in turns
    ]


def _tool_choice(req: ChatRequest) -> w.ToolChoice | msgspec.UnsetType:
    if not req.tools:
        return UNSET
    disable = True if req.parallel_tool_calls is False else UNSET
    choice = req.tool_choice
    if choice is None:
        return UNSET if disable is UNSET else w.ToolChoiceAuto(disable)
    if choice.mode == "none":
        return w.ToolChoiceNone()
    if choice.name:
        return w.ToolChoiceTool(choice.name, disable)
    if choice.mode == "required":
        return w.ToolChoiceAny(disable)
    return w.ToolChoiceAuto(disable)


def encode_request(req: ChatRequest, model: str, stream: bool) -> bytes:
    """The ``/v1/messages`` body for ``req`` sent to provider model ``model``.

    Dropped knowingly: ``seed`` (no Anthropic equivalent) and ``response_format``
    (structured output is not generally available on the Messages API; the caller's
    instructions still ask for the format).
    """
    body = w.MessagesRequest(
        model=model,
        messages=_messages(req),
        max_tokens=req.max_tokens if req.max_tokens is not None else DEFAULT_MAX_TOKENS,
        system=[w.TextBlock(s) for s in req.system if s] or UNSET,
        temperature=req.temperature if req.temperature is not None else UNSET,
        top_p=req.top_p if req.top_p is not None else UNSET,
        stop_sequences=list(req.stop) or UNSET,
        stream=True if stream else UNSET,
        tools=[
            w.Tool(
                t.name,
                t.parameters if t.parameters is not None else _EMPTY_SCHEMA,
                t.description if t.description is not None else UNSET,
            )
            for t in req.tools
        ] or UNSET,
        tool_choice=_tool_choice(req),
        metadata=w.Metadata(req.user) if req.user else UNSET,
    )
    return w.encoder.encode(body)


# ---- Anthropic -> IR result ----------------------------------------------------------------

def _names_new_type(raw: bytes | msgspec.Raw, known: frozenset[str]) -> bool:
    """True when ``raw`` failed to decode only because it names a type this gateway does not know."""
    try:
        head = w.head_decoder.decode(raw)
    except msgspec.DecodeError:
        return False
    if head.type not in known:
        return True
    return head.type == "content_block_delta" and (
        head.delta is not None and head.delta.type not in w.DELTA_TYPES
    )


def _invalid(provider: str, what: str, exc: Exception) -> UpstreamInvalidResponse:
    return UpstreamInvalidResponse(f"provider '{provider}' sent {what} the gateway could not parse: {exc}")


def _decode_block(raw: msgspec.Raw, provider: str) -> w.ContentBlock | None:
    """One content block, or None for a block type newer than this gateway."""
    try:
        return w.block_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        if _names_new_type(raw, w.BLOCK_TYPES):
            return None
        raise _invalid(provider, "a content block", exc) from None


def _finish_reason(stop_reason: str | None) -> FinishReason:
    return _FINISH.get(stop_reason or "", "stop")


def _usage(u: w.Usage) -> Usage:
    read, write = u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0
    # The IR counts input like OpenAI: the prompt total, cached tokens included.
    return Usage(
        input_tokens=(u.input_tokens or 0) + read + write,
        output_tokens=u.output_tokens or 0,
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


def decode_result(body: bytes, provider: str = "anthropic") -> ChatResult:
    """A ``/v1/messages`` response body as an IR result; block types it does not know are skipped."""
    msg: w.MessagesResponse = decode_json(w.response_decoder, body, provider)
    parts: list[Part] = []
    for raw in msg.content:
        block = _decode_block(raw, provider)
        if isinstance(block, w.TextBlock):
            parts.append(TextPart(block.text))
        elif isinstance(block, w.ToolUseBlock):
            parts.append(ToolCallPart(block.id, block.name, bytes(block.input).decode()))
        elif isinstance(block, w.ThinkingBlock):
            parts.append(ThinkingPart(block.thinking, block.signature or None))
        elif isinstance(block, w.RedactedThinkingBlock):
            parts.append(ThinkingPart("", REDACTED_THINKING_PREFIX + block.data))
    return ChatResult(
        id=msg.id,
        model=msg.model,
        parts=parts,
        finish_reason=_finish_reason(msg.stop_reason),
        usage=_usage(msg.usage),
    )


# ---- Anthropic stream -> IR events ---------------------------------------------------------

def _stream_error(error: w.ErrorDetail, provider: str) -> GatewayError:
    message = f"provider '{provider}' stream failed with {error.type}: {error.message or 'no message'}"
    if error.type == "timeout_error":
        return UpstreamTimeout(message)
    status = _ERROR_STATUS.get(error.type)
    return UpstreamStatus(status, message) if status is not None else UpstreamError(message)


class AnthropicStreamDecoder(SSEEventDecoder):
    """Anthropic SSE bytes -> IR stream events; one per upstream stream, pure over bytes.

    Anthropic numbers content blocks over the whole turn; the IR numbers tool calls among
    themselves, so each tool_use block gets the next tool ordinal when it starts.
    """

    def __init__(self, provider: str = "anthropic") -> None:
        super().__init__()
        self.provider = provider
        self.id = ""
        self.model = ""
        self._tools: dict[int, int] = {}  # block index -> tool call ordinal
        self._argless: set[int] = set()  # tool blocks that have streamed no argument text yet
        self._usage = w.Usage()
        self._stopped = False

    def finish(self) -> list[StreamEvent]:
        """Events left at the end; raises if the stream ended before ``message_stop``."""
        self._raise_pending()
        out: list[StreamEvent] = []
        for sse in self._sse.finish():
            self._event(sse.data, out)
        if not self._stopped:
            raise UpstreamUnavailable(f"provider '{self.provider}' ended its stream before message_stop")
        return out

    def _event(self, data: bytes, out: list[StreamEvent]) -> None:
        try:
            event = w.event_decoder.decode(data)
        except msgspec.DecodeError as exc:
            if _names_new_type(data, w.EVENT_TYPES):
                return
            raise _invalid(self.provider, "a stream event", exc) from None
        if isinstance(event, w.ContentBlockDelta):
            self._delta(event.index, event.delta, out)
        elif isinstance(event, w.ContentBlockStart):
            self._start(event.index, event.content_block, out)
        elif isinstance(event, w.ContentBlockStop):
            if event.index in self._argless:
                # A tool called without arguments streams none; the IR wants an object.
                self._argless.discard(event.index)
                out.append(ToolCallDelta(self._tools[event.index], "{}"))
        elif isinstance(event, w.MessageDelta):
            if event.delta.stop_reason is not None:
                out.append(FinishEvent(_finish_reason(event.delta.stop_reason)))
            # Anthropic message_delta.usage is cumulative: assign, don't add; absent keeps message_start's.
            given = {f: v for f in w.Usage.__struct_fields__ if (v := getattr(event.usage, f)) is not None}
            self._usage = msgspec.structs.replace(self._usage, **given)
            out.append(UsageEvent(_usage(self._usage)))
        elif isinstance(event, w.MessageStart):
            self.id, self.model = event.message.id, event.message.model
            self._usage = event.message.usage
        elif isinstance(event, w.MessageStop):
            self._stopped = True
        elif isinstance(event, w.ErrorEvent):
            raise _stream_error(event.error, self.provider)

    def _start(self, index: int, raw: msgspec.Raw, out: list[StreamEvent]) -> None:
        block = _decode_block(raw, self.provider)
        if isinstance(block, w.ToolUseBlock):
            ordinal = self._tools[index] = len(self._tools)
            self._argless.add(index)
            out.append(ToolCallStart(ordinal, block.id, block.name))
        elif isinstance(block, w.TextBlock):
            if block.text:
                out.append(TextDelta(block.text))
        elif isinstance(block, w.ThinkingBlock):
            if block.thinking or block.signature:
                out.append(ThinkingDelta(block.thinking, block.signature or None))
        elif isinstance(block, w.RedactedThinkingBlock):
            out.append(ThinkingDelta(signature=REDACTED_THINKING_PREFIX + block.data))

    def _delta(self, index: int, delta: w.BlockDelta, out: list[StreamEvent]) -> None:
        if isinstance(delta, w.TextDelta):
            if delta.text:
                out.append(TextDelta(delta.text))
        elif isinstance(delta, w.InputJSONDelta):
            ordinal = self._tools.get(index)  # None for server tool blocks this gateway skipped
            if ordinal is not None and delta.partial_json:
                self._argless.discard(index)
                out.append(ToolCallDelta(ordinal, delta.partial_json))
        elif isinstance(delta, w.ThinkingDelta):
            if delta.thinking:
                out.append(ThinkingDelta(delta.thinking))
        else:
            out.append(ThinkingDelta(signature=delta.signature))


# ---- transport -----------------------------------------------------------------------------

class AnthropicProvider(Provider):
    """Anthropic's Messages API at ``{base_url}/v1/messages``, keyed by ``x-api-key``."""

    wire = "anthropic_messages"
    default_base_url = "https://api.anthropic.com"

    def __init__(self, name: str, config: ProviderConfig, http: HttpClients) -> None:
        super().__init__(name, config, http)
        self.url = URL(f"{self.base_url}/v1/messages")
        self.count_url = URL(f"{self.base_url}/v1/messages/count_tokens")
        headers = {"anthropic-version": API_VERSION, "content-type": "application/json"}
        if config.api_key:
            headers["x-api-key"] = config.api_key
        # Configured headers (anthropic-beta, a pinned version) win; lowercase so they replace, not repeat.
        headers.update({k.lower(): v for k, v in config.headers.items()})
        self.headers = headers
        self._pinned = frozenset(k.lower() for k in config.headers)

    async def _post(self, body: bytes, timeouts: Timeouts) -> UpstreamResponse:
        session = self.session(self.url)
        return await send(
            session, "POST", self.url, provider=self.name, timeouts=timeouts,
            data=body, headers=self.headers,
        )

    async def passthrough(
        self, body: bytes, target: Target, caller_headers: Mapping[str, str], query: Mapping[str, str],
        count_tokens: bool = False,
    ) -> UpstreamResponse:
        """POST a Messages body from an Anthropic-speaking caller, untouched but for ``model``
        (rewritten by the caller of this method). The caller's ``anthropic-version`` and
        ``anthropic-beta`` go along unless the provider's configuration pins them, and so
        does its query string (Claude Code sends ``?beta=true``). ``count_tokens`` sends the
        body to the token-counting endpoint instead."""
        headers = dict(self.headers)
        for name in FORWARDED_HEADERS:
            value = caller_headers.get(name)
            if value and name not in self._pinned:
                headers[name] = value
        base = self.count_url if count_tokens else self.url
        # Only the query parameters that change the request's meaning: ``key`` may be the
        # caller's gateway token and must never go upstream.
        forwarded = {k: v for k, v in query.items() if k in FORWARDED_QUERY}
        url = base.with_query(forwarded) if forwarded else base
        return await send(
            self.session(url), "POST", url, provider=self.name, timeouts=target.timeouts, data=body, headers=headers,
        )

    async def complete(self, request: ChatRequest, target: Target) -> ChatResult:
        """One non-streaming turn."""
        resp = await self._post(encode_request(request, target.model, stream=False), target.timeouts)
        return decode_result(await read_body(resp, self.name), self.name)

    async def open_stream(self, request: ChatRequest, target: Target) -> ProviderStream:
        """Start a streaming turn; returns once Anthropic answered with a success status."""
        resp = await self._post(encode_request(request, target.model, stream=True), target.timeouts)
        return decoded_stream(resp, self.name, AnthropicStreamDecoder(self.name))

    async def embed(self, inputs: list[str], target: Target, dimensions: int | None = None) -> EmbeddingResult:
        """Always fails: Anthropic serves no embeddings."""
        raise BadRequest(f"provider '{self.name}' (Anthropic) serves no embeddings")
