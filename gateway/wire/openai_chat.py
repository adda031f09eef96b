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
    logprobs: bool | None = None
    top_logprobs: int | None = None
    # The agent frameworks' own fields (ir.AGENT_REQUEST_FIELDS), kept raw for an agent app.
    custom_inputs: msgspec.Raw | UnsetType = UNSET
    databricks_options: msgspec.Raw | UnsetType = UNSET
    context: msgspec.Raw | UnsetType = UNSET


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
    custom_outputs: msgspec.Raw | UnsetType = UNSET  # an agent app's (ir.AGENT_RESULT_FIELDS)
    databricks_output: msgspec.Raw | UnsetType = UNSET


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
    custom_outputs: msgspec.Raw | UnsetType = UNSET  # an agent app's, on the finish chunk
    databricks_output: msgspec.Raw | UnsetType = UNSET


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


# ---- what the IR path sends upstream and reads back ---------------------------------------
# The request Structs above omit defaults, which drops fields OpenAI requires when their
# value is the default; these subclasses always send them.

class ToolParam(Tool, omit_defaults=False):
    """A tool that always carries ``"type": "function"``."""


class NamedToolChoiceParam(NamedToolChoice, omit_defaults=False):
    """A named tool choice that always carries ``"type": "function"``."""


class JSONSchemaParam(JSONSchemaFormat):
    """``json_schema`` as the gateway sends it: ``name`` has no default, so ``omit_defaults``
    never drops it (OpenAI requires it, and ``"response"`` would equal the base default)."""

    name: str


class UpstreamMessage(msgspec.Struct):
    """A completion's message, leniently: compatible servers omit what OpenAI always sends.

    ``reasoning_content`` is vLLM's and DeepSeek's field; newer vLLM, Ollama and
    OpenRouter call it ``reasoning``.
    """

    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None


class UpstreamChoice(msgspec.Struct):
    message: UpstreamMessage
    finish_reason: str | None = None
    index: int = 0


class UpstreamCompletion(msgspec.Struct):
    """A ``chat.completion`` body as the OpenAI provider adapter reads it."""

    choices: list[UpstreamChoice]
    id: str = ""
    model: str = ""
    created: int = 0
    usage: Usage | None = None


class UpstreamFunctionDelta(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class UpstreamToolCallDelta(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: UpstreamFunctionDelta | None = None


class UpstreamDelta(msgspec.Struct):
    """A stream delta; OpenAI sends ``"content": null`` beside tool calls, so every field is nullable."""

    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[UpstreamToolCallDelta] | None = None


class UpstreamChunkChoice(msgspec.Struct):
    delta: UpstreamDelta | None = None
    finish_reason: str | None = None
    index: int = 0


class UpstreamErrorDetail(msgspec.Struct):
    """An error inside a 200 stream. ``code`` is a string at OpenAI, the HTTP status at vLLM."""

    message: str | None = None
    type: str | None = None
    code: str | int | None = None


class UpstreamChunk(msgspec.Struct):
    """One ``chat.completion.chunk`` data event, or an ``{"error": ...}`` event."""

    id: str = ""
    model: str = ""
    choices: list[UpstreamChunkChoice] = []
    usage: Usage | None = None
    error: UpstreamErrorDetail | str | None = None
