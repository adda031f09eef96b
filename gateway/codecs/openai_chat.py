"""OpenAI Chat Completions as a client API: request -> IR, IR result and events -> wire.

Degradations, by design: ``n`` > 1 is refused (every provider path returns one choice), and so
are ``logprobs`` and ``top_logprobs`` (no other provider's reply is translated with them);
thinking text goes out as ``reasoning_content`` (the field vLLM and DeepSeek use), and its
signature is dropped because Chat Completions cannot carry it.
"""

from __future__ import annotations

import time

import msgspec

from gateway.codecs.errors import openai_error_body
from gateway.errors import BadRequest, GatewayError, InvalidJSON
from gateway.ir import (
    AGENT_REQUEST_FIELDS,
    AgentFieldsEvent,
    ChatRequest,
    ChatResult,
    FinishEvent,
    ImagePart,
    Message,
    Part,
    ResponseFormat,
    StreamEvent,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolResultPart,
    ToolSpec,
    Usage,
    UsageEvent,
)
from gateway.streaming.sse import encode_sse
from gateway.wire import openai_chat as w

_decode_request = msgspec.json.Decoder(w.ChatCompletionRequest)
_decode_view = msgspec.json.Decoder(w.ChatRequestView)
_encode = msgspec.json.Encoder()


def bad_request_from(exc: msgspec.DecodeError) -> BadRequest:
    """A msgspec decode failure as a caller-facing 400 naming the bad field."""
    text = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        param = text.rsplit("at `$.", 1)[1].rstrip("`") if "at `$." in text else None
        return BadRequest(f"Invalid request: {text}", param=param)
    return InvalidJSON(f"Request body is not valid JSON: {text}")


def decode_view(body: bytes) -> w.ChatRequestView:
    """Read only ``model`` and ``stream``: enough to route, and for passthrough all that is needed."""
    try:
        return _decode_view.decode(body)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc) from None


def _text_of(content: str | list[w.ContentPart] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.text for p in content if isinstance(p, w.TextContent))


def _image_part(image: w.ImageURL) -> ImagePart:
    detail = image.detail if isinstance(image.detail, str) else None
    url = image.url
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        if not sep or ";base64" not in header:
            raise BadRequest("Image data URLs must be base64: data:<media type>;base64,<data>", param="image_url")
        return ImagePart(data=data, media_type=header.split(";", 1)[0] or "image/png", detail=detail)
    return ImagePart(url=url, detail=detail)


def _user_parts(content: str | list[w.ContentPart] | None) -> tuple[Part, ...]:
    if content is None:
        return ()
    if isinstance(content, str):
        return (TextPart(content),)
    return tuple(TextPart(p.text) if isinstance(p, w.TextContent) else _image_part(p.image_url) for p in content)


def _messages(req: w.ChatCompletionRequest) -> tuple[tuple[str, ...], tuple[Message, ...]]:
    system: list[str] = []
    messages: list[Message] = []
    for i, m in enumerate(req.messages):
        if m.role in ("system", "developer"):
            system.append(_text_of(m.content))
        elif m.role == "user":
            messages.append(Message("user", _user_parts(m.content)))
        elif m.role == "assistant":
            parts: list[Part] = []
            if isinstance(m.reasoning_content, str) and m.reasoning_content:
                parts.append(ThinkingPart(m.reasoning_content))
            text = _text_of(m.content)
            if text:
                parts.append(TextPart(text))
            for call in m.tool_calls or ():
                parts.append(ToolCallPart(call.id, call.function.name, call.function.arguments))
            messages.append(Message("assistant", tuple(parts)))
        else:  # tool
            if not isinstance(m.tool_call_id, str):
                raise BadRequest(f"messages[{i}]: a tool message needs tool_call_id", param=f"messages[{i}].tool_call_id")
            name = m.name if isinstance(m.name, str) else None
            messages.append(Message("tool", (ToolResultPart(m.tool_call_id, _text_of(m.content), name),)))
    return tuple(system), tuple(messages)


