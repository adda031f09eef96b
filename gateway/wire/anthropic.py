"""Anthropic Messages JSON as msgspec Structs (request, response, stream events).

Unknown fields are ignored on decode. Anthropic adds block, delta and event types over
time, and a tagged union rejects a tag it does not know, so response content and the
block of ``content_block_start`` stay ``Raw`` and are decoded one by one, and
``BLOCK_TYPES`` / ``DELTA_TYPES`` / ``EVENT_TYPES`` let a reader tell "new type: skip it"
from "broken JSON". ``EventHead`` reads just the types of an event that failed to decode.
"""

from __future__ import annotations

from typing import Literal, get_args

import msgspec
from msgspec import UNSET, UnsetType


class _Wire(msgspec.Struct, omit_defaults=True, frozen=True):
    pass


# ---- content blocks (request and response) ------------------------------------------------

class Base64Source(_Wire, tag="base64", tag_field="type"):
    media_type: str
    data: str


class URLSource(_Wire, tag="url", tag_field="type"):
    url: str


class TextBlock(_Wire, tag="text", tag_field="type"):
    text: str


class ImageBlock(_Wire, tag="image", tag_field="type"):
    source: Base64Source | URLSource


class ToolUseBlock(_Wire, tag="tool_use", tag_field="type"):
    id: str
    name: str
    input: msgspec.Raw  # a JSON object, forwarded untouched


class ToolResultBlock(_Wire, tag="tool_result", tag_field="type"):
    tool_use_id: str
    content: str | list[TextBlock | ImageBlock] | UnsetType = UNSET
    is_error: bool | UnsetType = UNSET


class ThinkingBlock(_Wire, tag="thinking", tag_field="type"):
    thinking: str
    signature: str = ""


class RedactedThinkingBlock(_Wire, tag="redacted_thinking", tag_field="type"):
    data: str


ContentBlock = (
    TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock
)
BLOCK_TYPES = frozenset(cls.__struct_config__.tag for cls in get_args(ContentBlock))


# ---- request -------------------------------------------------------------------------------

class MessageParam(_Wire):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


class Tool(_Wire):
    name: str
    input_schema: msgspec.Raw
    description: str | UnsetType = UNSET


class ToolChoiceAuto(_Wire, tag="auto", tag_field="type"):
    disable_parallel_tool_use: bool | UnsetType = UNSET


class ToolChoiceAny(_Wire, tag="any", tag_field="type"):
    disable_parallel_tool_use: bool | UnsetType = UNSET


class ToolChoiceTool(_Wire, tag="tool", tag_field="type"):
    name: str
    disable_parallel_tool_use: bool | UnsetType = UNSET


class ToolChoiceNone(_Wire, tag="none", tag_field="type"):
    pass


ToolChoice = ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone


class ThinkingEnabled(_Wire, tag="enabled", tag_field="type"):
    budget_tokens: int


class ThinkingDisabled(_Wire, tag="disabled", tag_field="type"):
    pass


class Metadata(_Wire):
    user_id: str | UnsetType = UNSET


class MessagesRequest(_Wire):
    model: str
    messages: list[MessageParam]
    max_tokens: int
    system: str | list[TextBlock] | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    top_k: int | UnsetType = UNSET
    stop_sequences: list[str] | UnsetType = UNSET
    stream: bool | UnsetType = UNSET
    tools: list[Tool] | UnsetType = UNSET
    tool_choice: ToolChoice | UnsetType = UNSET
    thinking: ThinkingEnabled | ThinkingDisabled | UnsetType = UNSET
    metadata: Metadata | UnsetType = UNSET


class MessagesRequestView(msgspec.Struct):
    """What routing and passthrough read of a request; everything else stays bytes."""

    model: str
    stream: bool = False
    max_tokens: int | None = None


# ---- response ------------------------------------------------------------------------------

