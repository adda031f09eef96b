"""OpenAI Responses API JSON as msgspec Structs (request, input items, Response, stream events).

Unknown fields are ignored on decode. OpenAI adds input item and tool types often, and a
tagged union rejects a tag it does not know, so ``input`` items and ``tools`` stay ``Raw``;
a reader decodes ``TypeView`` first and then only the types it understands.
Response-side Structs have no ``omit_defaults``: the SDK requires fields such as
``annotations: []`` and ``error: null`` to be present; only ``UNSET`` fields are left out.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType


class _Wire(msgspec.Struct, omit_defaults=True):
    pass


# ---- request -----------------------------------------------------------------------------

class TypeView(msgspec.Struct):
    """The ``type`` of an input item or tool; an input item without one is a message."""

    type: str = "message"


class ContentPart(_Wire):
    """Any content part (input_text, output_text, refusal, input_image, input_file, ...)."""

    type: str
    text: str | UnsetType = UNSET
    refusal: str | UnsetType = UNSET
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class InputMessage(_Wire):
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]
    type: Literal["message"] = "message"
    id: str | UnsetType = UNSET
    status: str | UnsetType = UNSET


class FunctionCall(msgspec.Struct, tag="function_call", tag_field="type"):
    """A function call item, in ``input`` and in ``output``."""

    call_id: str
    name: str
    arguments: str
    id: str | UnsetType = UNSET
    status: str | UnsetType = UNSET


class FunctionCallOutput(_Wire, tag="function_call_output", tag_field="type"):
    call_id: str
    output: str | list[ContentPart]
    id: str | UnsetType = UNSET
    status: str | UnsetType = UNSET


class FunctionTool(_Wire, tag="function", tag_field="type"):
    name: str
    description: str | None = None
    parameters: msgspec.Raw | UnsetType = UNSET
    strict: bool | None = None


class NamedToolChoice(_Wire):
    """``{"type": "function", "name": ...}``; other types name built-in tools, and
    ``{"type": "allowed_tools", "mode": ..., "tools": [...]}`` narrows the tools offered."""

    type: str
    name: str | None = None
    mode: str | None = None
    tools: list[NamedToolChoice] | None = None


class TextFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema: msgspec.Raw | UnsetType = UNSET
    strict: bool | None = None
    description: str | None = None


class TextConfig(_Wire):
    format: TextFormat | None = None
    verbosity: str | None = None


class Reasoning(_Wire):
    effort: str | None = None
    summary: str | None = None


_NULL = msgspec.Raw(b"null")


class ResponsesRequestView(msgspec.Struct):
    """A request, decoded once, before routing: what routing, the state store, the IR and
    the reply's echo read of it, so a bad field is refused before a provider is paid.

    Fields the Response repeats back are kept as sent (``Raw`` where the echo must be the
    caller's own JSON), every one nullable as OpenAI accepts; absent and ``null`` look the
    same here, and ``echo_of`` answers both with OpenAI's default. ``input`` items stay
    ``Raw``: a reader decodes ``TypeView`` first, then only the types it understands.
    """

    model: str
    input: str | list[msgspec.Raw] = []
    stream: bool | None = None
    instructions: msgspec.Raw = _NULL
    tools: list[msgspec.Raw] | None = None
    tool_choice: msgspec.Raw = _NULL
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    previous_response_id: str | None = None
    reasoning: msgspec.Raw = _NULL
    text: msgspec.Raw = _NULL
    metadata: msgspec.Raw = _NULL
    store: bool | None = None
    truncation: str | None = None
    user: str | None = None
    prompt_cache_key: str | None = None
    include: list[str] | None = None
    top_logprobs: int | None = None
    # The agent frameworks' own fields (ir.AGENT_REQUEST_FIELDS), kept raw for an agent app.
    custom_inputs: msgspec.Raw | UnsetType = UNSET
    databricks_options: msgspec.Raw | UnsetType = UNSET
    context: msgspec.Raw | UnsetType = UNSET


class ResponseEcho(msgspec.Struct):
    """Request settings a Response object repeats back; the defaults are what OpenAI
    reports when the caller did not set a field (or sent ``null``)."""

    instructions: msgspec.Raw = _NULL
    tools: list[msgspec.Raw] = []
    tool_choice: msgspec.Raw = msgspec.Raw(b'"auto"')
    parallel_tool_calls: bool = True
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    previous_response_id: str | None = None
    reasoning: msgspec.Raw = _NULL
    text: msgspec.Raw = msgspec.Raw(b'{"format":{"type":"text"}}')
    metadata: msgspec.Raw = msgspec.Raw(b"{}")
    store: bool = True
    truncation: str = "disabled"
    user: str | None = None
    prompt_cache_key: str | None = None


# ---- response ----------------------------------------------------------------------------

class OutputText(msgspec.Struct, tag="output_text", tag_field="type"):
    text: str
    annotations: list[msgspec.Raw] = []
    logprobs: list[msgspec.Raw] = []  # required by OpenAI's spec, though empty: the gateway has none


class ReasoningText(msgspec.Struct, tag="reasoning_text", tag_field="type"):
    text: str


class SummaryText(msgspec.Struct, tag="summary_text", tag_field="type"):
    text: str


class OutputMessage(msgspec.Struct, tag="message", tag_field="type"):
    id: str
    status: str
    content: list[OutputText]
    role: str = "assistant"


class ReasoningItem(msgspec.Struct, tag="reasoning", tag_field="type"):
    id: str
    summary: list[SummaryText]
    content: list[ReasoningText] | UnsetType = UNSET
    encrypted_content: str | UnsetType = UNSET
    status: str | UnsetType = UNSET


OutputItem = OutputMessage | FunctionCall | ReasoningItem


class InputTokensDetails(msgspec.Struct):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(msgspec.Struct):
    reasoning_tokens: int = 0


class Usage(msgspec.Struct):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ResponseError(msgspec.Struct):
    code: str
    message: str


class IncompleteDetails(msgspec.Struct):
    reason: str


class Response(ResponseEcho, kw_only=True):
    id: str
    created_at: int
    model: str
    status: str
    output: list[OutputItem]
    usage: Usage | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    object: str = "response"
    custom_outputs: msgspec.Raw | UnsetType = UNSET  # an agent app's (ir.AGENT_RESULT_FIELDS)
    databricks_output: msgspec.Raw | UnsetType = UNSET


# ---- stream events (the SSE ``event:`` name is each event's ``type``) --------------------

class ResponseEvent(msgspec.Struct):
    """response.created / in_progress / completed / incomplete / failed."""

    type: str
    sequence_number: int
    response: Response


class OutputItemEvent(msgspec.Struct):
    """response.output_item.added / done."""

    type: str
    sequence_number: int
    output_index: int
    item: OutputItem


class ContentPartEvent(msgspec.Struct):
    """response.content_part.added / done."""

    type: str
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: OutputText | ReasoningText


class TextDeltaEvent(msgspec.Struct):
    """response.output_text.delta and response.reasoning_text.delta (no logprobs)."""

    type: str
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[msgspec.Raw] | UnsetType = UNSET


class TextDoneEvent(msgspec.Struct):
    """response.output_text.done and response.reasoning_text.done (no logprobs)."""

    type: str
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[msgspec.Raw] | UnsetType = UNSET


class ArgumentsDeltaEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    delta: str


class ArgumentsDoneEvent(msgspec.Struct):
    type: str
    sequence_number: int
    item_id: str
    output_index: int
    arguments: str
    name: str


class ErrorEvent(msgspec.Struct):
    type: str
    sequence_number: int
    message: str
    code: str | None = None
    param: str | None = None
