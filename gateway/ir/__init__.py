"""The canonical intermediate representation every wire format converts to and from."""

from gateway.ir.request import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    ResponseFormat,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
)
from gateway.ir.result import ChatResult, EmbeddingResult, FinishReason, Usage
from gateway.ir.events import (
    FinishEvent,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    UsageEvent,
)

__all__ = [
    "ChatRequest", "ImagePart", "Message", "Part", "ResponseFormat", "TextPart", "ThinkingPart",
    "ToolCallPart", "ToolChoice", "ToolResultPart", "ToolSpec", "ChatResult", "EmbeddingResult",
    "FinishReason", "Usage", "FinishEvent", "StreamEvent", "TextDelta", "ThinkingDelta",
    "ToolCallDelta", "ToolCallStart", "UsageEvent",
]
