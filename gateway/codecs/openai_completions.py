"""Legacy OpenAI Completions (``prompt`` in, ``text`` out), as served on
``/serving-endpoints/{endpoint}/invocations`` for completion-shaped payloads.

Always translated: the prompt becomes one user message of a chat turn, since the
providers behind serve chat models. One prompt per request (a list of one is accepted).
"""

from __future__ import annotations

import time

import msgspec

from gateway.codecs.errors import openai_error_body
from gateway.codecs.openai_chat import bad_request_from, encode_usage
from gateway.errors import BadRequest, GatewayError
from gateway.ir import (
    ChatRequest, ChatResult, FinishEvent, Message, StreamEvent, TextDelta, TextPart, ToolCallDelta, Usage, UsageEvent,
)
from gateway.streaming.sse import encode_sse
from gateway.wire import openai_chat as chat_wire


class CompletionRequest(msgspec.Struct):
    prompt: str | list[str]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    stream: bool = False
    user: str | None = None


class CompletionChoice(msgspec.Struct):
    text: str
    index: int = 0
    finish_reason: str | None = None
    logprobs: None = None


class Completion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: chat_wire.Usage | None = None
    object: str = "text_completion"


_decode = msgspec.json.Decoder(CompletionRequest)
_encode = msgspec.json.Encoder()


def decode_request(body: bytes) -> ChatRequest:
    """A completion payload as a one-message chat turn."""
    try:
        req = _decode.decode(body)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc) from None
    prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
    if len(prompts) != 1 or (req.n or 1) != 1:
        raise BadRequest("Exactly one prompt and n=1 are supported", param="prompt")
    return ChatRequest(
        model="", messages=(Message("user", (TextPart(prompts[0]),)),),
        temperature=req.temperature, top_p=req.top_p, max_tokens=req.max_tokens,
        stop=(req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ()), seed=req.seed,
        stream=req.stream, include_usage=True, user=req.user,
    )


def encode_result(result: ChatResult, model: str) -> bytes:
    text = "".join(p.text for p in result.parts if isinstance(p, TextPart))
    usage = encode_usage(result.usage) if result.usage else None
    return _encode.encode(Completion(result.id, result.created or int(time.time()), model,
                                     [CompletionChoice(text, finish_reason=result.finish_reason)], usage))


class CompletionStreamEncoder:
    """IR events -> text_completion SSE chunks, then usage and ``[DONE]``."""

    def __init__(self, completion_id: str, model: str) -> None:
        self._id = completion_id
        self._model = model
        self._created = int(time.time())
        self._finish: str | None = None
        self.usage: Usage | None = None
        self.output_chars = 0

    def _chunk(self, text: str, finish: str | None = None, usage: Usage | None = None) -> bytes:
        choices = [] if usage is not None else [CompletionChoice(text, finish_reason=finish)]
        body = Completion(self._id, self._created, self._model, choices, encode_usage(usage) if usage else None)
        return encode_sse(_encode.encode(body))

    def encode(self, events: list[StreamEvent]) -> bytes:
        out: list[bytes] = []
        for ev in events:
            if isinstance(ev, TextDelta) and ev.text:
                self.output_chars += len(ev.text)
                out.append(self._chunk(ev.text))
            elif isinstance(ev, ToolCallDelta):
                self.output_chars += len(ev.arguments)  # counted, not shown: completions have no tools
            elif isinstance(ev, FinishEvent):
                self._finish = ev.reason
            elif isinstance(ev, UsageEvent):
                self.usage = ev.usage
        return b"".join(out)

    def finish(self) -> bytes:
        out = [self._chunk("", self._finish or "stop")]
        if self.usage is not None:
            out.append(self._chunk("", usage=self.usage))
        out.append(b"data: [DONE]\n\n")
        return b"".join(out)

    @staticmethod
    def error_event(err: GatewayError) -> bytes:
        return encode_sse(openai_error_body(err))
