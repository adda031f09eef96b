"""The Gemini provider: IR <-> generateContent JSON, and its transport.

Gemini identifies function calls by name and often sends no call id, so the gateway
makes one up (``call_`` + 24 hex digits). Such ids mean nothing to Gemini and are not
sent back; ids Gemini issued itself are, on the call and on its response.
"""

from __future__ import annotations

import mimetypes
import re
import secrets
from collections.abc import Callable
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET
from yarl import URL

from gateway.config import ProviderConfig
from gateway.errors import (
    BadRequest, GatewayError, UpstreamError, UpstreamInvalidResponse, UpstreamStatus, UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.ir import (
    ChatRequest, ChatResult, EmbeddingResult, FinishEvent, FinishReason, ImagePart, Message, Part,
    StreamEvent, TextDelta, TextPart, ThinkingDelta, ThinkingPart, ToolCallDelta, ToolCallPart,
    ToolCallStart, ToolResultPart, Usage, UsageEvent,
)
from gateway.ir.result import estimate_tokens
from gateway.providers.base import Provider, ProviderStream, Target, decoded_stream
from gateway.providers.http import HttpClients, decode_json, read_body, send
from gateway.providers.upstream_client import UpstreamResponse
from gateway.streaming.sse import SSEEventDecoder
from gateway.wire import gemini as w

_EMPTY_OBJECT = msgspec.Raw(b"{}")
_json_object = msgspec.json.Decoder(dict[str, msgspec.Raw])
_GENERATED_ID = re.compile(r"call_[0-9a-f]{24}")

_CONTENT_FILTER = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT",
})

_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}

# Google's canonical status names, for an error that arrives inside a 200 stream without a code.
_STATUS_CODES = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "RESOURCE_EXHAUSTED": 429, "INTERNAL": 500,
    "UNAVAILABLE": 503,
}


def new_call_id() -> str:
    """A tool call id for a call Gemini sent without one."""
    return "call_" + secrets.token_hex(12)


def _known_id(call_id: str) -> str | msgspec.UnsetType:
    return UNSET if not call_id or _GENERATED_ID.fullmatch(call_id) else call_id


# ---- IR request -> Gemini ------------------------------------------------------------------

def _image(part: ImagePart) -> w.Part:
    if part.data is not None:
        if not part.media_type:
            raise BadRequest("an inline image needs a media_type")
        return w.Part(inline_data=w.Blob(part.media_type, part.data))
    url = part.url or ""
    if url.startswith("data:"):
        # "data:image/png;base64,XXXX" -> mimeType + base64 data.
        header, comma, data = url[5:].partition(",")
        params = header.split(";")
        if not comma or not params[0] or "base64" not in params[1:]:
            raise BadRequest("an image data URL must be base64 with a media type")
        return w.Part(inline_data=w.Blob(params[0], data))
    if not url:
        raise BadRequest("an image needs a url or data")
    # Gemini wants a mimeType with fileData; guess it from the extension as its SDKs do.
    mime, _ = mimetypes.guess_type(urlsplit(url).path)
    return w.Part(file_data=w.FileData(url, mime or "image/jpeg"))


def _object_or(text: str, fallback: msgspec.Raw | str) -> msgspec.Raw | str:
    """``text`` as raw JSON when it is a JSON object, else ``fallback``."""
    try:
        _json_object.decode(text)
    except msgspec.DecodeError:
        return fallback
    return msgspec.Raw(text)


def _tool_result(part: ToolResultPart, names: dict[str, str]) -> w.Part:
    name = part.name or names.get(part.tool_call_id)
    if not name:
        raise BadRequest(f"tool result '{part.tool_call_id}' answers no earlier tool call; Gemini needs its name")
    # Gemini reads {"error": ...} in a function response as a failed call, anything else as output.
    key = "error" if part.is_error else "result"
    response = msgspec.Raw(w.encoder.encode({key: _object_or(part.content, part.content)}))
    return w.Part(function_response=w.FunctionResponse(name, response, _known_id(part.tool_call_id)))


