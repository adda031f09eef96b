"""The canonical intermediate representation every wire format converts to and from."""

from gateway.ir.request import (
    AGENT_REQUEST_FIELDS,
    AGENT_RESULT_FIELDS,
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
    AgentFieldsEvent,
    FinishEvent,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    UsageEvent,
)

__all__ = [
    "AGENT_REQUEST_FIELDS", "AGENT_RESULT_FIELDS", "AgentFieldsEvent", "ChatRequest", "ImagePart", "Message", "Part", "ResponseFormat", "TextPart", "ThinkingPart",
    "ToolCallPart", "ToolChoice", "ToolResultPart", "ToolSpec", "ChatResult", "EmbeddingResult",
    "FinishReason", "Usage", "FinishEvent", "StreamEvent", "TextDelta", "ThinkingDelta",
    "ToolCallDelta", "ToolCallStart", "UsageEvent",
]
