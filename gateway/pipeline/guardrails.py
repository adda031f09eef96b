"""The guardrails stage: the endpoint's input checks after rate limits and before routing,
its output checks on the reply before anything of it reaches the caller.

Checks run in the registry's order on one side's texts; a mask hands the masked texts to
the checks after it, a block (or a failed judge, unless ``fail_open``) stops the request
with a 400 (503) in the caller's shape. Every verdict is counted in
``gateway_guardrail_verdicts_total``, every one but ``pass`` noted on the usage row
(``guardrails``) and logged with what was found, never with the text.

Input: a mask rewrites the caller's body (for a passthrough) and the IR made from it (for
a translation). Output: a complete reply is checked as it is; a masked one is encoded by
the gateway from the IR, passthrough or not. A stream is read to its end before anything
is sent (the cost: the caller's first token waits for the provider's last), then replayed
as it came, or masked, or refused with a plain error response, since nothing was sent yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import msgspec

from gateway import metrics
from gateway.errors import GuardrailBlocked, GuardrailJudgeFailed
from gateway.guards import pii
from gateway.guards.judge import Judge, JudgeFailed
from gateway.guards.registry import checks_for
from gateway.guards.reply_texts import (
    ReplyFormat, result_texts, result_with, stream_texts, stream_usage, stream_with,
)
from gateway.guards.request_texts import RequestTexts
from gateway.guards.verdict import Check, CheckContext, MaskingCheck, Stage
from gateway.ir import ChatRequest, Message, StreamEvent, TextPart, ToolCallPart, ToolResultPart
from gateway.pipeline.call import Call
from gateway.pipeline.replies import EventStream, RawReply, RawStream, Reply, ResultReply
from gateway.providers.base import ProviderStream
from gateway.server.responding import CLIENT_CLOSED, record_usage

log = logging.getLogger("gateway.guardrails")

_SUBJECT = {"input": "Request", "output": "Response"}


def _note(call: Call, stage: Stage, name: str, verdict: str) -> None:
    record = call.ctx.record
    entry = f"{stage}.{name}:{verdict}"
    record.guardrails = entry if record.guardrails is None else f"{record.guardrails},{entry}"


async def _run(checks: Sequence[Check], texts: list[str], stage: Stage, call: Call,
               judge: Judge) -> tuple[list[str], list[MaskingCheck]]:
    """Run ``checks`` in order; the texts as the last mask left them, and the checks that masked."""
    endpoint = call.endpoint.name
    ctx = CheckContext(stage, endpoint, call.ctx, judge)
    masked: list[MaskingCheck] = []
    for check in checks:
        try:
            verdict = await check(texts, ctx)
        except JudgeFailed as exc:
            fail_open = judge.config.fail_open
            metrics.guardrail_verdict(endpoint, check.name, stage, "error").inc()
            failure = "allowed" if fail_open else "blocked"
            metrics.GUARDRAIL_JUDGE_FAILURES.labels(endpoint, check.name, stage, failure).inc()
            _note(call, stage, check.name, "error")
            log.warning("request %s: %s guardrail %r of endpoint %r could not be judged (%s); %s",
                        call.ctx.request_id, stage, check.name, endpoint, exc, failure)
            if fail_open:
                continue
            raise GuardrailJudgeFailed(
                f"{_SUBJECT[stage]} blocked by {stage} guardrail '{check.name}': its judge could not decide") from None
        outcome = verdict.outcome
        metrics.guardrail_verdict(endpoint, check.name, stage, outcome).inc()
        if outcome == "pass":
            continue
        _note(call, stage, check.name, outcome)
        log.info("request %s: %s guardrail %r of endpoint %r: %s (%s)", call.ctx.request_id, stage, check.name,
                 endpoint, outcome, verdict.detail)
        if outcome == "block":
            raise GuardrailBlocked(f"{_SUBJECT[stage]} blocked by {stage} guardrail '{check.name}'")
        if outcome == "mask" and verdict.texts is not None:
            texts = list(verdict.texts)
            masked.append(check)  # type: ignore[arg-type]
    return texts, masked


# ---- input -------------------------------------------------------------------------------

def _masked_request(ir: ChatRequest, checks: Sequence[MaskingCheck]) -> ChatRequest:
    def mask(text: str) -> str:
        for check in checks:
            text = check.mask(text)
        return text

    def part(p: Any) -> Any:
        if isinstance(p, TextPart):
            return TextPart(mask(p.text))
        if isinstance(p, ToolCallPart):
            return msgspec.structs.replace(p, arguments=mask(p.arguments))
        if isinstance(p, ToolResultPart):
            return msgspec.structs.replace(p, content=mask(p.content))
        return p

    messages = tuple(Message(m.role, tuple(part(p) for p in m.parts)) for m in ir.messages)
    return msgspec.structs.replace(ir, system=tuple(mask(s) for s in ir.system), messages=messages)


async def check_input(call: Call, texts_of: RequestTexts, judge: Judge) -> None:
    """Run the endpoint's input checks on ``call``; a mask rewrites its body and IR."""
    guardrails = call.endpoint.guardrails
    params = guardrails.input if guardrails is not None else None
    if params is None:
        return
    ctx = call.ctx
    original = texts_of.read(call.body)
    try:
        texts, masked = await _run(checks_for(params), original, "input", call, judge)
    except (GuardrailBlocked, GuardrailJudgeFailed):
        if ctx.capture is not None:
            # The inference table keeps the refused request, but not the PII it may hold.
            ctx.request_body = pii.mask(ctx.request_body.decode("utf-8", "replace")).encode()
        raise
    changes = {old: new for old, new in zip(original, texts) if old != new}
    if changes:
        call.rewrite(texts_of.rewrite(call.body, changes), lambda ir: _masked_request(ir, masked))
        if ctx.capture is not None:
            ctx.request_body = call.body  # the table keeps what went to the provider