def function_parameters(parameters: msgspec.Raw | msgspec.UnsetType) -> msgspec.Raw | None:
    """A function tool's JSON Schema, or None: OpenAI takes ``"parameters": null`` for a function
    without arguments, where providers want a schema or none (Anthropic refuses a null one)."""
    return parameters if isinstance(parameters, msgspec.Raw) and bytes(parameters) != b"null" else None


def _tool_choice(choice: str | w.NamedToolChoice | None) -> ToolChoice | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        return ToolChoice(choice)
    return ToolChoice("required", choice.function.name)


def _response_format(fmt: w.ResponseFormat | None) -> ResponseFormat | None:
    if fmt is None:
        return None
    if fmt.type == "json_schema":
        if not isinstance(fmt.json_schema, w.JSONSchemaFormat) or not isinstance(fmt.json_schema.schema, msgspec.Raw):
            raise BadRequest("response_format json_schema needs json_schema.schema", param="response_format")
        return ResponseFormat("json_schema", fmt.json_schema.name, fmt.json_schema.schema, fmt.json_schema.strict)
    return ResponseFormat(fmt.type)


def decode_request(body: bytes) -> ChatRequest:
    """Validate a Chat Completions body and turn it into the IR."""
    try:
        req = _decode_request.decode(body)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc) from None
    if req.n is not None and req.n != 1:
        raise BadRequest("Only n=1 is supported", param="n")
    # The IR carries no token probabilities: refused, where a silent "logprobs": null would look like a bug.
    if req.logprobs or req.top_logprobs:
        raise BadRequest("logprobs are only available from OpenAI-format providers, not from this endpoint's",
                         param="logprobs" if req.logprobs else "top_logprobs")
    if not req.messages:
        raise BadRequest("messages must not be empty", param="messages")
    system, messages = _messages(req)
    tools = tuple(
        ToolSpec(
            t.function.name,
            t.function.description if isinstance(t.function.description, str) else None,
            function_parameters(t.function.parameters),
        )
        for t in req.tools or ()
    )
    stop = (req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ())
    return ChatRequest(
        model=req.model,
        messages=messages,
        system=system,
        tools=tools,
        tool_choice=_tool_choice(req.tool_choice),
        parallel_tool_calls=req.parallel_tool_calls,
        temperature=req.temperature,
        top_p=req.top_p,
        max_tokens=req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens,
        stop=stop,
        seed=req.seed,
        response_format=_response_format(req.response_format),
        stream=bool(req.stream),
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
        user=req.user,
        agent_fields=agent_fields(req, AGENT_REQUEST_FIELDS),
    )


def agent_fields(obj: msgspec.Struct, names: tuple[str, ...]) -> dict[str, msgspec.Raw]:
    """The agent fields among ``names`` that ``obj`` (a wire Struct) carries; ``{}`` (shared,
    never mutated) when it has none, as for every caller that is not an agent's."""
    found = {n: v for n in names if isinstance(v := getattr(obj, n), msgspec.Raw)}
    return found or _NO_FIELDS


_NO_FIELDS: dict[str, msgspec.Raw] = {}


def encode_usage(usage: Usage) -> w.Usage:
    return w.Usage(
        prompt_tokens=usage.input_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        prompt_tokens_details=w.PromptTokensDetails(usage.cache_read_tokens),
        completion_tokens_details=w.CompletionTokensDetails(usage.reasoning_tokens),
    )


