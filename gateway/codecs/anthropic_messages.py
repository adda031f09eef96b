"""Anthropic Messages as a client API: request -> IR, IR result and events -> wire.

Redacted thinking follows the provider adapter's convention: a ``ThinkingPart`` with empty
text whose signature is ``REDACTED_THINKING_PREFIX`` + the opaque data, both ways.

Degradations, by design: block types the IR cannot carry (document, search_result,
server_tool_use, web_search_tool_result, container_upload, ...) and server tools without
``input_schema`` are skipped, as are ``thinking``, ``top_k``, ``cache_control`` and every
other field a translation has no place for (same-format passthrough keeps them all);
images inside a tool_result move to the user message that follows the tool results (IR
tool results hold text only); ``stop_sequence`` is always null (the IR does not say which
sequence matched); a Gemini thought signature on a tool call is dropped; thinking without a
signature goes out with ``"signature": ""``.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
from msgspec import UNSET

from gateway.codecs.errors import anthropic_error_body
from gateway.codecs.openai_chat import bad_request_from
from gateway.errors import BadRequest, GatewayError
from gateway.ir import (
    ChatRequest, ChatResult, FinishEvent, FinishReason, ImagePart, Message, Part, StreamEvent, TextDelta,
    TextPart, ThinkingDelta, ThinkingPart, ToolCallDelta, ToolCallPart, ToolCallStart, ToolChoice,
    ToolResultPart, ToolSpec, Usage, UsageEvent,
)
from gateway.ir.result import estimate_tokens
from gateway.providers.anthropic import REDACTED_THINKING_PREFIX
from gateway.streaming.sse import encode_sse
from gateway.wire import anthropic as w

_json_object = msgspec.json.Decoder(dict[str, msgspec.Raw])
_json_value = msgspec.json.Decoder(msgspec.Raw)
_EMPTY_OBJECT = msgspec.Raw(b"{}")
_TOOL_RESULT_ITEM_TYPES = frozenset({"text", "image"})

_STOP: dict[FinishReason, str] = {
    "stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
    "content_filter": "refusal", "error": "end_turn",
}


# ---- request -> IR -------------------------------------------------------------------------

def decode_view(body: bytes) -> w.MessagesRequestView:
    """Read only ``model``, ``stream`` and ``max_tokens``: enough to route and to pass through."""
    try:
        return w.request_view_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc) from None


def _decode_block(decoder: msgspec.json.Decoder, raw: msgspec.Raw, known: frozenset[str], where: str) -> Any:
    """One content block, or None for a type the IR cannot carry."""
    try:
        return decoder.decode(raw)
    except msgspec.DecodeError as exc:
        try:
            kind = w.type_head_decoder.decode(raw).type
        except msgspec.DecodeError:
            kind = ""
        if kind and kind not in known:
            # document, search_result, server_tool_use, web_search_tool_result, container_upload, ...:
            # no IR part holds them; a same-format passthrough forwards them untouched.
            return None
        raise BadRequest(f"Invalid request: {where}: {exc}", param=where) from None


def _blocks(content: str | list[msgspec.Raw], where: str) -> list[tuple[str, w.CallerBlock]]:
    if isinstance(content, str):
        return [(where, w.TextBlock(content))]
    out = []
    for j, raw in enumerate(content):
        at = f"{where}.content[{j}]"
        block = _decode_block(w.caller_block_decoder, raw, w.BLOCK_TYPES, at)
        if block is not None:
            out.append((at, block))
    return out


def _image(block: w.ImageBlock) -> ImagePart:
    source = block.source
    if isinstance(source, w.Base64Source):
        return ImagePart(data=source.data, media_type=source.media_type)
    return ImagePart(url=source.url)


def _part(block: w.CallerBlock) -> Part:
    if isinstance(block, w.TextBlock):
        return TextPart(block.text)
    if isinstance(block, w.ImageBlock):
        return _image(block)
    if isinstance(block, w.ToolUseBlock):
        return ToolCallPart(block.id, block.name, bytes(block.input).decode())
    if isinstance(block, w.ThinkingBlock):
        return ThinkingPart(block.thinking, block.signature or None)
    assert isinstance(block, w.RedactedThinkingBlock)
    return ThinkingPart("", REDACTED_THINKING_PREFIX + block.data)


def _tool_result(block: w.CallerToolResultBlock, where: str) -> tuple[str, list[ImagePart]]:
    """The text of a tool result, and the images it holds."""
    if not isinstance(block.content, list):
        return block.content or "", []
    texts: list[str] = []
    images: list[ImagePart] = []
    for j, raw in enumerate(block.content):
        item = _decode_block(w.tool_result_item_decoder, raw, _TOOL_RESULT_ITEM_TYPES, f"{where}.content[{j}]")
        if isinstance(item, w.TextBlock):
            texts.append(item.text)
        elif isinstance(item, w.ImageBlock):
            images.append(_image(item))
    return "\n".join(texts), images


def _turn(message: w.CallerMessage, where: str, tool_names: dict[str, str]) -> list[Message]:
    """One caller message as IR messages: a tool message per tool_result, then the rest."""
    results: list[Message] = []
    parts: list[Part] = []
    for at, block in _blocks(message.content, where):
        if isinstance(block, w.CallerToolResultBlock):
            if message.role != "user":
                raise BadRequest(f"{at}: tool_result blocks belong in user messages", param=at)
            text, images = _tool_result(block, at)
            result = ToolResultPart(block.tool_use_id, text, tool_names.get(block.tool_use_id), bool(block.is_error))
            results.append(Message("tool", (result,)))
            parts.extend(images)  # IR tool results hold text only; the images follow in the user turn
        else:
            part = _part(block)
            if isinstance(part, ToolCallPart):
                tool_names[part.id] = part.name  # Gemini answers a call by name: results carry it
            parts.append(part)
    if parts or not results:
        results.append(Message("assistant" if message.role == "assistant" else "user", tuple(parts)))
    return results


def _tools(tools: list[w.CallerTool] | None) -> tuple[ToolSpec, ...]:
    # Server tools (web_search_20250305, bash_20250124, text_editor_...) have no input_schema:
    # they run at Anthropic, so no other provider can offer them.
    return tuple(
        ToolSpec(t.name, t.description, t.input_schema)
        for t in tools or () if t.input_schema is not UNSET
    )


def _tool_choice(choice: w.ToolChoice | None, tools: tuple[ToolSpec, ...]) -> tuple[ToolChoice | None, bool | None]:
    """The IR tool choice and ``parallel_tool_calls``."""
    if choice is None:
        return None, None
    parallel = False if getattr(choice, "disable_parallel_tool_use", UNSET) is True else None
    if isinstance(choice, w.ToolChoiceNone):
        return ToolChoice("none"), None
    if not tools:
        return None, None  # only server tools were offered, and they are gone
    if isinstance(choice, w.ToolChoiceTool):
        if all(t.name != choice.name for t in tools):
            return None, parallel  # it forced a server tool
        return ToolChoice("required", choice.name), parallel
    return ToolChoice("required" if isinstance(choice, w.ToolChoiceAny) else "auto"), parallel


def _chat_request(body: bytes, require_max_tokens: bool) -> ChatRequest:
    try:
        req = w.caller_request_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc) from None
    if require_max_tokens and req.max_tokens is None:
        raise BadRequest("max_tokens: Field required", param="max_tokens")
    if not req.messages:
        raise BadRequest("messages: at least one message is required", param="messages")
    system = [req.system] if isinstance(req.system, str) else [b.text for b in req.system or ()]
    messages: list[Message] = []
    tool_names: dict[str, str] = {}
    for i, m in enumerate(req.messages):
        if m.role == "system":  # Claude Code sends one; the IR keeps system text apart
            system.extend(b.text for _, b in _blocks(m.content, f"messages[{i}]") if isinstance(b, w.TextBlock))
        else:
            messages.extend(_turn(m, f"messages[{i}]", tool_names))
    tools = _tools(req.tools)
    tool_choice, parallel = _tool_choice(req.tool_choice, tools)
    return ChatRequest(
        model=req.model,
        messages=tuple(messages),
        system=tuple(system),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        temperature=req.temperature,
        top_p=req.top_p,
        max_tokens=req.max_tokens,
        stop=tuple(req.stop_sequences or ()),
        stream=bool(req.stream),
        include_usage=True,  # Anthropic streams always carry usage
        user=req.metadata.user_id if req.metadata else None,
    )


def decode_request(body: bytes) -> ChatRequest:
    """Validate a Messages body and turn it into the IR; fields the IR has no place for are ignored."""
    return _chat_request(body, require_max_tokens=True)


def decode_count_tokens_request(body: bytes) -> ChatRequest:
    """A ``/v1/messages/count_tokens`` body (a Messages body without ``max_tokens``) as the IR."""
    return _chat_request(body, require_max_tokens=False)


def count_tokens_estimate(req: ChatRequest) -> int:
    """The gateway's documented estimate, (characters + 1) / 4, over the prompt text and the
    tools' names, descriptions and schemas; images and thinking are not counted."""
    tool_chars = sum(len(t.name) + len(t.description or "") + len(t.parameters or b"") for t in req.tools)
    return estimate_tokens(req.prompt_chars() + tool_chars)


