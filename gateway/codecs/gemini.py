"""Gemini generateContent as a client API: request -> IR, IR result and events -> wire.

The endpoint is the model named in the URL (``models/{endpoint}:generateContent``), never
the body. Calls that arrive without an id get one derived from their position, so a later
functionResponse can be matched to its call: by id when it carries a known one, else by
name, oldest unanswered call first.

Degradations, by design: one candidate only (``candidateCount`` > 1 is refused); ``topK``,
``thinkingConfig``, safety settings and Gemini-hosted tools (googleSearch, codeExecution,
urlContext) and their executableCode / codeExecutionResult parts are dropped, as the IR has
no place for them; a ``thoughtSignature`` on a plain text part is dropped (the IR keeps
signatures on thinking and tool-call parts, where Gemini requires them); embedding
``taskType`` and ``title`` are dropped. Usage is reported only when the provider gave some.
Signatures that are not base64 (other providers') are wrapped so Gemini SDKs accept them,
and snake_case bodies (which Google also accepts) are read as camelCase.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

import msgspec
import orjson
from msgspec import UNSET, UnsetType

from gateway.codecs.errors import gemini_error_body
from gateway.codecs.openai_chat import bad_request_from
from gateway.errors import BadRequest, GatewayError, InvalidJSON
from gateway.ir import (
    ChatRequest, ChatResult, EmbeddingResult, FinishEvent, FinishReason, ImagePart, Message, Part,
    ResponseFormat, StreamEvent, TextDelta, TextPart, ThinkingDelta, ThinkingPart, ToolCallDelta,
    ToolCallPart, ToolCallStart, ToolChoice, ToolResultPart, ToolSpec, Usage, UsageEvent,
)
from gateway.ir.result import estimate_tokens
from gateway.wire import gemini as w

_decode_count_tokens = msgspec.json.Decoder(w.CountTokensRequest)
_decode_embed = msgspec.json.Decoder(w.EmbedContentBody)
_decode_batch_embed = msgspec.json.Decoder(w.BatchEmbedContentsBody)
_json_object = msgspec.json.Decoder(dict[str, msgspec.Raw])
_EMPTY_OBJECT = msgspec.Raw(b"{}")

_MODES = {"AUTO": "auto", "MODE_UNSPECIFIED": "auto", "VALIDATED": "auto", "ANY": "required", "NONE": "none"}
_FINISH: dict[FinishReason, str] = {
    "stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "content_filter": "SAFETY", "error": "OTHER",
}

# Google's JSON parser also accepts proto field names, and its own curl samples use them
# ("system_instruction", "inline_data"); the Structs read camelCase, so such bodies are
# rewritten first. Free-form values (call args, responses, schemas) keep their keys. Only
# the Structs' own multi-word fields trigger the rewrite: tool arguments such as
# "file_path" in a conversation's history do not.
_SNAKE_FIELDS = sorted({
    field for struct in vars(w).values() if isinstance(struct, type) and issubclass(struct, msgspec.Struct)
    for field in struct.__struct_fields__ if "_" in field
})
_SNAKE_KEY = re.compile(rb'"(?:' + b"|".join(re.escape(f.encode()) for f in _SNAKE_FIELDS) + rb')"\s*:')
_FREE_FORM = frozenset({
    "args", "response", "parameters", "parametersJsonSchema", "responseSchema", "responseJsonSchema",
})


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _camel_keys(node: Any) -> Any:
    if isinstance(node, list):
        return [_camel_keys(item) for item in node]
    if not isinstance(node, dict):
        return node
    pairs = ((_camel(key), value) for key, value in node.items())
    return {key: value if key in _FREE_FORM else _camel_keys(value) for key, value in pairs}


def _decode(decoder: msgspec.json.Decoder, body: bytes) -> Any:
    try:
        if _SNAKE_KEY.search(body):
            body = orjson.dumps(_camel_keys(orjson.loads(body)))
        return decoder.decode(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"Request body is not valid JSON: {exc}") from None
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc) from None


def _object(raw: msgspec.Raw | UnsetType, param: str) -> msgspec.Raw:
    """``raw`` checked to be a JSON object (Gemini's Struct type); absent means ``{}``."""
    if raw is UNSET:
        return _EMPTY_OBJECT
    try:
        _json_object.decode(raw)
    except msgspec.DecodeError:
        raise BadRequest(f"{param} must be a JSON object", param=param) from None
    return raw


def _json_schema(raw: msgspec.Raw) -> msgspec.Raw:
    """Gemini's OpenAPI-subset schema as JSON Schema, whose type names are lower case ("OBJECT" -> "object")."""
    def lower(node: Any) -> Any:
        if isinstance(node, list):
            return [lower(item) for item in node]
        if isinstance(node, dict):
            return {k: v.lower() if k == "type" and isinstance(v, str) else lower(v) for k, v in node.items()}
        return node
    return msgspec.Raw(orjson.dumps(lower(orjson.loads(bytes(raw)))))


# thoughtSignature is bytes on Gemini's wire, and SDKs reject one that is not base64. Other
# providers' signatures ("anthropic-redacted-thinking:...") are wrapped as base64 of
# b"GWSIG:" + signature, which always starts with the marker below, and unwrapped on return.
_WRAPPED = "R1dTSUc6"
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _wire_signature(signature: str | None) -> str | UnsetType:
    if not signature:
        return UNSET
    if _BASE64.fullmatch(signature) and not signature.startswith(_WRAPPED):
        return signature
    return _WRAPPED + base64.b64encode(signature.encode()).decode()


def _ir_signature(signature: str | UnsetType) -> str | None:
    if not signature:
        return None
    if signature.startswith(_WRAPPED):
        try:
            return base64.b64decode(signature[len(_WRAPPED):], validate=True).decode()
        except ValueError:  # binascii.Error and UnicodeDecodeError both are
            pass
    return signature


# ---- request -> IR -------------------------------------------------------------------------

def _tool_result(resp: w.FunctionResponse, pending: list[tuple[str, str]], where: str) -> ToolResultPart:
    index = next((k for k, (call_id, _) in enumerate(pending) if resp.id and call_id == resp.id), None)
    if index is None:
        # Clients often send their own ids (Gemini CLI makes one per call), so fall back to the name.
        index = next((k for k, (_, name) in enumerate(pending) if name == resp.name), None)
    if index is None:
        raise BadRequest(f"{where}: functionResponse '{resp.name}' answers no earlier functionCall", param=where)
    call_id, _ = pending.pop(index)
    response = _object(resp.response, f"{where}.functionResponse.response")
    # {"error": ...} alone is how Gemini callers report a failed call.
    is_error = set(_json_object.decode(response)) == {"error"}
    return ToolResultPart(call_id, bytes(response).decode(), resp.name, is_error)


def _content_part(part: w.Part, from_model: bool) -> Part | None:
    if part.inline_data is not UNSET:
        return ImagePart(data=part.inline_data.data, media_type=part.inline_data.mime_type)
    if part.file_data is not UNSET:
        return ImagePart(url=part.file_data.file_uri, media_type=part.file_data.mime_type or None)
    if part.text is UNSET:
        return None  # executableCode, codeExecutionResult: outputs of Gemini-hosted tools
    if part.thought:
        # A thought is the model's own; one in a user turn has no meaning and is dropped.
        keep = from_model and (part.text or part.thought_signature)
        return ThinkingPart(part.text, _ir_signature(part.thought_signature)) if keep else None
    return TextPart(part.text) if part.text else None


def _messages(contents: list[w.Content]) -> tuple[Message, ...]:
    groups: list[tuple[str, list[Part]]] = []
    pending: list[tuple[str, str]] = []  # (id, name) of calls not yet answered, oldest first
    for i, content in enumerate(contents):
        role = content.role or "user"
        if role not in ("user", "model", "function"):  # "function": the older API's turn of responses
            raise BadRequest(f"contents[{i}].role must be 'user' or 'model', not '{role}'", param=f"contents[{i}].role")
        calls = 0
        for j, part in enumerate(content.parts):
            where = f"contents[{i}].parts[{j}]"
            item: Part | None
            if part.function_call is not UNSET:
                call = part.function_call
                # Same shape as the Gemini provider's made-up ids (call_ + 24 hex), so it never sends them upstream.
                call_id = call.id or f"call_{i:012x}{calls:012x}"
                calls += 1
                pending.append((call_id, call.name))
                args = bytes(_object(call.args, f"{where}.functionCall.args")).decode()
                item = ToolCallPart(call_id, call.name, args, _ir_signature(part.thought_signature))
                target = "assistant"
            elif part.function_response is not UNSET:
                item, target = _tool_result(part.function_response, pending, where), "tool"
            else:
                item, target = _content_part(part, role == "model"), "assistant" if role == "model" else "user"
            if item is None:
                continue
            if groups and groups[-1][0] == target:
                groups[-1][1].append(item)
            else:
                groups.append((target, [item]))
    return tuple(Message(role, tuple(parts)) for role, parts in groups)  # type: ignore[arg-type]


def _system(content: w.Content | UnsetType) -> tuple[str, ...]:
    if content is UNSET:
        return ()
    for j, part in enumerate(content.parts):
        if part.text is UNSET:
            raise BadRequest("systemInstruction may hold only text parts", param=f"systemInstruction.parts[{j}]")
    return tuple(p.text for p in content.parts if p.text)


def _tools(tools: list[w.Tool] | UnsetType) -> tuple[ToolSpec, ...]:
    specs: list[ToolSpec] = []
    # Tools without functionDeclarations are Gemini-hosted (googleSearch, codeExecution, ...): skipped.
    for tool in tools or ():
        for decl in tool.function_declarations or ():
            params: msgspec.Raw | None = None
            if decl.parameters_json_schema is not UNSET:  # what Gemini CLI sends
                params = decl.parameters_json_schema
            elif decl.parameters is not UNSET:
                params = _json_schema(decl.parameters)
            specs.append(ToolSpec(decl.name, decl.description or None, params))
    return tuple(specs)


def _tool_choice(
    config: w.ToolConfig | UnsetType, tools: tuple[ToolSpec, ...],
) -> tuple[ToolChoice | None, tuple[ToolSpec, ...]]:
    fcc = config.function_calling_config if config is not UNSET else UNSET
    if fcc is UNSET:
        return None, tools
    mode = fcc.mode or "AUTO"
    if mode not in _MODES:
        raise BadRequest(f"Unknown function calling mode '{mode}'", param="toolConfig.functionCallingConfig.mode")
    allowed = fcc.allowed_function_names or []
    if allowed:
        if mode == "ANY" and len(allowed) == 1:
            return ToolChoice("required", allowed[0]), tools
        # The IR can force only one name; for several, offer the model only the allowed tools.
        tools = tuple(t for t in tools if t.name in allowed)
    return ToolChoice(_MODES[mode]), tools  # type: ignore[arg-type]


def _response_format(config: w.GenerationConfig) -> ResponseFormat | None:
    mime = config.response_mime_type or "text/plain"
    if mime not in ("text/plain", "application/json"):
        raise BadRequest(f"responseMimeType '{mime}' is not supported; use application/json or text/plain",
                         param="generationConfig.responseMimeType")
    if config.response_json_schema is not UNSET:
        return ResponseFormat("json_schema", schema=config.response_json_schema)
    if config.response_schema is not UNSET:
        return ResponseFormat("json_schema", schema=_json_schema(config.response_schema))
    return ResponseFormat("json_object") if mime == "application/json" else None


def _opt(value: Any) -> Any:
    return None if value is UNSET else value


def _chat_request(req: w.GenerateContentRequest, endpoint: str, stream: bool) -> ChatRequest:
    if not req.contents:
        raise BadRequest("contents must not be empty", param="contents")
    config = req.generation_config or w.GenerationConfig()
    if config.candidate_count is not UNSET and config.candidate_count > 1:
        raise BadRequest("Only candidateCount=1 is supported", param="generationConfig.candidateCount")
    tool_choice, tools = _tool_choice(req.tool_config, _tools(req.tools))
    return ChatRequest(
        model=endpoint,
        messages=_messages(req.contents),
        system=_system(req.system_instruction),
        tools=tools,
        tool_choice=tool_choice,
        temperature=_opt(config.temperature),
        top_p=_opt(config.top_p),
        max_tokens=_opt(config.max_output_tokens),
        stop=tuple(config.stop_sequences or ()),
        seed=_opt(config.seed),
        response_format=_response_format(config),
        stream=stream,
        include_usage=True,  # every Gemini stream carries usageMetadata
    )


def decode_request(body: bytes, endpoint: str, stream: bool) -> ChatRequest:
    """A generateContent body as the IR; ``endpoint`` is the model named in the URL path."""
    return _chat_request(_decode(w.request_decoder, body), endpoint, stream)


def decode_count_tokens_request(body: bytes, endpoint: str) -> ChatRequest:
    """A countTokens body, holding ``contents`` directly or inside ``generateContentRequest``."""
    req: w.CountTokensRequest = _decode(_decode_count_tokens, body)
    if req.generate_content_request is not UNSET:
        return _chat_request(req.generate_content_request, endpoint, False)
    return _chat_request(w.GenerateContentRequest(req.contents or []), endpoint, False)


def count_tokens_estimate(req: ChatRequest) -> int:
    """The gateway's documented estimate, (prompt characters + 1) / 4; tool declarations and images are not counted."""
    return estimate_tokens(req.prompt_chars())


def encode_count_tokens(total: int) -> bytes:
    """A countTokens response body."""
    return w.encoder.encode(w.CountTokensResponse(total))


# ---- IR -> response ------------------------------------------------------------------------

def _args(arguments: str) -> msgspec.Raw:
    """Call arguments as a JSON object; Gemini callers expect one, so anything else becomes ``{}``."""
    try:
        _json_object.decode(arguments)
    except msgspec.DecodeError:
        return _EMPTY_OBJECT
    return msgspec.Raw(arguments)


def _call_part(call_id: str, name: str, arguments: str, signature: str | None) -> w.Part:
    return w.Part(function_call=w.FunctionCall(name, _args(arguments), call_id or UNSET),
                  thought_signature=_wire_signature(signature))


def _wire_part(part: Part) -> w.Part | None:
    if isinstance(part, TextPart):
        return w.Part(text=part.text) if part.text else None
    if isinstance(part, ThinkingPart):
        return w.Part(text=part.text, thought=True, thought_signature=_wire_signature(part.signature))
    if isinstance(part, ToolCallPart):
        return _call_part(part.id, part.name, part.arguments, part.signature)
    return None  # images and tool results do not occur in a model's reply


def _usage_metadata(u: Usage) -> w.UsageMetadata:
    # Gemini counts thoughts apart from candidates; the IR's output includes reasoning. Zeros are omitted.
    return w.UsageMetadata(
        prompt_token_count=u.input_tokens,
        candidates_token_count=max(u.output_tokens - u.reasoning_tokens, 0),
        thoughts_token_count=u.reasoning_tokens,
        cached_content_token_count=u.cache_read_tokens,
        total_token_count=u.total_tokens,
    )


def _response(parts: list[w.Part], finish: str | UnsetType, usage: Usage | None, response_id: str, model: str) -> bytes:
    return w.encoder.encode(w.GenerateContentResponse(
        candidates=[w.Candidate(w.Content(parts, "model"), finish, 0)],
        usage_metadata=_usage_metadata(usage) if usage is not None else UNSET,
        response_id=response_id,
        model_version=model,
    ))


def encode_result(result: ChatResult, model: str) -> bytes:
    """A ChatResult as a GenerateContentResponse body; ``model`` is the endpoint name the caller used."""
    parts = [p for p in map(_wire_part, result.parts) if p is not None]
    return _response(parts, _FINISH[result.finish_reason], result.usage, result.id, model)


class _PendingCall(msgspec.Struct):
    id: str
    name: str
    signature: str | None
    arguments: list[str] = []


def _append_text(parts: list[w.Part], text: str, thought: bool, signature: str | None) -> None:
    """Add text to the chunk, merged into the previous part of the same kind while unsigned."""
    last = parts[-1] if parts else None
    if last is not None and last.text is not UNSET and bool(last.thought) == thought and not last.thought_signature:
        parts.pop()
        text = last.text + text
    parts.append(w.Part(text=text, thought=thought or UNSET, thought_signature=_wire_signature(signature)))


def _whole_json(text: str) -> bool:
    try:
        msgspec.json.decode(text)
    except msgspec.DecodeError:
        return False
    return True


class GeminiStreamEncoder:
    """IR stream events -> streamGenerateContent chunks, as SSE (``alt=sse``) or Gemini's JSON array.

    Each batch of events becomes at most one chunk. Gemini sends function calls whole, so
    tool-call deltas are buffered per index. A text or thinking event sends the calls whose
    arguments are already a whole JSON value (providers may interleave text with a call
    still streaming its arguments: that one waits); the end of the stream sends the rest. The last chunk carries
    finishReason and usageMetadata. In array mode the bytes of all chunks concatenate to
    one JSON array.
    """

    def __init__(self, model: str, sse: bool, response_id: str | None = None) -> None:
        self._model = model
        self._sse = sse
        self._id = response_id or "resp_" + secrets.token_hex(12)
        self._chunks = 0
        self._calls: dict[int, _PendingCall] = {}
        self._finish: FinishReason = "stop"
        self.usage: Usage | None = None
        self.output_chars = 0

    def encode(self, events: list[StreamEvent]) -> bytes:
        """One chunk for this batch, or nothing when it completed no part."""
        parts: list[w.Part] = []
        for ev in events:
            if isinstance(ev, TextDelta):
                if ev.text:
                    self._flush_calls(parts)
                    self.output_chars += len(ev.text)
                    _append_text(parts, ev.text, False, None)
            elif isinstance(ev, ThinkingDelta):
                if ev.text or ev.signature:
                    self._flush_calls(parts)
                    self.output_chars += len(ev.text)
                    _append_text(parts, ev.text, True, ev.signature)
            elif isinstance(ev, ToolCallStart):
                self._calls[ev.index] = _PendingCall(ev.id, ev.name, ev.signature)
            elif isinstance(ev, ToolCallDelta):
                self.output_chars += len(ev.arguments)
                call = self._calls.get(ev.index)
                if call is not None:  # None: the call was already whole and sent; nothing can follow but blanks
                    call.arguments.append(ev.arguments)
            elif isinstance(ev, FinishEvent):
                self._finish = ev.reason
            elif isinstance(ev, UsageEvent):
                self.usage = ev.usage
        return self._frame(_response(parts, UNSET, None, self._id, self._model)) if parts else b""

    def finish(self) -> bytes:
        """The last chunk: buffered calls, finishReason and usage; in array mode, also the closing bracket."""
        parts: list[w.Part] = []
        self._flush_calls(parts, only_whole=False)
        out = self._frame(_response(parts, _FINISH[self._finish], self.usage, self._id, self._model))
        return out if self._sse else out + b"]"

    def error_event(self, err: GatewayError) -> bytes:
        """``err`` as the stream's last element; unlike ``stream_error_event`` it knows whether the array is open."""
        if self._sse or not self._chunks:
            return stream_error_event(err, self._sse)
        return b",\r\n" + gemini_error_body(err) + b"]"

    def _flush_calls(self, parts: list[w.Part], only_whole: bool = True) -> None:
        for index in sorted(self._calls):
            call = self._calls[index]
            arguments = "".join(call.arguments)
            if only_whole and not _whole_json(arguments):
                continue
            parts.append(_call_part(call.id, call.name, arguments, call.signature))
            del self._calls[index]

    def _frame(self, data: bytes) -> bytes:
        if self._sse:
            return b"data: " + data + b"\r\n\r\n"  # Google ends its events with CRLF CRLF
        prefix = b"[" if not self._chunks else b",\r\n"
        self._chunks += 1
        return prefix + data


def stream_error_event(err: GatewayError, sse: bool) -> bytes:
    """An error inside a started stream: Google sends the error object as the next event.

    In JSON-array mode this is a whole one-element array, right only before any chunk was
    sent; with an encoder at hand use ``GeminiStreamEncoder.error_event``.
    """
    body = gemini_error_body(err)
    return b"data: " + body + b"\r\n\r\n" if sse else b"[" + body + b"]"


# ---- embeddings ----------------------------------------------------------------------------

def _embed_input(req: w.EmbedContentBody, endpoint: str, prefix: str) -> str:
    if req.model and req.model.removeprefix("models/") != endpoint:
        raise BadRequest(f"{prefix}model '{req.model}' does not match the endpoint '{endpoint}' in the URL",
                         param=f"{prefix}model")
    texts: list[str] = []
    for j, part in enumerate(req.content.parts):
        if part.text is UNSET:
            where = f"{prefix}content.parts[{j}]"
            raise BadRequest(f"{where}: only text can be embedded", param=where)
        texts.append(part.text)
    if not texts:
        raise BadRequest(f"{prefix}content has no text to embed", param=f"{prefix}content")
    # Gemini embeds a content's parts as one text; the gateway joins them with newlines.
    return "\n".join(texts)


def decode_embed_request(body: bytes, endpoint: str) -> tuple[list[str], int | None]:
    """An embedContent body as (inputs, outputDimensionality or None)."""
    req: w.EmbedContentBody = _decode(_decode_embed, body)
    return [_embed_input(req, endpoint, "")], _opt(req.output_dimensionality)


def decode_batch_embed_request(body: bytes, endpoint: str) -> tuple[list[str], int | None]:
    """A batchEmbedContents body as (inputs, outputDimensionality or None); all entries must agree on it."""
    batch: w.BatchEmbedContentsBody = _decode(_decode_batch_embed, body)
    if not batch.requests:
        raise BadRequest("requests must not be empty", param="requests")
    dims = {_opt(r.output_dimensionality) for r in batch.requests}
    if len(dims) > 1:
        raise BadRequest("All requests must ask for the same outputDimensionality", param="requests")
    return [_embed_input(r, endpoint, f"requests[{i}].") for i, r in enumerate(batch.requests)], dims.pop()


def encode_embed_result(result: EmbeddingResult) -> bytes:
    """An embedContent response: the first (only) vector."""
    return w.encoder.encode(w.EmbedContentResponse(w.ContentEmbedding(result.vectors[0])))


def encode_batch_embed_result(result: EmbeddingResult) -> bytes:
    """A batchEmbedContents response, one embedding per request in order."""
    return w.encoder.encode(w.BatchEmbedContentsResponse([w.ContentEmbedding(v) for v in result.vectors]))
