"""The in-process ``mock`` provider: deterministic replies, no network.

The provider model name picks the behaviour; words join with ``+``
(``echo+slow-200ms``, ``tool+pace-10ms``):

``echo``            reply ``Echo: <last user text>`` (the default; the last text part)
``tool``            call the first tool offered with arguments built from the prompt and
                    its schema; after a tool result, reply with ``Tool result: <content>``
``tool=<name>``     the same with the tool of that name (to steer an agent to a harmless tool)
``parallel-tools``  two calls at once (the first two tools, or the first tool twice)
``reason``          think first (with a signature), then reply
``slow-<N>ms``      wait N ms before answering
``pace-<N>ms``      wait N ms between streamed chunks
``first-token-<N>ms`` stream: accept at once, then wait N ms before the first chunk
``error-<status>``  fail with that upstream HTTP status (429, 500, 503, ...)
``cut-stream``      stream part of the reply, then break off as a dropped connection would
``cut-after-<N>``   the same after N chunks (``cut-after-0``: before the first)
``embed``           embeddings: 8 floats per input, derived from its hash

``max_tokens`` cuts the reply to that many words, with finish reason ``length``.
Usage is reported as (characters + 1) / 4 of prompt and reply.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
from collections.abc import AsyncIterator

import msgspec
import orjson

from gateway.errors import BadRequest, UpstreamStatus, UpstreamTimeout, UpstreamUnavailable
from gateway.ir import (
    ChatRequest,
    ChatResult,
    EmbeddingResult,
    FinishEvent,
    FinishReason,
    Part,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
    ToolSpec,
    Usage,
    UsageEvent,
)
from gateway.ir.result import estimate_tokens
from gateway.providers.base import Provider, ProviderStream, Target

_MS = re.compile(r"^(slow|pace|first-token)-(\d+)ms$")
_CUT_AFTER = re.compile(r"^cut-after-(\d+)$")
_ERROR = re.compile(r"^error-(\d{3})$")
_ids = itertools.count(1)


class Behaviour(msgspec.Struct, frozen=True):
    kind: str = "echo"
    slow_s: float = 0.0
    pace_s: float = 0.0
    first_token_s: float = 0.0
    error: int | None = None
    cut_after: int | None = None  # chunks streamed before breaking off; -1: half of them
    tool: str | None = None  # the tool to call, by name (else the first offered)


def parse_behaviour(model: str) -> Behaviour:
    """Read the behaviour words of a mock model name; unknown words are a config mistake."""
    kind, error, cut_after, tool = "echo", None, None, None
    delays = {"slow": 0.0, "pace": 0.0, "first-token": 0.0}
    for word in model.split("+"):
        if m := _MS.match(word):
            delays[m.group(1)] = int(m.group(2)) / 1000
        elif m := _ERROR.match(word):
            error = int(m.group(1))
        elif m := _CUT_AFTER.match(word):
            cut_after = int(m.group(1))
        elif word == "cut-stream":
            cut_after = -1
        elif word.startswith("tool="):
            kind, tool = "tool", word[5:]
        elif word in ("echo", "tool", "parallel-tools", "reason", "embed"):
            kind = word
        else:
            raise BadRequest(f"mock model {model!r}: unknown behaviour {word!r}")
    return Behaviour(kind, delays["slow"], delays["pace"], delays["first-token"], error, cut_after, tool)


def _last_user_text(req: ChatRequest) -> str:
    """The last text part of the last user message: agents put context blocks before the
    user's own words."""
    for message in reversed(req.messages):
        if message.role == "user":
            texts = [p.text for p in message.parts if isinstance(p, TextPart)]
            return texts[-1].strip() if texts else ""
    return ""


def _arguments(tool: ToolSpec, prompt: str, n: int) -> str:
    """Arguments that fit the tool's schema (its required properties, when it names them):
    enums their first value, strings the prompt, numbers ``n``, booleans true, arrays empty."""
    props: dict[str, object] = {}
    required: list[str] | None = None
    if tool.parameters is not None:
        schema = msgspec.json.decode(tool.parameters)
        if isinstance(schema, dict):
            props = schema.get("properties", {})
            required = schema.get("required")
    args: dict[str, object] = {}
    for name, spec in props.items():
        if required is not None and name not in required:
            continue
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type")
        if spec.get("enum"):
            args[name] = spec["enum"][0]
        elif kind in ("integer", "number"):
            args[name] = n
        elif kind == "boolean":
            args[name] = True
        elif kind == "array":
            args[name] = []
        elif kind == "object":
            args[name] = {}
        else:
            args[name] = prompt
    return orjson.dumps(args or {"input": prompt}).decode()


