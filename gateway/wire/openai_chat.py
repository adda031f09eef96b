"""OpenAI Chat Completions JSON as msgspec Structs (request, response, stream chunk)."""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType


class _Wire(msgspec.Struct, omit_defaults=True):
    pass


# ---- request -----------------------------------------------------------------------------

class ImageURL(_Wire):
    url: str
    detail: str | UnsetType = UNSET


class TextContent(_Wire, tag="text", tag_field="type"):
    text: str


class ImageContent(_Wire, tag="image_url", tag_field="type"):
    image_url: ImageURL


ContentPart = TextContent | ImageContent


class FunctionCall(msgspec.Struct):
    name: str
    arguments: str = ""


class ToolCall(msgspec.Struct):
    id: str
    function: FunctionCall
    type: Literal["function"] = "function"


class ChatMessage(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET


class FunctionDef(_Wire):
    name: str
    description: str | UnsetType = UNSET
    parameters: msgspec.Raw | UnsetType = UNSET
    strict: bool | None = None


class Tool(_Wire):
    function: FunctionDef
    type: Literal["function"] = "function"


class NamedFunction(_Wire):
    name: str


class NamedToolChoice(_Wire):
    function: NamedFunction
    type: Literal["function"] = "function"


class JSONSchemaFormat(_Wire):
    name: str = "response"
    schema: msgspec.Raw | UnsetType = UNSET
    strict: bool | None = None
    description: str | UnsetType = UNSET


class ResponseFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | UnsetType = UNSET


class StreamOptions(_Wire):
    include_usage: bool = False


class ChatCompletionRequest(_Wire):
    model: str
    messages: list[ChatMessage]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None


class ChatRequestView(msgspec.Struct):
    """What routing and passthrough read of a request; everything else stays bytes."""

    model: str
    stream: bool | None = None
    stream_options: StreamOptions | None = None


# ---- response ----------------------------------------------------------------------------

class PromptTokensDetails(msgspec.Struct):
    cached_tokens: int = 0


class CompletionTokensDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class ResponseMessage(msgspec.Struct):
    """UNSET fields are left out; everything else is always sent, as OpenAI does."""

    content: str | None
    role: str = "assistant"
    refusal: None = None
    tool_calls: list[ToolCall] | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET


class Choice(msgspec.Struct):
    index: int
    message: ResponseMessage
    finish_reason: str | None
    logprobs: None = None


class ChatCompletion(msgspec.Struct):
    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | UnsetType = UNSET
    object: str = "chat.completion"


# ---- stream ------------------------------------------------------------------------------

class FunctionDelta(_Wire):
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET


class ToolCallDelta(_Wire):
    index: int
    id: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    function: FunctionDelta | UnsetType = UNSET


class Delta(_Wire):
    role: str | UnsetType = UNSET
    content: str | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET
    tool_calls: list[ToolCallDelta] | UnsetType = UNSET


class ChunkChoice(msgspec.Struct):
    index: int
    delta: Delta
    finish_reason: str | None = None


class ChatCompletionChunk(msgspec.Struct, omit_defaults=False):
    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    object: str = "chat.completion.chunk"
    usage: Usage | None = None


# ---- what the passthrough relay sniffs from upstream bytes --------------------------------

class _DeltaView(msgspec.Struct):
    content: str | None = None
    tool_calls: list[msgspec.Raw] | None = None


class _ChoiceView(msgspec.Struct):
    delta: _DeltaView | None = None


class ChunkView(msgspec.Struct):
    """The fields of a stream chunk the gateway reads: usage, and text for estimates."""

    choices: list[_ChoiceView] = []
    usage: Usage | None = None


class _MessageView(msgspec.Struct):
    content: str | None = None


class _ResponseChoiceView(msgspec.Struct):
    message: _MessageView | None = None


class CompletionView(msgspec.Struct):
    """The fields of a completion the gateway reads."""

    usage: Usage | None = None
    choices: list[_ResponseChoiceView] = []