def _part(part: Part, names: dict[str, str]) -> w.Part | None:
    if isinstance(part, TextPart):
        return w.Part(text=part.text) if part.text else None
    if isinstance(part, ToolCallPart):
        args = _object_or(part.arguments, _EMPTY_OBJECT)
        return w.Part(
            function_call=w.FunctionCall(part.name, args, _known_id(part.id)),
            thought_signature=part.signature or UNSET,
        )
    if isinstance(part, ToolResultPart):
        return _tool_result(part, names)
    if isinstance(part, ThinkingPart):
        # Gemini's thoughts are summaries it never takes back as input; its signatures ride on
        # the parts that follow them (function calls), so a thinking part is dropped.
        return None
    return _image(part)


def _contents(messages: tuple[Message, ...]) -> list[w.Content]:
    names: dict[str, str] = {}  # tool call id -> function name, for results that omit it
    turns: list[tuple[str, list[w.Part]]] = []
    for message in messages:
        role = "model" if message.role == "assistant" else "user"  # tool results ride in user turns
        parts: list[w.Part] = []
        for part in message.parts:
            if isinstance(part, ToolCallPart):
                names[part.id] = part.name
            if (wire_part := _part(part, names)) is not None:
                parts.append(wire_part)
        if not parts:
            continue
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(parts)
        else:
            turns.append((role, parts))
    return [w.Content(parts, role) for role, parts in turns]


def _tool_config(req: ChatRequest) -> w.ToolConfig | msgspec.UnsetType:
    choice = req.tool_choice
    if not req.tools or choice is None:
        return UNSET
    if choice.name:
        config = w.FunctionCallingConfig("ANY", [choice.name])
    else:
        config = w.FunctionCallingConfig(_MODES[choice.mode])
    return w.ToolConfig(config)


def _generation_config(req: ChatRequest) -> w.GenerationConfig | msgspec.UnsetType:
    mime: str | msgspec.UnsetType = UNSET
    schema: msgspec.Raw | msgspec.UnsetType = UNSET
    fmt = req.response_format
    if fmt is not None and fmt.type != "text":
        mime = "application/json"
        if fmt.type == "json_schema" and fmt.schema is not None:
            schema = fmt.schema
    config = w.GenerationConfig(
        temperature=req.temperature if req.temperature is not None else UNSET,
        top_p=req.top_p if req.top_p is not None else UNSET,
        max_output_tokens=req.max_tokens if req.max_tokens is not None else UNSET,
        stop_sequences=list(req.stop) or UNSET,
        seed=req.seed if req.seed is not None else UNSET,
        response_mime_type=mime,
        response_json_schema=schema,
    )
    return UNSET if config == w.GenerationConfig() else config


def encode_request(req: ChatRequest) -> bytes:
    """The generateContent body for ``req`` (the model and streaming go in the URL).

    Dropped knowingly: ``parallel_tool_calls`` (Gemini has no switch for it), ``user``
    (no field for it), ``response_format.name`` and ``strict``, and image ``detail``.
    """
    system = [w.Part(text=s) for s in req.system if s]
    body = w.GenerateContentRequest(
        contents=_contents(req.messages),
        system_instruction=w.Content(system) if system else UNSET,
        tools=[w.Tool([
            w.FunctionDeclaration(
                t.name,
                t.description if t.description is not None else UNSET,
                t.parameters if t.parameters is not None else UNSET,
            )
            for t in req.tools
        ])] if req.tools else UNSET,
        tool_config=_tool_config(req),
        generation_config=_generation_config(req),
    )
    return w.encoder.encode(body)


# ---- Gemini -> IR result -------------------------------------------------------------------

def _finish_reason(reason: str, saw_calls: bool) -> FinishReason:
    if reason in _CONTENT_FILTER:
        return "content_filter"
    if reason == "MAX_TOKENS":
        return "length"
    return "tool_calls" if saw_calls and reason == "STOP" else "stop"


def _usage(u: w.UsageMetadata) -> Usage:
    # OpenAI semantics: completion tokens include the reasoning (thought) tokens.
    return Usage(
        input_tokens=u.prompt_token_count,
        output_tokens=u.candidates_token_count + u.thoughts_token_count,
        cache_read_tokens=u.cached_content_token_count,
        reasoning_tokens=u.thoughts_token_count,
    )


