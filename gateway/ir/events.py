"""Stream events: what a provider stream decoder emits and a client stream encoder consumes.

Tool calls are addressed by ``index``, the position of the call among this turn's tool
calls, so parallel calls stream interleaved without ambiguity.
"""

from __future__ import annotations

import msgspec

from gateway.ir.result import FinishReason, Usage


class TextDelta(msgspec.Struct, frozen=True):
    text: str


class ThinkingDelta(msgspec.Struct, frozen=True):
    text: str = ""
    signature: str | None = None


class ToolCallStart(msgspec.Struct, frozen=True):
    index: int
    id: str
    name: str
    signature: str | None = None


class ToolCallDelta(msgspec.Struct, frozen=True):
    index: int
    arguments: str


class FinishEvent(msgspec.Struct, frozen=True):
    reason: FinishReason


class UsageEvent(msgspec.Struct, frozen=True):
    """Usage so far; later events replace earlier ones (cumulative, not additive)."""

    usage: Usage


class AgentFieldsEvent(msgspec.Struct, frozen=True):
    """An agent app's own reply fields (``custom_outputs``, ``databricks_output``) seen in its
    stream; a later value of a field replaces an earlier one. Encoders that have no place
    for them ignore them."""

    fields: dict[str, msgspec.Raw]


StreamEvent = TextDelta | ThinkingDelta | ToolCallStart | ToolCallDelta | FinishEvent | UsageEvent | AgentFieldsEvent
