"""Canned bodies, built once: what the load generator sends and what the fake upstream answers,
in the three wire formats (OpenAI Chat Completions, Anthropic Messages, Gemini).

A streamed delta's text can carry a timestamp marker ``t=<monotonic ns>`` written by the
upstream as it sends the chunk; the load generator finds the markers in what it receives,
so the delivery delay of each chunk is measured end to end whatever format the text was
translated into on the way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

Format = Literal["openai", "anthropic", "gemini"]

SYSTEM = "You are a concise assistant."
PROMPT = "Write one sentence about load balancers."
REPLY = "Load balancers spread requests across servers so no single one is overwhelmed."
USAGE = (12, 14)  # input, output tokens reported by the fake upstream
MARKER = re.compile(rb"t=(\d{6,20})")


def _j(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# ---- requests (load generator side) --------------------------------------------------------

def chat_request(model: str, stream: bool = False) -> bytes:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
        "max_tokens": 64,
    }
    if stream:
        body["stream"] = True
    return _j(body)


def messages_request(model: str, stream: bool = False) -> bytes:
    body: dict[str, object] = {
        "model": model, "max_tokens": 64, "system": SYSTEM,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    if stream:
        body["stream"] = True
    return _j(body)


def gemini_request() -> bytes:
    return _j({
        "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "generationConfig": {"maxOutputTokens": 64},
    })


# ---- responses (fake upstream side) --------------------------------------------------------

@dataclass(frozen=True)
class Canned:
    """One format's answers: a whole JSON reply, and a stream as head + deltas + tail."""

    json: bytes
    stream_head: bytes  # sent with the first delta
    delta_prefix: bytes  # delta = prefix + text + suffix (text needs no JSON escaping)
    delta_suffix: bytes
    stream_tail: bytes
    stream_usage: bytes  # OpenAI only: the usage chunk, sent when the request asked for it
    content_type: str
    stream_content_type: str = "text/event-stream"

    def delta(self, text: str) -> bytes:
        return self.delta_prefix + text.encode() + self.delta_suffix

    def whole_stream(self, deltas: int, usage: bool) -> bytes:
        words = (REPLY.split() * (deltas // 8 + 2))[:deltas]
        body = self.stream_head + b"".join(self.delta(w + " ") for w in words) + self.stream_tail
        if usage and self.stream_usage:
            body = body.replace(b"data: [DONE]", self.stream_usage + b"data: [DONE]")
        return body


def _sse(obj: object, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + _j(obj) + b"\n\n"


def _split(template: bytes) -> tuple[bytes, bytes]:
    prefix, _, suffix = template.partition(b"@TEXT@")
    return prefix, suffix


def _openai() -> Canned:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "bench"}
    reply = {
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "bench",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": USAGE[0], "completion_tokens": USAGE[1], "total_tokens": sum(USAGE)},
    }
    head = _sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
    prefix, suffix = _split(_sse({**base, "choices": [{"index": 0, "delta": {"content": "@TEXT@"}, "finish_reason": None}]}))
    tail = _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + b"data: [DONE]\n\n"
    usage = _sse({**base, "choices": [], "usage": reply["usage"]})
    return Canned(_j(reply), head, prefix, suffix, tail, usage, "application/json")


def _anthropic() -> Canned:
    reply = {
        "id": "msg_bench", "type": "message", "role": "assistant", "model": "bench",
        "content": [{"type": "text", "text": REPLY}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": USAGE[0], "output_tokens": USAGE[1]},
    }
    start = {**reply, "content": [], "stop_reason": None, "usage": {"input_tokens": USAGE[0], "output_tokens": 1}}
    head = _sse({"type": "message_start", "message": start}, "message_start") + _sse(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, "content_block_start")
    prefix, suffix = _split(_sse(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "@TEXT@"}}, "content_block_delta"))
    tail = (
        _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        + _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": USAGE[1]}}, "message_delta")
        + _sse({"type": "message_stop"}, "message_stop")
    )
    return Canned(_j(reply), head, prefix, suffix, tail, b"", "application/json")


def _gemini() -> Canned:
    usage = {"promptTokenCount": USAGE[0], "candidatesTokenCount": USAGE[1], "totalTokenCount": sum(USAGE)}
    reply = {
        "candidates": [{"content": {"parts": [{"text": REPLY}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": usage, "modelVersion": "bench",
    }
    prefix, suffix = _split(_sse(
        {"candidates": [{"content": {"parts": [{"text": "@TEXT@"}], "role": "model"}, "index": 0}], "modelVersion": "bench"}))
    tail = _sse({
        "candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": usage, "modelVersion": "bench",
    })
    return Canned(_j(reply), b"", prefix, suffix, tail, b"", "application/json")


CANNED: dict[Format, Canned] = {"openai": _openai(), "anthropic": _anthropic(), "gemini": _gemini()}
