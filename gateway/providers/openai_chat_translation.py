"""IR <-> OpenAI Chat Completions for the provider side: the body sent upstream, and the
reply and stream read back. Pure functions over bytes; the transport is ``providers/openai.py``.

Dropped knowingly on the way out: thinking (Chat Completions takes no reasoning back, and
DeepSeek rejects ``reasoning_content`` in input messages), a tool result's ``is_error``
(no field for it; the content still says what went wrong) and its ``name``.
"""

from __future__ import annotations

import secrets
from typing import Literal

import msgspec
from msgspec import UNSET

from gateway.errors import (
    BadRequest, GatewayError, UpstreamError, UpstreamInvalidResponse, UpstreamStatus, UpstreamUnavailable,
)
from gateway.ir import (
    ChatRequest, ChatResult, FinishEvent, FinishReason, ImagePart, Part, StreamEvent, TextDelta,
    TextPart, ThinkingDelta, ThinkingPart, ToolCallDelta, ToolCallPart, ToolCallStart, ToolResultPart,
    UsageEvent,
)
from gateway.providers.http import decode_json
from gateway.streaming.passthrough import openai_usage
from gateway.streaming.sse import SSEEventDecoder
from gateway.wire import openai_chat as w

_EMPTY_SCHEMA = msgspec.Raw(b'{"type":"object","properties":{}}')
_encode = msgspec.json.Encoder()
_decode_completion = msgspec.json.Decoder(w.UpstreamCompletion)
_decode_chunk = msgspec.json.Decoder(w.UpstreamChunk)

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # the legacy functions API
    "content_filter": "content_filter",
}

# Error codes and types seen in `{"error": ...}` events inside a 200 stream; code wins over type.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "context_length_exceeded": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "server_error": 500,
    "api_error": 500,
    "service_unavailable": 503,
}


# ---- IR request -> Chat Completions --------------------------------------------------------

def _image(part: ImagePart) -> w.ImageContent:
    if part.data is not None:
        if not part.media_type:
            raise BadRequest("an inline image needs a media_type")
        url = f"data:{part.media_type};base64,{part.data}"
    elif part.url:
        url = part.url
    else:
        raise BadRequest("an image needs a url or data")
    return w.ImageContent(w.ImageURL(url, part.detail if part.detail is not None else UNSET))


def _user(parts: tuple[Part, ...]) -> w.ChatMessage | None:
    content = [w.TextContent(p.text) if isinstance(p, TextPart) else _image(p) for p in parts
               if isinstance(p, (TextPart, ImagePart))]
    if not content:
        return None
    if len(content) == 1 and isinstance(content[0], w.TextContent):
        return w.ChatMessage("user", content[0].text)  # plain string: what every compatible server takes
    return w.ChatMessage("user", content)


def _assistant(parts: tuple[Part, ...]) -> w.ChatMessage | None:
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    calls = [
        # vLLM's chat templates json-parse arguments; a call without any must still be an object.
        w.ToolCall(p.id, w.FunctionCall(p.name, p.arguments or "{}"))
        for p in parts if isinstance(p, ToolCallPart)
    ]
    if not text and not calls:
        return None  # only thinking, which Chat Completions cannot take back
    return w.ChatMessage("assistant", text if text or not calls else None, tool_calls=calls or None)


def _messages(req: ChatRequest) -> list[w.ChatMessage]:
    out = [w.ChatMessage("system", s) for s in req.system]
    for message in req.messages:
        if message.role == "assistant":
            encoded = _assistant(message.parts)
            if encoded is not None:
                out.append(encoded)
            continue
        # Tool results become role "tool" messages wherever they ride (an Anthropic user turn
        # carries them), ahead of the rest of the turn, which must follow the tool calls directly.
        out.extend(
            w.ChatMessage("tool", p.content, tool_call_id=p.tool_call_id)
            for p in message.parts if isinstance(p, ToolResultPart)
        )
        encoded = _user(message.parts)
        if encoded is not None:
            out.append(encoded)
    return out


def _tool_choice(req: ChatRequest) -> Literal["auto", "none", "required"] | w.NamedToolChoice | None:
    choice = req.tool_choice
    if choice is None:
        return None
    if choice.name:
        return w.NamedToolChoiceParam(w.NamedFunction(choice.name))
    return choice.mode


def _response_format(req: ChatRequest) -> w.ResponseFormat | None:
    fmt = req.response_format
    if fmt is None:
        return None
    if fmt.type != "json_schema":
        return w.ResponseFormat(fmt.type)
    return w.ResponseFormat("json_schema", w.JSONSchemaParam(
        name=fmt.name or "response",
        schema=fmt.schema if fmt.schema is not None else UNSET,
        strict=fmt.strict,
    ))


def encode_request(req: ChatRequest, model: str, stream: bool, *, max_completion_tokens: bool = True) -> bytes:
    """The ``/chat/completions`` body for ``req`` sent to provider model ``model``.

    ``max_completion_tokens`` picks the field for the token limit: OpenAI deprecated
    ``max_tokens`` (its reasoning models reject it), while many compatible servers know only
    ``max_tokens``. Streams always ask for the usage chunk, which accounting needs.
    """
    tools = [
        w.ToolParam(w.FunctionDef(
            t.name,
            t.description if t.description is not None else UNSET,
            t.parameters if t.parameters is not None else _EMPTY_SCHEMA,
        ))
        for t in req.tools
    ]
    limit = req.max_tokens
    body = w.ChatCompletionRequest(
        model=model,
        messages=_messages(req),
        temperature=req.temperature,
        top_p=req.top_p,
        max_tokens=None if max_completion_tokens else limit,
        max_completion_tokens=limit if max_completion_tokens else None,
        stop=list(req.stop) or None,
        seed=req.seed,
        stream=True if stream else None,
        stream_options=w.StreamOptions(include_usage=True) if stream else None,
        tools=tools or None,
        # OpenAI rejects tool_choice and parallel_tool_calls when no tools are given.
        tool_choice=_tool_choice(req) if tools else None,
        parallel_tool_calls=req.parallel_tool_calls if tools else None,
        response_format=_response_format(req),
        user=req.user,
    )
    return _encode.encode(body)


