"""Gemini generateContent JSON as msgspec Structs (request, response, stream chunk, embeddings).

Field names are snake_case here and camelCase on the wire (``rename="camel"``). Every
optional field defaults to UNSET and is left out when encoding, so a translated request
never sends ``null``. Unknown fields (new part kinds, safety ratings, grounding metadata)
are ignored on decode.
"""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType


class _Wire(msgspec.Struct, omit_defaults=True, rename="camel", frozen=True):
    pass


# ---- content -------------------------------------------------------------------------------

class Blob(_Wire):
    """Inline bytes, base64-encoded."""

    mime_type: str
    data: str


class FileData(_Wire):
    file_uri: str
    mime_type: str | UnsetType = UNSET


class FunctionCall(_Wire):
    name: str
    args: msgspec.Raw | UnsetType = UNSET  # a JSON object, kept as text
    id: str | UnsetType = UNSET


class FunctionResponse(_Wire):
    name: str
    response: msgspec.Raw  # a JSON object
    id: str | UnsetType = UNSET


class Part(_Wire):
    """One part; exactly one of text, inline_data, file_data, function_call, function_response is set."""

    text: str | UnsetType = UNSET
    inline_data: Blob | UnsetType = UNSET
    file_data: FileData | UnsetType = UNSET
    function_call: FunctionCall | UnsetType = UNSET
    function_response: FunctionResponse | UnsetType = UNSET
    thought: bool | UnsetType = UNSET
    thought_signature: str | UnsetType = UNSET


class Content(_Wire):
    """A turn; ``role`` is ``user`` or ``model`` (absent in systemInstruction)."""

    parts: list[Part] = []
    role: str | UnsetType = UNSET


# ---- request -------------------------------------------------------------------------------

class FunctionDeclaration(_Wire):
    name: str
    description: str | UnsetType = UNSET
    parameters_json_schema: msgspec.Raw | UnsetType = UNSET  # JSON Schema
    parameters: msgspec.Raw | UnsetType = UNSET  # the older OpenAPI-subset schema


class Tool(_Wire):
    function_declarations: list[FunctionDeclaration] | UnsetType = UNSET


class FunctionCallingConfig(_Wire):
    mode: str | UnsetType = UNSET  # AUTO, ANY, NONE (or VALIDATED)
    allowed_function_names: list[str] | UnsetType = UNSET


class ToolConfig(_Wire):
    function_calling_config: FunctionCallingConfig | UnsetType = UNSET


class ThinkingConfig(_Wire):
    include_thoughts: bool | UnsetType = UNSET
    thinking_budget: int | UnsetType = UNSET


class GenerationConfig(_Wire):
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    top_k: int | UnsetType = UNSET
    max_output_tokens: int | UnsetType = UNSET
    stop_sequences: list[str] | UnsetType = UNSET
    seed: int | UnsetType = UNSET
    candidate_count: int | UnsetType = UNSET
    response_mime_type: str | UnsetType = UNSET
    response_json_schema: msgspec.Raw | UnsetType = UNSET  # JSON Schema
    response_schema: msgspec.Raw | UnsetType = UNSET  # the older OpenAPI-subset schema
    thinking_config: ThinkingConfig | UnsetType = UNSET


class GenerateContentRequest(_Wire):
    contents: list[Content]
    system_instruction: Content | UnsetType = UNSET
    tools: list[Tool] | UnsetType = UNSET
    tool_config: ToolConfig | UnsetType = UNSET
    generation_config: GenerationConfig | UnsetType = UNSET


# ---- response ------------------------------------------------------------------------------

class Candidate(_Wire):
    content: Content = Content()  # absent when the candidate was blocked
    finish_reason: str | UnsetType = UNSET
    index: int | UnsetType = UNSET


class UsageMetadata(_Wire):
    """Token counts. ``prompt_token_count`` includes ``cached_content_token_count``."""

    prompt_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int = 0
    cached_content_token_count: int = 0
    tool_use_prompt_token_count: int = 0
    total_token_count: int = 0


class PromptFeedback(_Wire):
    block_reason: str | UnsetType = UNSET


class GenerateContentResponse(_Wire):
    candidates: list[Candidate] = []
    prompt_feedback: PromptFeedback | UnsetType = UNSET
    usage_metadata: UsageMetadata | UnsetType = UNSET
    response_id: str | UnsetType = UNSET
    model_version: str | UnsetType = UNSET


class Status(_Wire):
    """Google's error object: an HTTP-like ``code`` and a canonical ``status`` name."""

    code: int = 0
    message: str = ""
    status: str = ""


class StreamChunk(GenerateContentResponse):
    """One ``streamGenerateContent?alt=sse`` event: a response chunk, or an error mid-stream."""

    error: Status | UnsetType = UNSET


# ---- embeddings ----------------------------------------------------------------------------

class EmbedContentRequest(_Wire):
    model: str  # "models/<name>", repeated per request
    content: Content
    task_type: str | UnsetType = UNSET
    output_dimensionality: int | UnsetType = UNSET


class BatchEmbedContentsRequest(_Wire):
    requests: list[EmbedContentRequest]


class ContentEmbedding(_Wire):
    values: list[float]


class BatchEmbedContentsResponse(_Wire):
    embeddings: list[ContentEmbedding] = []


# ---- as callers send them (client side) ----------------------------------------------------

class EmbedContentBody(_Wire):
    """An embedContent body, or one entry of batchEmbedContents, from a caller: the URL names the model."""

    content: Content
    model: str | UnsetType = UNSET
    task_type: str | UnsetType = UNSET
    title: str | UnsetType = UNSET
    output_dimensionality: int | UnsetType = UNSET


class BatchEmbedContentsBody(_Wire):
    requests: list[EmbedContentBody]


class EmbedContentResponse(_Wire):
    embedding: ContentEmbedding


class CountTokensRequest(_Wire):
    """countTokens takes ``contents`` alone, or a whole ``generateContentRequest``."""

    contents: list[Content] | UnsetType = UNSET
    generate_content_request: GenerateContentRequest | UnsetType = UNSET


class CountTokensResponse(_Wire):
    total_tokens: int


# Decoders are built once and reused.
request_decoder = msgspec.json.Decoder(GenerateContentRequest)
response_decoder = msgspec.json.Decoder(GenerateContentResponse)
chunk_decoder = msgspec.json.Decoder(StreamChunk)
embed_request_decoder = msgspec.json.Decoder(BatchEmbedContentsRequest)
embed_response_decoder = msgspec.json.Decoder(BatchEmbedContentsResponse)
encoder = msgspec.json.Encoder()