def encode_result(result: ChatResult, model: str) -> bytes:
    """A ChatResult as a chat.completion body; ``model`` is the endpoint name the caller used."""
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[w.ToolCall] = []
    for part in result.parts:
        if isinstance(part, TextPart):
            text.append(part.text)
        elif isinstance(part, ThinkingPart):
            reasoning.append(part.text)
        elif isinstance(part, ToolCallPart):
            calls.append(w.ToolCall(part.id, w.FunctionCall(part.name, part.arguments)))
    message = w.ResponseMessage(
        content="".join(text) if text or not calls else None,
        tool_calls=calls or msgspec.UNSET,
        reasoning_content="".join(reasoning) if reasoning else msgspec.UNSET,
    )
    body = w.ChatCompletion(
        id=result.id,
        created=result.created or int(time.time()),
        model=model,
        choices=[w.Choice(0, message, result.finish_reason)],
        usage=encode_usage(result.usage) if result.usage else msgspec.UNSET,
        **result.agent_fields,
    )
    return _encode.encode(body)


class OpenAIChatStreamEncoder:
    """IR stream events -> Chat Completions SSE chunks, ending with ``data: [DONE]``.

    The finish chunk is held back until the provider stream ends, because usage may
    arrive after the finish reason and the usage chunk must come after it.
    """

    def __init__(self, response_id: str, model: str, include_usage: bool) -> None:
        self._id = response_id
        self._model = model
        self._created = int(time.time())
        self._include_usage = include_usage
        self._started = False
        self._finish: str | None = None
        self._agent_fields: dict[str, msgspec.Raw] = {}
        self.usage: Usage | None = None
        self.output_chars = 0

    def _chunk(self, delta: w.Delta, finish: str | None = None) -> bytes:
        chunk = w.ChatCompletionChunk(self._id, self._created, self._model, [w.ChunkChoice(0, delta, finish)])
        return encode_sse(_encode.encode(chunk))

    def start(self) -> bytes:
        """The role chunk every OpenAI stream opens with."""
        self._started = True
        return self._chunk(w.Delta(role="assistant", content=""))

    def encode(self, events: list[StreamEvent]) -> bytes:
        out: list[bytes] = [] if self._started else [self.start()]
        for ev in events:
            if isinstance(ev, TextDelta):
                if ev.text:
                    self.output_chars += len(ev.text)
                    out.append(self._chunk(w.Delta(content=ev.text)))
            elif isinstance(ev, ToolCallStart):
                call = w.ToolCallDelta(ev.index, ev.id, "function", w.FunctionDelta(ev.name, ""))
                out.append(self._chunk(w.Delta(tool_calls=[call])))
            elif isinstance(ev, ToolCallDelta):
                if ev.arguments:
                    self.output_chars += len(ev.arguments)
                    call = w.ToolCallDelta(ev.index, function=w.FunctionDelta(arguments=ev.arguments))
                    out.append(self._chunk(w.Delta(tool_calls=[call])))
            elif isinstance(ev, ThinkingDelta):
                if ev.text:
                    out.append(self._chunk(w.Delta(reasoning_content=ev.text)))
            elif isinstance(ev, FinishEvent):
                self._finish = ev.reason
            elif isinstance(ev, UsageEvent):
                self.usage = ev.usage
            elif isinstance(ev, AgentFieldsEvent):
                self._agent_fields.update(ev.fields)
        return b"".join(out)

    @staticmethod
    def error_event(err: GatewayError) -> bytes:
        return stream_error_event(err)

    def finish(self) -> bytes:
        """The finish chunk (with an agent app's own fields), the usage chunk when asked for, and [DONE]."""
        out = [] if self._started else [self.start()]
        finish = w.ChunkChoice(0, w.Delta(), self._finish or "stop")
        chunk = w.ChatCompletionChunk(self._id, self._created, self._model, [finish], **self._agent_fields)
        out.append(encode_sse(_encode.encode(chunk)))
        if self._include_usage and self.usage is not None:
            chunk = w.ChatCompletionChunk(self._id, self._created, self._model, [], usage=encode_usage(self.usage))
            out.append(encode_sse(_encode.encode(chunk)))
        out.append(b"data: [DONE]\n\n")
        return b"".join(out)


def stream_error_event(err: GatewayError) -> bytes:
    """An error inside a stream that already started: OpenAI sends an error object as a data event."""
    return encode_sse(openai_error_body(err))

