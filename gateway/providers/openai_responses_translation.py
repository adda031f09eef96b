"""IR <-> OpenAI Responses for the provider side: the body sent to an upstream that speaks
Responses (an agent app), and its Response and stream read back. Pure over bytes.

Agents answer in Responses output items, and an agent runs tools itself: a
``function_call`` whose ``function_call_output`` is in the same output is a step the agent
already took, so it is left out of the IR (a caller in another format would otherwise be
asked to run it again); a call without an output is the caller's to run, as from a model.
Several ``message`` items join into one reply text, a blank line between them.

Dropped knowingly on the way out: ``stop`` and ``seed`` (Responses has neither), thinking
parts (reasoning items only mean something to the model that made them), a tool result's
``is_error``. On the way back: annotations, refusals' distinction from text (a refusal is
the reply text), and items other than messages, reasoning, function calls and their outputs.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from gateway.errors import GatewayError, UpstreamError, UpstreamInvalidResponse, UpstreamUnavailable
from gateway.ir import (
    AGENT_RESULT_FIELDS, AgentFieldsEvent, ChatRequest, ChatResult, FinishEvent, FinishReason, ImagePart,
    Part, StreamEvent, TextDelta, TextPart, ThinkingDelta, ThinkingPart, ToolCallDelta, ToolCallPart,
    ToolCallStart, ToolResultPart, UsageEvent,
)
from gateway.providers.http import decode_json
from gateway.streaming.responses_sniff import UsageView
from gateway.streaming.sse import SSEEventDecoder

_encode = msgspec.json.Encoder()


# ---- IR request -> Responses ---------------------------------------------------------------

def _image(part: ImagePart) -> dict[str, Any]:
    url = part.url if part.url is not None else f"data:{part.media_type or 'image/png'};base64,{part.data}"
    image: dict[str, Any] = {"type": "input_image", "image_url": url}
    if part.detail is not None:
        image["detail"] = part.detail
    return image


def _input(req: ChatRequest) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in req.messages:
        if message.role == "user":
            content = [{"type": "input_text", "text": p.text} if isinstance(p, TextPart) else _image(p)
                       for p in message.parts if isinstance(p, (TextPart, ImagePart))]
            items.append({"role": "user", "content": content})
        elif message.role == "assistant":
            text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
            if text:
                items.append({"role": "assistant", "content": text})
            items += [{"type": "function_call", "call_id": p.id, "name": p.name, "arguments": p.arguments}
                      for p in message.parts if isinstance(p, ToolCallPart)]
        else:
            items += [{"type": "function_call_output", "call_id": p.tool_call_id, "output": p.content}
                      for p in message.parts if isinstance(p, ToolResultPart)]
    return items


def encode_request(req: ChatRequest, model: str, stream: bool) -> bytes:
    """The Responses body for ``req``, with the caller's agent fields as it sent them."""
    body: dict[str, Any] = {"model": model, "input": _input(req)}
    if req.system:
        body["instructions"] = "\n\n".join(req.system)
    if req.tools:
        body["tools"] = [
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters}
            for t in req.tools
        ]
        if req.tool_choice is not None:
            choice = req.tool_choice
            body["tool_choice"] = {"type": "function", "name": choice.name} if choice.name else choice.mode
        if req.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    for field, value in (("temperature", req.temperature), ("top_p", req.top_p),
                         ("max_output_tokens", req.max_tokens), ("user", req.user)):
        if value is not None:
            body[field] = value
    fmt = req.response_format
    if fmt is not None:
        text_format: dict[str, Any] = {"type": fmt.type}
        if fmt.type == "json_schema":
            text_format.update(name=fmt.name or "response", schema=fmt.schema)
            if fmt.strict is not None:
                text_format["strict"] = fmt.strict
        body["text"] = {"format": text_format}
    if stream:
        body["stream"] = True
    body.update(req.agent_fields)
    return _encode.encode(body)


# ---- Response -> IR result ----------------------------------------------------------------

class _Content(msgspec.Struct):
    type: str = ""
    text: str | None = None
    refusal: str | None = None


class _Item(msgspec.Struct):
    """Any output item, leniently: agents build them by hand."""

    type: str = "message"
    id: str | None = None
    content: list[_Content] | str | None = None
    summary: list[_Content] = []
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None


class _Response(msgspec.Struct):
    output: list[_Item] = []
    id: str | None = None
    status: str | None = None
    usage: UsageView | None = None
    incomplete_details: dict[str, Any] | None = None
    custom_outputs: msgspec.Raw | UnsetType = UNSET
    databricks_output: msgspec.Raw | UnsetType = UNSET


_decode_response = msgspec.json.Decoder(_Response)


def _text(item: _Item) -> str:
    if isinstance(item.content, str):
        return item.content
    return "".join(c.text or c.refusal or "" for c in item.content or ())


def _answered(items: list[_Item]) -> set[str]:
    """The call ids the agent already has outputs for (its own tool steps)."""
    return {i.call_id for i in items if i.type == "function_call_output" and i.call_id}


def agent_fields_of(obj: Any) -> dict[str, msgspec.Raw]:
    """The AGENT_RESULT_FIELDS ``obj`` (a decoded view) carries."""
    return {n: v for n in AGENT_RESULT_FIELDS if isinstance(v := getattr(obj, n), msgspec.Raw) and bytes(v) != b"null"}


