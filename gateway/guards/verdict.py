"""The one contract every guardrail check keeps.

A check is built once from an endpoint's configuration and called with the texts of one
side of a request: the caller's messages (``input``) or the model's reply (``output``),
one string per piece of text (a message's content, a tool call's arguments, ...). It
answers with a Verdict:

    pass    nothing found
    flag    found, and let through as it is (PII behaviour NONE); counted, never the text
    mask    found and rewritten: ``texts`` holds every text again, in order, masked
    block   found: the request or the reply is refused

``detail`` says what was found in words safe to log and count (entity types, how many
keywords), never the matched text, which may be the very data the check protects.
Checks that rewrite text also offer ``mask(text)``, so the gateway can apply the same
rewrite to a request it decodes later (the IR of a translated request).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

import msgspec

if TYPE_CHECKING:
    from gateway.config import GuardrailBehavior
    from gateway.guards.judge import Judge
    from gateway.pipeline.call import RequestContext

Outcome = Literal["pass", "flag", "mask", "block"]
Stage = Literal["input", "output"]


class Verdict(msgspec.Struct, frozen=True):
    outcome: Outcome
    texts: tuple[str, ...] | None = None
    detail: str = ""


PASS = Verdict("pass")


class CheckContext:
    """What a check may need beyond the texts: judged checks call the judge for the request."""

    __slots__ = ("stage", "endpoint", "request", "judge")

    def __init__(self, stage: Stage, endpoint: str, request: RequestContext, judge: Judge) -> None:
        self.stage = stage
        self.endpoint = endpoint
        self.request = request
        self.judge = judge


class Check(Protocol):
    """One guardrail check; ``name`` is what block messages, metrics and usage rows call it."""

    name: str

    async def __call__(self, texts: Sequence[str], ctx: CheckContext) -> Verdict: ...


class MaskingCheck(Check, Protocol):
    def mask(self, text: str) -> str: ...


def matched_verdict(behavior: GuardrailBehavior, texts: Sequence[str], found: Callable[[str], str],
                    mask: Callable[[str], str]) -> Verdict:
    """The verdict of a check that finds things in text: ``found(text)`` names what it found
    in a text ('' for nothing), ``mask`` rewrites a text that had a finding."""
    details = [d for d in map(found, texts) if d]
    if not details:
        return PASS
    detail = ",".join(sorted({name for d in details for name in d.split(",")}))
    if behavior == "BLOCK":
        return Verdict("block", detail=detail)
    if behavior == "NONE":
        return Verdict("flag", detail=detail)
    return Verdict("mask", tuple(mask(t) for t in texts), detail)