def encode_count_tokens(input_tokens: int) -> bytes:
    """A count_tokens response body."""
    return w.encoder.encode(w.CountTokensReply(input_tokens))


# ---- IR -> response ------------------------------------------------------------------------

def _message_id(result_id: str) -> str:
    if result_id.startswith("msg_"):
        return result_id
    return "msg_" + (result_id or secrets.token_hex(12))


def _tool_id(call_id: str) -> str:
    return call_id or "toolu_" + secrets.token_hex(12)


def _tool_input(arguments: str) -> msgspec.Raw:
    # Anthropic callers read input as an object; broken or empty argument text becomes {}.
    try:
        _json_object.decode(arguments)
    except msgspec.DecodeError:
        return _EMPTY_OBJECT
    return msgspec.Raw(arguments)


def _thinking_block(text: str, signature: str | None) -> w.ReplyThinkingBlock | w.RedactedThinkingBlock:
    if signature and signature.startswith(REDACTED_THINKING_PREFIX):
        return w.RedactedThinkingBlock(signature[len(REDACTED_THINKING_PREFIX):])
    return w.ReplyThinkingBlock(text, signature or "")


def _reply_usage(usage: Usage | None, output_chars: int) -> w.ReplyUsage:
    if usage is None:
        return w.ReplyUsage(0, estimate_tokens(output_chars), 0, 0)
    # The IR counts input like OpenAI (cached tokens included); Anthropic's input_tokens excludes them.
    uncached = max(0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens)
    return w.ReplyUsage(uncached, usage.output_tokens, usage.cache_write_tokens, usage.cache_read_tokens)


