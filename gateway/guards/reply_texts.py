"""The text of a model's reply, for the output guardrails, read from the IR.

A reply's texts are its text parts, its thinking and each tool call's arguments, in order.
A stream is read whole (the stage buffers it): each run of text deltas, each run of
thinking deltas and each tool call's arguments make one text. Masking rewrites the reply:
a masked stream is replayed as one event per text (the text runs and argument pieces
merged), so no piece of a masked value can slip out between two deltas.

A passthrough reply is in the provider's own format, which is the caller's: ``ReplyFormat``
says how to read that format into the IR, with the same decoders translation uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from gateway.ir import (
    ChatResult, StreamEvent, TextDelta, TextPart, ThinkingDelta, ThinkingPart, ToolCallDelta, ToolCallPart, Usage,
    UsageEvent,
)
from gateway.providers import anthropic, gemini
from gateway.providers import openai_chat_translation as openai_chat
from gateway.providers import openai_responses_translation as openai_responses


def result_texts(result: ChatResult) -> list[str]:
    out: list[str] = []
    for part in result.parts:
        if isinstance(part, (TextPart, ThinkingPart)):
            out.append(part.text)
        elif isinstance(part, ToolCallPart):
            out.append(part.arguments)
    return out


def result_with(result: ChatResult, texts: Sequence[str]) -> ChatResult:
    """``result`` with its texts replaced by ``texts`` (as ``result_texts`` lists them)."""
    replacements = iter(texts)
    parts = []
    for part in result.parts:
        if isinstance(part, TextPart):
            part = TextPart(next(replacements))
        elif isinstance(part, ThinkingPart):
            part = msgspec.structs.replace(part, text=next(replacements))
        elif isinstance(part, ToolCallPart):
            part = msgspec.structs.replace(part, arguments=next(replacements))
        parts.append(part)
    return msgspec.structs.replace(result, parts=parts)


def _segments(events: Sequence[StreamEvent]) -> tuple[list[int | None], list[list[str]]]:
    """For each event the text it belongs to (None: it carries none), and each text's pieces."""
    owner: list[int | None] = []
    pieces: list[list[str]] = []
    calls: dict[int, int] = {}
    run: tuple[type, int] | None = None  # the text or thinking run going on
    for ev in events:
        seg: int | None = None
        if isinstance(ev, TextDelta) or (isinstance(ev, ThinkingDelta) and ev.text):
            kind = type(ev)
            if run is None or run[0] is not kind:
                run = (kind, len(pieces))
                pieces.append([])
            seg = run[1]
            pieces[seg].append(ev.text)
        elif isinstance(ev, ToolCallDelta):
            if ev.index not in calls:
                calls[ev.index] = len(pieces)
                pieces.append([])
            seg = calls[ev.index]
            pieces[seg].append(ev.arguments)
            run = None
        elif not isinstance(ev, UsageEvent):
            run = None
        owner.append(seg)
    return owner, pieces


def stream_texts(events: Sequence[StreamEvent]) -> list[str]:
    return ["".join(p) for p in _segments(events)[1]]


def stream_with(events: Sequence[StreamEvent], texts: Sequence[str]) -> list[StreamEvent]:
    """``events`` with each text replaced by ``texts`` and sent as one event, where it began."""
    owner, _pieces = _segments(events)
    out: list[StreamEvent] = []
    sent: set[int] = set()
    for ev, seg in zip(events, owner):
        if seg is None:
            out.append(ev)
        elif seg in sent:
            if isinstance(ev, ThinkingDelta) and ev.signature:
                out.append(ThinkingDelta("", ev.signature))  # the piece is merged, its signature kept
        else:
            sent.add(seg)
            if isinstance(ev, TextDelta):
                out.append(TextDelta(texts[seg]))
            elif isinstance(ev, ThinkingDelta):
                out.append(ThinkingDelta(texts[seg], ev.signature))
            else:
                assert isinstance(ev, ToolCallDelta)
                out.append(ToolCallDelta(ev.index, texts[seg]))
    return out


def stream_usage(events: Sequence[StreamEvent]) -> Usage | None:
    """The last usage a stream reported (usage events are cumulative)."""
    usage = None
    for ev in events:
        if isinstance(ev, UsageEvent):
            usage = ev.usage
    return usage


class ReplyFormat:
    """How to read one wire format's reply into the IR: ``result(body, provider, model)``
    for a complete body, ``stream(provider)`` for a fresh stream decoder (``feed``/``finish``)."""

    __slots__ = ("result", "stream")

    def __init__(self, result: Callable[[bytes, str, str], ChatResult], stream: Callable[[str], Any]) -> None:
        self.result = result
        self.stream = stream


OPENAI_CHAT = ReplyFormat(lambda body, provider, _model: openai_chat.decode_result(body, provider),
                          openai_chat.OpenAIChatStreamDecoder)
OPENAI_RESPONSES = ReplyFormat(lambda body, provider, _model: openai_responses.decode_result(body, provider),
                               openai_responses.ResponsesStreamDecoder)
ANTHROPIC = ReplyFormat(lambda body, provider, _model: anthropic.decode_result(body, provider),
                        anthropic.AnthropicStreamDecoder)
GEMINI = ReplyFormat(lambda body, provider, model: gemini.decode_result(body, model, provider),
                     gemini.GeminiStreamDecoder)