def _parts(candidate: w.Candidate, new_id: Callable[[], str]) -> list[Part]:
    """The IR parts of a candidate; part kinds the IR has no place for are skipped."""
    parts: list[Part] = []
    for part in candidate.content.parts:
        if part.function_call is not UNSET:
            call = part.function_call
            args = bytes(call.args).decode() if call.args is not UNSET else "{}"
            parts.append(ToolCallPart(call.id or new_id(), call.name, args, part.thought_signature or None))
        elif part.text is UNSET:
            continue
        elif part.thought:
            if part.text or part.thought_signature:
                parts.append(ThinkingPart(part.text, part.thought_signature or None))
        elif part.text:
            parts.append(TextPart(part.text))
    return parts


def decode_result(body: bytes, model: str, provider: str = "gemini") -> ChatResult:
    """A generateContent response body as an IR result; only the first candidate is read."""
    resp: w.GenerateContentResponse = decode_json(w.response_decoder, body, provider)
    parts: list[Part] = []
    if resp.candidates:
        candidate = resp.candidates[0]
        parts = _parts(candidate, new_call_id)
        saw_calls = any(isinstance(p, ToolCallPart) for p in parts)
        finish = _finish_reason(candidate.finish_reason or "STOP", saw_calls)
    else:
        blocked = resp.prompt_feedback is not UNSET and resp.prompt_feedback.block_reason
        finish = "content_filter" if blocked else "stop"
    return ChatResult(
        id=resp.response_id or "resp_" + secrets.token_hex(12),
        model=resp.model_version or model,
        parts=parts,
        finish_reason=finish,
        usage=_usage(resp.usage_metadata) if resp.usage_metadata is not UNSET else None,
    )


# ---- Gemini stream -> IR events ------------------------------------------------------------

def _stream_error(error: w.Status, provider: str) -> GatewayError:
    code = error.code or _STATUS_CODES.get(error.status, 0)
    if error.status == "DEADLINE_EXCEEDED" or code == 504:
        return UpstreamTimeout(f"provider '{provider}' timed out mid-stream")
    if code in (401, 403):
        # Never echo the provider's view of our credentials back to a caller.
        return UpstreamStatus(code, f"provider '{provider}' rejected the gateway's credentials mid-stream")
    message = f"provider '{provider}' stream failed with {error.status or code}: {error.message or 'no message'}"
    return UpstreamStatus(code, message) if 400 <= code < 600 else UpstreamError(message)


class GeminiStreamDecoder(SSEEventDecoder):
    """Gemini SSE bytes -> IR stream events; one per upstream stream, pure over bytes.

    Gemini sends each function call whole, so a call becomes a ToolCallStart and one
    ToolCallDelta with all its arguments. ``new_id`` names calls Gemini left unnamed.
    """

    def __init__(self, provider: str = "gemini", new_id: Callable[[], str] = new_call_id) -> None:
        super().__init__()
        self.provider = provider
        self.id = ""
        self.model = ""
        self._new_id = new_id
        self._calls = 0
        self._usage: w.UsageMetadata | None = None
        self._finished = False

    def finish(self) -> list[StreamEvent]:
        """Events left at the end, usage last; raises if the stream ended before a finish reason."""
        self._raise_pending()
        out: list[StreamEvent] = []
        for sse in self._sse.finish():
            self._event(sse.data, out)
        if not self._finished:
            raise UpstreamUnavailable(f"provider '{self.provider}' ended its stream before a finish reason")
        if self._usage is not None:
            out.append(UsageEvent(_usage(self._usage)))
        return out

    def _event(self, data: bytes, out: list[StreamEvent]) -> None:
        try:
            chunk = w.chunk_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamInvalidResponse(
                f"provider '{self.provider}' sent a stream chunk the gateway could not parse: {exc}"
            ) from None
        if chunk.error is not UNSET:
            raise _stream_error(chunk.error, self.provider)
        self.id = chunk.response_id or self.id
        self.model = chunk.model_version or self.model
        if chunk.usage_metadata is not UNSET:
            self._usage = chunk.usage_metadata  # cumulative in every chunk: replace, don't add
        if not chunk.candidates:
            if chunk.prompt_feedback is not UNSET and chunk.prompt_feedback.block_reason:
                self._finish("content_filter", out)
            return
        candidate = chunk.candidates[0]
        for part in _parts(candidate, self._new_id):
            if isinstance(part, TextPart):
                out.append(TextDelta(part.text))
            elif isinstance(part, ThinkingPart):
                out.append(ThinkingDelta(part.text, part.signature))
            elif isinstance(part, ToolCallPart):
                out.append(ToolCallStart(self._calls, part.id, part.name, part.signature))
                out.append(ToolCallDelta(self._calls, part.arguments))
                self._calls += 1
        if candidate.finish_reason:
            self._finish(_finish_reason(candidate.finish_reason, self._calls > 0), out)

    def _finish(self, reason: FinishReason, out: list[StreamEvent]) -> None:
        if not self._finished:
            self._finished = True
            out.append(FinishEvent(reason))