def _stop_reason(finish: FinishReason | None, called_tools: bool) -> str:
    stop = _STOP[finish or "stop"]
    # Some providers end a turn of tool calls with a plain stop; Anthropic agents loop on tool_use.
    return "tool_use" if called_tools and stop == "end_turn" else stop


def encode_result(result: ChatResult, model: str) -> bytes:
    """A ChatResult as a Messages ``message`` body; ``model`` is the endpoint name the caller used."""
    content: list[w.TextBlock | w.ToolUseBlock | w.ReplyThinkingBlock | w.RedactedThinkingBlock] = []
    for part in result.parts:
        if isinstance(part, TextPart):
            if part.text:  # Anthropic never sends empty text blocks
                content.append(w.TextBlock(part.text))
        elif isinstance(part, ThinkingPart):
            content.append(_thinking_block(part.text, part.signature))
        elif isinstance(part, ToolCallPart):
            content.append(w.ToolUseBlock(_tool_id(part.id), part.name, _tool_input(part.arguments)))
    body = w.ReplyMessage(
        id=_message_id(result.id),
        model=model,
        content=content,
        stop_reason=_stop_reason(result.finish_reason, any(isinstance(b, w.ToolUseBlock) for b in content)),
        usage=_reply_usage(result.usage, result.output_chars()),
    )
    return w.encoder.encode(body)


class _Call:
    """One streamed tool call: the argument text so far, and where its block stands."""

    __slots__ = ("id", "name", "args", "closed")

    def __init__(self, call_id: str, name: str) -> None:
        self.id, self.name = _tool_id(call_id), name
        self.args: list[str] = []
        self.closed = False

    def complete(self) -> bool:
        """True once the argument text is a whole JSON value: no more deltas can belong to it."""
        try:
            _json_value.decode("".join(self.args))
        except msgspec.DecodeError:
            return False
        return True