# ---- Chat Completions -> IR result ---------------------------------------------------------

def _finish_reason(reason: str | None) -> FinishReason:
    return _FINISH.get(reason or "", "stop")


def decode_result(body: bytes, provider: str = "openai") -> ChatResult:
    """A ``chat.completion`` body as an IR result: reasoning, then text, then tool calls.

    A refusal becomes the reply text, since the IR has no part of its own for it.
    """
    reply: w.UpstreamCompletion = decode_json(_decode_completion, body, provider)
    if not reply.choices:
        raise UpstreamInvalidResponse(f"provider '{provider}' sent a completion without choices")
    choice = reply.choices[0]
    message = choice.message
    parts: list[Part] = []
    reasoning = message.reasoning_content or message.reasoning
    if reasoning:
        parts.append(ThinkingPart(reasoning))
    text = message.content or message.refusal
    if text:
        parts.append(TextPart(text))
    parts.extend(ToolCallPart(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ())
    return ChatResult(
        id=reply.id or "chatcmpl-" + secrets.token_hex(12),
        model=reply.model,
        parts=parts,
        finish_reason=_finish_reason(choice.finish_reason),
        usage=openai_usage(reply.usage) if reply.usage is not None else None,
        created=reply.created,
    )


# ---- Chat Completions stream -> IR events --------------------------------------------------

def _stream_error(error: w.UpstreamErrorDetail | str, provider: str) -> GatewayError:
    if isinstance(error, str):
        return UpstreamError(f"provider '{provider}' stream failed: {error}")
    message = f"provider '{provider}' stream failed: {error.message or error.type or 'no message'}"
    if isinstance(error.code, int) and 400 <= error.code < 600:
        status: int | None = error.code
    else:
        status = _ERROR_STATUS.get(error.code or "") or _ERROR_STATUS.get(error.type or "")
    return UpstreamStatus(status, message) if status is not None else UpstreamError(message)


class OpenAIChatStreamDecoder(SSEEventDecoder):
    """Chat Completions SSE bytes -> IR stream events; one per upstream stream, pure over bytes.

    Only the first choice is read (the gateway never asks for more). The IR numbers tool
    calls in the order they start; upstream ``index`` normally agrees, but some compatible
    servers send every call complete at index 0, so a new ``id`` at an open index starts
    the next call.
    """

    def __init__(self, provider: str = "openai") -> None:
        super().__init__()
        self.provider = provider
        self.id = ""
        self.model = ""
        self._calls: dict[int, tuple[str, int]] = {}  # upstream index -> (call id, IR ordinal)
        self._started = 0
        self._finished = False
        self._done = False

    def finish(self) -> list[StreamEvent]:
        """Events left at the end; raises if the stream broke off before ``[DONE]`` or a finish reason."""
        self._raise_pending()
        out: list[StreamEvent] = []
        for sse in self._sse.finish():
            try:
                self._event(sse.data, out)
            except UpstreamInvalidResponse:
                # A stream cut mid-event leaves half an event behind: the cut is the news, not the garbage.
                if self._done or self._finished:
                    raise
        # Some compatible servers never send [DONE]; a finish reason shows the turn completed.
        if not self._done and not self._finished:
            raise UpstreamUnavailable(f"provider '{self.provider}' ended its stream before [DONE]")
        return out

    def _event(self, data: bytes, out: list[StreamEvent]) -> None:
        if self._done:
            return
        if data == b"[DONE]":
            self._done = True
            return
        chunk: w.UpstreamChunk = decode_json(_decode_chunk, data, self.provider)
        if chunk.error is not None:
            raise _stream_error(chunk.error, self.provider)
        self.id = self.id or chunk.id
        self.model = self.model or chunk.model
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            if choice.delta is not None:
                self._delta(choice.delta, out)
            if choice.finish_reason is not None:
                self._finished = True
                out.append(FinishEvent(_finish_reason(choice.finish_reason)))
        # With continuous usage stats vLLM reports usage on every chunk; it is cumulative.
        if chunk.usage is not None:
            out.append(UsageEvent(openai_usage(chunk.usage)))

    def _delta(self, delta: w.UpstreamDelta, out: list[StreamEvent]) -> None:
        reasoning = delta.reasoning_content or delta.reasoning
        if reasoning:
            out.append(ThinkingDelta(reasoning))
        text = delta.content or delta.refusal
        if text:
            out.append(TextDelta(text))
        for call in delta.tool_calls or ():
            self._tool_call(call, out)

    def _tool_call(self, call: w.UpstreamToolCallDelta, out: list[StreamEvent]) -> None:
        fn = call.function
        known = self._calls.get(call.index)
        if known is None or (call.id and call.id != known[0]):
            if not call.id or fn is None or not fn.name:
                raise UpstreamInvalidResponse(
                    f"provider '{self.provider}' started a tool call without an id and a name"
                )
            known = self._calls[call.index] = (call.id, self._started)
            self._started += 1
            out.append(ToolCallStart(known[1], call.id, fn.name))
        if fn is not None and fn.arguments:
            out.append(ToolCallDelta(known[1], fn.arguments))