# ---- transport -----------------------------------------------------------------------------

class GeminiProvider(Provider):
    """The Gemini API at ``{base_url}/v1beta/models/{model}:{method}``, keyed by ``x-goog-api-key``."""

    wire = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com"

    def __init__(self, name: str, config: ProviderConfig, http: HttpClients) -> None:
        super().__init__(name, config, http)
        headers = {"content-type": "application/json"}
        if config.api_key:
            # In a header, never the URL: URLs end up in logs and error messages.
            headers["x-goog-api-key"] = config.api_key
        headers.update({k.lower(): v for k, v in config.headers.items()})
        self.headers = headers
        self._urls: dict[tuple[str, str, bool], URL] = {}

    def url(self, model: str, method: str, sse: bool = True) -> URL:
        """The upstream URL for ``method`` (generateContent, ...) on ``model``; streams are
        SSE unless ``sse`` is false (Gemini's JSON-array stream form)."""
        url = self._urls.get((model, method, sse))
        if url is None:
            url = URL(f"{self.base_url}/v1beta/models/{model.removeprefix('models/')}:{method}")
            if method == "streamGenerateContent" and sse:
                url = url.with_query(alt="sse")
            self._urls[(model, method, sse)] = url
        return url

    async def passthrough(self, method: str, body: bytes, target: Target, sse: bool = True) -> UpstreamResponse:
        """POST a Gemini-speaking caller's body untouched (the model is in the URL)."""
        url = self.url(target.model, method, sse)
        return await send(
            self.session(url), "POST", url, provider=self.name, timeouts=target.timeouts, data=body, headers=self.headers,
        )

    async def _post(self, target: Target, method: str, body: bytes) -> UpstreamResponse:
        url = self.url(target.model, method)
        return await send(
            self.session(url), "POST", url, provider=self.name, timeouts=target.timeouts,
            data=body, headers=self.headers,
        )

    async def complete(self, request: ChatRequest, target: Target) -> ChatResult:
        """One non-streaming turn."""
        resp = await self._post(target, "generateContent", encode_request(request))
        return decode_result(await read_body(resp, self.name), target.model, self.name)

    async def open_stream(self, request: ChatRequest, target: Target) -> ProviderStream:
        """Start a streaming turn; returns once Gemini answered with a success status."""
        resp = await self._post(target, "streamGenerateContent", encode_request(request))
        return decoded_stream(resp, self.name, GeminiStreamDecoder(self.name))

    async def embed(self, inputs: list[str], target: Target, dimensions: int | None = None) -> EmbeddingResult:
        """Embed with batchEmbedContents; Gemini reports no usage, so it is estimated."""
        model = target.model
        name = "models/" + model.removeprefix("models/")
        body = w.BatchEmbedContentsRequest([
            w.EmbedContentRequest(
                name, w.Content([w.Part(text=text)]),
                output_dimensionality=dimensions if dimensions is not None else UNSET,
            )
            for text in inputs
        ])
        resp = await self._post(target, "batchEmbedContents", w.encoder.encode(body))
        parsed: w.BatchEmbedContentsResponse = decode_json(
            w.embed_response_decoder, await read_body(resp, self.name), self.name
        )
        if len(parsed.embeddings) != len(inputs):
            raise UpstreamInvalidResponse(
                f"provider '{self.name}' returned {len(parsed.embeddings)} embeddings for {len(inputs)} inputs"
            )
        usage = Usage(input_tokens=estimate_tokens(sum(map(len, inputs))), estimated=True)
        return EmbeddingResult([e.values for e in parsed.embeddings], model, usage)