def _finish(status: str | None, incomplete: dict[str, Any] | None, calls: bool) -> FinishReason:
    if status == "incomplete":
        reason = (incomplete or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if calls else "stop"


def decode_result(body: bytes, provider: str) -> ChatResult:
    """A Response body as an IR result (see the module docstring for what is left out)."""
    reply: _Response = decode_json(_decode_response, body, provider)
    answered = _answered(reply.output)
    parts: list[Part] = []
    texts: list[str] = []
    for item in reply.output:
        if item.type == "message":
            if text := _text(item):
                texts.append(text)
        elif item.type == "reasoning":
            if summary := "".join(c.text or "" for c in item.summary):
                parts.append(ThinkingPart(summary))
        elif item.type == "function_call" and item.call_id not in answered:
            if not item.call_id or not item.name:
                raise UpstreamInvalidResponse(f"provider '{provider}' sent a function_call without call_id and name")
            parts.append(ToolCallPart(item.call_id, item.name, item.arguments or "{}"))
    if texts:
        # Text goes after reasoning and before calls, as every IR result has it.
        at = next((i for i, p in enumerate(parts) if isinstance(p, ToolCallPart)), len(parts))
        parts.insert(at, TextPart("\n\n".join(texts)))
    calls = any(isinstance(p, ToolCallPart) for p in parts)
    return ChatResult(
        id=reply.id or "resp_" + secrets.token_hex(12), model="", parts=parts,
        finish_reason=_finish(reply.status, reply.incomplete_details, calls),
        usage=reply.usage.to_ir() if reply.usage is not None else None,
        agent_fields=agent_fields_of(reply),
    )


# ---- Responses stream -> IR events ---------------------------------------------------------

class _Event(msgspec.Struct):
    """Any stream event, and the MLflow agent server's bare ``{"error": "..."}`` data event."""

    type: str = ""
    item_id: str | None = None
    output_index: int | None = None
    delta: str | None = None
    item: _Item | None = None
    response: _Response | None = None
    message: str | None = None
    error: msgspec.Raw | UnsetType = UNSET
    custom_outputs: msgspec.Raw | UnsetType = UNSET
    databricks_output: msgspec.Raw | UnsetType = UNSET


_decode_event = msgspec.json.Decoder(_Event)
_FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesStreamDecoder(SSEEventDecoder):
    """Responses SSE bytes (OpenAI's events, or an agent's subset of them) -> IR events.

    Agents often stream ``response.output_text.delta`` events and then each item whole in
    ``response.output_item.done``, or only the done items: text is taken from the deltas,
    and from a done message only when no delta of that item came. Function calls are held
    until the stream ends, since a later ``function_call_output`` shows a call the agent
    ran itself (see the module docstring).
    """

    def __init__(self, provider: str) -> None:
        super().__init__()
        self.provider = provider
        self._streamed: set[str] = set()  # item ids whose text came as deltas
        self._texts = 0  # message items with text so far
        self._current: str | None = None  # the message item the last text belonged to
        self._calls: dict[str, tuple[str, str]] = {}  # call_id -> (name, arguments), in order
        self._answered: set[str] = set()
        self._status: str | None = None
        self._incomplete: dict[str, Any] | None = None
        self._ended = False

    def _text(self, item_id: str | None, text: str, out: list[StreamEvent]) -> None:
        if not text:
            return
        if not self._texts or (item_id is not None and item_id != self._current):
            if self._texts:
                out.append(TextDelta("\n\n"))  # another message item: a paragraph of its own
            self._texts += 1
            self._current = item_id
        out.append(TextDelta(text))

    def _event(self, data: bytes, out: list[StreamEvent]) -> None:
        if data == b"[DONE]":
            self._ended = True
            return
        ev: _Event = decode_json(_decode_event, data, self.provider)
        if ev.error is not UNSET or ev.type in ("error", "response.failed"):
            raise self._failure(ev)
        kind = ev.type
        if kind == "response.output_text.delta" and ev.delta:
            if ev.item_id:
                self._streamed.add(ev.item_id)
            self._text(ev.item_id, ev.delta, out)
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta") and ev.delta:
            out.append(ThinkingDelta(ev.delta))
        elif kind == "response.output_item.done" and ev.item is not None:
            self._item_done(ev.item, out)
        elif kind in _FINAL and ev.response is not None:
            self._ended = True
            self._status, self._incomplete = ev.response.status, ev.response.incomplete_details
            if ev.response.usage is not None:
                out.append(UsageEvent(ev.response.usage.to_ir()))
            if fields := agent_fields_of(ev.response):
                out.append(AgentFieldsEvent(fields))
        # An agent puts its fields on any event, or on one of their own.
        if fields := agent_fields_of(ev):
            out.append(AgentFieldsEvent(fields))

    def _item_done(self, item: _Item, out: list[StreamEvent]) -> None:
        if item.type == "message" and item.id not in self._streamed:
            self._text(item.id, _text(item), out)
        elif item.type == "function_call" and item.call_id and item.name:
            self._calls[item.call_id] = (item.name, item.arguments or "{}")
        elif item.type == "function_call_output" and item.call_id:
            self._answered.add(item.call_id)

    def _failure(self, ev: _Event) -> GatewayError:
        detail = ev.message
        if detail is None and isinstance(ev.error, msgspec.Raw):
            detail = bytes(ev.error).decode("utf-8", "replace")[:500]
        return UpstreamError(f"provider '{self.provider}' stream failed: {detail or 'no message'}")

    def finish(self) -> list[StreamEvent]:
        """The calls the caller must run, then the finish reason; raises if the stream broke off."""
        self._raise_pending()
        out: list[StreamEvent] = []
        for sse in self._sse.finish():
            self._event(sse.data, out)
        if not self._ended:
            raise UpstreamUnavailable(f"provider '{self.provider}' ended its stream before it completed")
        pending = [(cid, call) for cid, call in self._calls.items() if cid not in self._answered]
        for index, (call_id, (name, arguments)) in enumerate(pending):
            out += [ToolCallStart(index, call_id, name), ToolCallDelta(index, arguments)]
        out.append(FinishEvent(_finish(self._status, self._incomplete, bool(pending))))
        return out