class Usage(_Wire):
    """Token counts. In ``message_delta`` a field that is absent or null means "unchanged"."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class MessagesResponse(_Wire):
    id: str
    model: str
    content: list[msgspec.Raw]  # each a ContentBlock, or a type this gateway does not know
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage = Usage()
    role: str = "assistant"
    type: str = "message"


# ---- stream events -------------------------------------------------------------------------

class TextDelta(_Wire, tag="text_delta", tag_field="type"):
    text: str


class InputJSONDelta(_Wire, tag="input_json_delta", tag_field="type"):
    partial_json: str


class ThinkingDelta(_Wire, tag="thinking_delta", tag_field="type"):
    thinking: str


class SignatureDelta(_Wire, tag="signature_delta", tag_field="type"):
    signature: str


BlockDelta = TextDelta | InputJSONDelta | ThinkingDelta | SignatureDelta
DELTA_TYPES = frozenset(cls.__struct_config__.tag for cls in get_args(BlockDelta))


class MessageStart(_Wire, tag="message_start", tag_field="type"):
    message: MessagesResponse


class ContentBlockStart(_Wire, tag="content_block_start", tag_field="type"):
    index: int
    content_block: msgspec.Raw  # a ContentBlock, or a type this gateway does not know


class ContentBlockDelta(_Wire, tag="content_block_delta", tag_field="type"):
    index: int
    delta: BlockDelta


class ContentBlockStop(_Wire, tag="content_block_stop", tag_field="type"):
    index: int


class MessageDeltaBody(_Wire):
    stop_reason: str | None = None
    stop_sequence: str | None = None


class MessageDelta(_Wire, tag="message_delta", tag_field="type"):
    delta: MessageDeltaBody = MessageDeltaBody()
    usage: Usage = Usage()


class MessageStop(_Wire, tag="message_stop", tag_field="type"):
    pass


class Ping(_Wire, tag="ping", tag_field="type"):
    pass


class ErrorDetail(_Wire):
    type: str = "api_error"
    message: str = ""


class ErrorEvent(_Wire, tag="error", tag_field="type"):
    error: ErrorDetail = ErrorDetail()


StreamEvent = (
    MessageStart | ContentBlockStart | ContentBlockDelta | ContentBlockStop
    | MessageDelta | MessageStop | Ping | ErrorEvent
)
EVENT_TYPES = frozenset(cls.__struct_config__.tag for cls in get_args(StreamEvent))


class TypeHead(msgspec.Struct):
    type: str = ""


class EventHead(msgspec.Struct):
    """The types in an event (or block) that failed to decode, to tell new from broken."""

    type: str = ""
    delta: TypeHead | None = None


# Decoders are built once and reused.
request_decoder = msgspec.json.Decoder(MessagesRequest)
request_view_decoder = msgspec.json.Decoder(MessagesRequestView)
response_decoder = msgspec.json.Decoder(MessagesResponse)
block_decoder = msgspec.json.Decoder(ContentBlock)
event_decoder = msgspec.json.Decoder(StreamEvent)
head_decoder = msgspec.json.Decoder(EventHead)
encoder = msgspec.json.Encoder()


# ---- client side: what callers send, what the gateway serves them --------------------------
# Callers send more than the provider path above ever encodes: a role "system" message
# (Claude Code), server tools without input_schema, block types the IR cannot carry. So the
# client codec reads content blocks as Raw, one by one, and skips what it does not know.

class CallerMessage(_Wire):
    role: Literal["user", "assistant", "system"]
    content: str | list[msgspec.Raw]


class CallerTool(_Wire):
    name: str
    input_schema: msgspec.Raw | UnsetType = UNSET  # absent on server tools (web_search_..., bash_...)
    description: str | None = None


class CallerToolResultBlock(_Wire, tag="tool_result", tag_field="type"):
    tool_use_id: str
    content: str | list[msgspec.Raw] | None = None  # blocks of any type, not just text and image
    is_error: bool | None = None


CallerBlock = (
    TextBlock | ImageBlock | ToolUseBlock | CallerToolResultBlock | ThinkingBlock | RedactedThinkingBlock
)


class CallerMetadata(_Wire):
    user_id: str | None = None


class CallerRequest(_Wire):
    """A Messages (or count_tokens) request as a caller sends it; fields left out are ignored."""

    model: str
    messages: list[CallerMessage]
    max_tokens: int | None = None  # required on /v1/messages; the codec says so by name
    system: str | list[TextBlock] | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    tools: list[CallerTool] | None = None
    tool_choice: ToolChoice | None = None
    metadata: CallerMetadata | None = None


class _Reply(msgspec.Struct, frozen=True):
    """No omit_defaults: Anthropic always sends these fields, null or empty included."""


class ReplyThinkingBlock(_Reply, tag="thinking", tag_field="type"):
    thinking: str
    signature: str


class ReplyUsage(_Reply):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


class ReplyMessage(_Reply, tag="message", tag_field="type", kw_only=True):
    id: str
    role: str = "assistant"
    model: str
    content: list[TextBlock | ToolUseBlock | ReplyThinkingBlock | RedactedThinkingBlock]
    stop_reason: str | None
    stop_sequence: str | None = None
    usage: ReplyUsage


class ReplyMessageStart(_Reply, tag="message_start", tag_field="type"):
    message: ReplyMessage


class ReplyStop(_Reply):
    stop_reason: str
    stop_sequence: str | None = None


class ReplyMessageDelta(_Reply, tag="message_delta", tag_field="type"):
    delta: ReplyStop
    usage: ReplyUsage  # cumulative: the final counts


class CountTokensReply(_Reply):
    input_tokens: int


caller_request_decoder = msgspec.json.Decoder(CallerRequest)
caller_block_decoder = msgspec.json.Decoder(CallerBlock)
tool_result_item_decoder = msgspec.json.Decoder(TextBlock | ImageBlock)
type_head_decoder = msgspec.json.Decoder(TypeHead)