class AnthropicStreamEncoder:
    """IR stream events -> Anthropic SSE: message_start, content blocks, message_delta, message_stop.

    Anthropic blocks are sequential and never interleave. Tool calls stream live while only
    one is under way; when another starts, its deltas are buffered until the open call's
    arguments form a whole JSON value (or the tool calls end), then its block opens with
    the buffered text. A delta for a call whose block already closed is dropped.
    """

    def __init__(self, message_id: str, model: str) -> None:
        self._id = _message_id(message_id)
        self._model = model
        self._started = False
        self._index = 0  # the open block's index, or the next block's
        self._open: str | None = None  # "text", "thinking", "redacted", "tool" or None
        self._signed = False  # the open thinking block has its signature
        self._calls: dict[int, _Call] = {}
        self._tool = -1  # IR index of the call whose block is open
        self._waiting: list[int] = []  # calls started while another's block was open
        self._finish: FinishReason | None = None
        self.usage: Usage | None = None
        self.output_chars = 0

    def _emit(self, out: list[bytes], event: msgspec.Struct) -> None:
        out.append(encode_sse(w.encoder.encode(event), event.__struct_config__.tag))

    def _start_block(self, out: list[bytes], kind: str, block: msgspec.Struct) -> None:
        self._emit(out, w.ContentBlockStart(self._index, msgspec.Raw(w.encoder.encode(block))))
        self._open = kind

    def _delta(self, out: list[bytes], delta: w.BlockDelta) -> None:
        self._emit(out, w.ContentBlockDelta(self._index, delta))

    def _stop_block(self, out: list[bytes]) -> None:
        if self._open is None:
            return
        if self._open == "tool":
            self._calls[self._tool].closed = True
        self._emit(out, w.ContentBlockStop(self._index))
        self._index += 1
        self._open = None

    def _open_call(self, out: list[bytes], index: int) -> None:
        call = self._calls[index]
        self._start_block(out, "tool", w.ToolUseBlock(call.id, call.name, _EMPTY_OBJECT))
        self._tool = index
        if call.args:
            self._delta(out, w.InputJSONDelta("".join(call.args)))

    def _advance(self, out: list[bytes], close_all: bool) -> None:
        """Move on to waiting calls while the open one is complete; with ``close_all``, close every block."""
        while self._open == "tool" and self._waiting and (close_all or self._calls[self._tool].complete()):
            self._stop_block(out)
            self._open_call(out, self._waiting.pop(0))
        if close_all:
            self._stop_block(out)

    def _enter(self, out: list[bytes], kind: str, block: msgspec.Struct) -> None:
        self._advance(out, close_all=True)
        self._start_block(out, kind, block)
        self._signed = False

    def _thinking(self, out: list[bytes], ev: ThinkingDelta) -> None:
        if ev.signature and ev.signature.startswith(REDACTED_THINKING_PREFIX):
            self._enter(out, "redacted", _thinking_block("", ev.signature))
            self._stop_block(out)
            return
        # A signature ends a thinking block: thinking after it opens a new one.
        if (ev.text or ev.signature) and (self._open != "thinking" or self._signed):
            self._enter(out, "thinking", w.ReplyThinkingBlock("", ""))
        if ev.text:
            self._delta(out, w.ThinkingDelta(ev.text))
        if ev.signature:
            self._delta(out, w.SignatureDelta(ev.signature))
            self._signed = True

    def _tool_start(self, out: list[bytes], ev: ToolCallStart) -> None:
        if ev.index in self._calls:
            return
        self._calls[ev.index] = _Call(ev.id, ev.name)
        if self._open == "tool":
            self._waiting.append(ev.index)
            self._advance(out, close_all=False)
        else:
            self._advance(out, close_all=True)
            self._open_call(out, ev.index)

    def _tool_delta(self, out: list[bytes], ev: ToolCallDelta) -> None:
        call = self._calls.get(ev.index)
        # Every call starts with ToolCallStart; text for a closed block has no place to go.
        if call is None or call.closed or not ev.arguments:
            return
        self.output_chars += len(ev.arguments)
        call.args.append(ev.arguments)
        if self._open == "tool" and self._tool == ev.index:
            self._delta(out, w.InputJSONDelta(ev.arguments))
        else:
            self._advance(out, close_all=False)

    def start(self) -> bytes:
        """The message_start event; usage is what is known so far (final counts come in message_delta)."""
        self._started = True
        message = w.ReplyMessage(
            id=self._id, model=self._model, content=[], stop_reason=None,
            usage=_reply_usage(self.usage or Usage(), 0),
        )
        return encode_sse(w.encoder.encode(w.ReplyMessageStart(message)), "message_start")

    def encode(self, events: list[StreamEvent]) -> bytes:
        """SSE bytes for a batch of IR events."""
        out: list[bytes] = []
        if not self._started:
            self.usage = next((e.usage for e in reversed(events) if isinstance(e, UsageEvent)), self.usage)
            out.append(self.start())
        for ev in events:
            if isinstance(ev, TextDelta):
                if ev.text:
                    if self._open != "text":
                        self._enter(out, "text", w.TextBlock(""))
                    self.output_chars += len(ev.text)
                    self._delta(out, w.TextDelta(ev.text))
            elif isinstance(ev, ToolCallDelta):
                self._tool_delta(out, ev)
            elif isinstance(ev, ThinkingDelta):
                self._thinking(out, ev)
            elif isinstance(ev, ToolCallStart):
                self._tool_start(out, ev)
            elif isinstance(ev, FinishEvent):
                self._finish = ev.reason
            elif isinstance(ev, UsageEvent):
                self.usage = ev.usage
        return b"".join(out)

    def finish(self) -> bytes:
        """Close every block, then message_delta (stop reason, cumulative usage) and message_stop."""
        out = [] if self._started else [self.start()]
        self._advance(out, close_all=True)
        # Anthropic message_delta.usage is cumulative: it carries the final counts, input included.
        self._emit(out, w.ReplyMessageDelta(
            w.ReplyStop(_stop_reason(self._finish, bool(self._calls))),
            _reply_usage(self.usage, self.output_chars),
        ))
        self._emit(out, w.MessageStop())
        return b"".join(out)


def stream_error_event(err: GatewayError) -> bytes:
    """An error inside a stream that already started: Anthropic's ``error`` event."""
    return encode_sse(anthropic_error_body(err), "error")