# ---- output ------------------------------------------------------------------------------

async def _replay(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def _drain(call: Call, stream: ProviderStream[Any]) -> list[Any]:
    try:
        return [item async for item in stream]
    except asyncio.CancelledError:
        # The caller went away while the reply was read, as it would from a relayed stream.
        call.ctx.record.status_code, call.ctx.record.error_code = CLIENT_CLOSED, "client_disconnected"
        raise
    finally:
        await stream.aclose()


async def _checked_output(call: Call, texts: list[str], judge: Judge, account: Callable[[], None]) -> list[str]:
    """The output checks on ``texts``; before a refusal, the reply's usage goes on the record
    (the provider was paid for it)."""
    guardrails = call.endpoint.guardrails
    assert guardrails is not None and guardrails.output is not None
    try:
        new, _masked = await _run(checks_for(guardrails.output), texts, "output", call, judge)
    except (GuardrailBlocked, GuardrailJudgeFailed):
        account()
        raise
    return new


async def check_output(call: Call, reply: Reply, fmt: ReplyFormat | None, judge: Judge,
                       input_chars: Callable[[], int]) -> Reply:
    """Run the endpoint's output checks on ``reply``: the reply to send, or a refusal.
    ``fmt`` reads a relayed reply (None for an API that is never relayed)."""
    guardrails = call.endpoint.guardrails
    if guardrails is None or guardrails.output is None:
        return reply
    ctx = call.ctx
    provider, model = ctx.record.provider or "", ctx.record.provider_model or ""
    if isinstance(reply, (ResultReply, RawReply)):
        if isinstance(reply, ResultReply):
            result = reply.result
        else:
            assert fmt is not None
            result = fmt.result(reply.body, provider, model)
            result.usage = reply.usage or result.usage
        texts = result_texts(result)
        new = await _checked_output(
            call, texts, judge, lambda: record_usage(ctx, result.usage, input_chars, result.output_chars()))
        return reply if new == texts else ResultReply(result_with(result, new))
    if isinstance(reply, (EventStream, RawStream)):
        items = await _drain(call, reply.stream)
        events: list[StreamEvent]
        if isinstance(reply, EventStream):
            events = [ev for batch in items for ev in batch]
        else:
            assert fmt is not None
            decoder = fmt.stream(provider)
            events = [ev for chunk in items for ev in decoder.feed(chunk)]
            events += decoder.finish()
        texts = stream_texts(events)
        new = await _checked_output(call, texts, judge, lambda: record_usage(
            ctx, stream_usage(events), input_chars, sum(map(len, texts))))
        if new != texts:  # encoded by the gateway in the caller's format (for a relay, the provider's)
            return EventStream(ProviderStream(_replay([stream_with(events, new)])))
        if isinstance(reply, RawStream):
            return RawStream(ProviderStream(_replay(items)), reply.sniffer)
        return EventStream(ProviderStream(_replay(items)))
    return reply
