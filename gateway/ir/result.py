"""Results of a chat or embedding call, and token usage."""

from __future__ import annotations

from typing import Literal

import msgspec

from gateway.ir.request import Part, TextPart, ThinkingPart, ToolCallPart

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


class Usage(msgspec.Struct):
    """Token counts. ``estimated`` is set when the provider reported none and the gateway guessed."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def estimate_tokens(chars: int) -> int:
    """The documented estimate used when a provider reports no usage: (characters + 1) / 4."""
    return (chars + 1) // 4


class ChatResult(msgspec.Struct):
    """A complete assistant turn. ``parts`` holds text, thinking and tool calls in order."""

    id: str
    model: str
    parts: list[Part]
    finish_reason: FinishReason
    usage: Usage | None = None
    created: int = 0
    agent_fields: dict[str, msgspec.Raw] = {}  # an agent app's AGENT_RESULT_FIELDS, as it sent them

    def output_chars(self) -> int:
        """Characters of reply text, thinking and tool arguments, for token estimates."""
        n = 0
        for part in self.parts:
            if isinstance(part, (TextPart, ThinkingPart)):
                n += len(part.text)
            elif isinstance(part, ToolCallPart):
                n += len(part.arguments)
        return n


class EmbeddingResult(msgspec.Struct):
    vectors: list[list[float]]
    model: str
    usage: Usage | None = None