def _reply_parts(req: ChatRequest, behaviour: Behaviour) -> tuple[list[Part], FinishReason]:
    last = req.messages[-1] if req.messages else None
    if last is not None and last.role == "tool":
        results = [p.content for p in last.parts if isinstance(p, ToolResultPart)]
        return [TextPart("Tool result: " + "; ".join(results))], "stop"
    prompt = _last_user_text(req)
    if behaviour.kind in ("tool", "parallel-tools") and req.tools and not (
        req.tool_choice and req.tool_choice.mode == "none"
    ):
        tools = list(req.tools)
        if req.tool_choice and req.tool_choice.name:
            tools = [t for t in tools if t.name == req.tool_choice.name] or tools
        elif behaviour.tool:
            tools = [t for t in tools if t.name == behaviour.tool] or tools
        count = 2 if behaviour.kind == "parallel-tools" else 1
        chosen = [tools[i % len(tools)] for i in range(count)]
        calls: list[Part] = [
            ToolCallPart(f"call_mock_{next(_ids)}", t.name, _arguments(t, prompt, i + 1))
            for i, t in enumerate(chosen)
        ]
        return calls, "tool_calls"
    parts: list[Part] = []
    if behaviour.kind == "reason":
        parts.append(ThinkingPart(f"The user said {len(prompt)} characters.", signature="mock-signature"))
    words = ("Echo: " + prompt).split(" ")
    finish: FinishReason = "stop"
    if req.max_tokens is not None and len(words) > req.max_tokens:
        words, finish = words[: req.max_tokens], "length"
    parts.append(TextPart(" ".join(words)))
    return parts, finish


def _usage(req: ChatRequest, parts: list[Part]) -> Usage:
    out_chars = ChatResult("", "", parts, "stop").output_chars()
    return Usage(input_tokens=estimate_tokens(req.prompt_chars()), output_tokens=estimate_tokens(out_chars))


def _stream_batches(parts: list[Part]) -> list[list[StreamEvent]]:
    """The reply as the batches a real provider would send: words, then tool calls in two halves."""
    batches: list[list[StreamEvent]] = []
    call_index = 0
    for part in parts:
        if isinstance(part, ThinkingPart):
            batches.append([ThinkingDelta(part.text)])
            batches.append([ThinkingDelta(signature=part.signature)])
        elif isinstance(part, TextPart):
            words = part.text.split(" ")
            batches.extend([TextDelta(w if i == 0 else " " + w)] for i, w in enumerate(words))
        elif isinstance(part, ToolCallPart):
            half = len(part.arguments) // 2
            batches.append([ToolCallStart(call_index, part.id, part.name), ToolCallDelta(call_index, part.arguments[:half])])
            batches.append([ToolCallDelta(call_index, part.arguments[half:])])
            call_index += 1
    return batches


class MockProvider(Provider):
    wire = "in_process"

    async def _begin(self, target: Target) -> Behaviour:
        behaviour = parse_behaviour(target.model)
        if behaviour.slow_s:
            # Honour the attempt's timeouts as a real upstream connection would.
            wait = min(behaviour.slow_s, target.timeouts.first_byte, target.timeouts.total)
            await asyncio.sleep(wait)
            if wait < behaviour.slow_s:
                raise UpstreamTimeout(f"provider '{self.name}' did not answer in time")
        if behaviour.error is not None:
            raise UpstreamStatus(behaviour.error, f"provider '{self.name}' returned HTTP {behaviour.error}: mock failure",
                                 retry_after=1.0 if behaviour.error == 429 else None)
        return behaviour

    async def complete(self, request: ChatRequest, target: Target) -> ChatResult:
        behaviour = await self._begin(target)
        parts, finish = _reply_parts(request, behaviour)
        return ChatResult(f"chatcmpl-mock-{next(_ids)}", target.model, parts, finish, _usage(request, parts))

    async def open_stream(self, request: ChatRequest, target: Target) -> ProviderStream:
        behaviour = await self._begin(target)
        parts, finish = _reply_parts(request, behaviour)
        batches = _stream_batches(parts)

        async def run() -> AsyncIterator[list[StreamEvent]]:
            cut = behaviour.cut_after
            if cut == -1:
                cut = max(1, len(batches) // 2)
            for i, batch in enumerate(batches):
                if i == cut:
                    raise UpstreamUnavailable(f"provider '{self.name}' broke off its stream: mock cut")
                if i == 0 and behaviour.first_token_s:
                    await asyncio.sleep(behaviour.first_token_s)
                if behaviour.pace_s and i:
                    await asyncio.sleep(behaviour.pace_s)
                yield batch
            yield [FinishEvent(finish), UsageEvent(_usage(request, parts))]

        return ProviderStream(run())

    async def embed(self, inputs: list[str], target: Target, dimensions: int | None = None) -> EmbeddingResult:
        await self._begin(target)
        size = dimensions or 8
        vectors = []
        for text in inputs:
            digest = hashlib.sha256(text.encode()).digest()
            vectors.append([round(digest[i % 32] / 255 - 0.5, 6) for i in range(size)])
        chars = sum(len(t) for t in inputs)
        return EmbeddingResult(vectors, target.model, Usage(input_tokens=estimate_tokens(chars)))
