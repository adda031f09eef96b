"""OpenAI Responses as a client API: request -> IR, IR result and events -> Response and events.

Degradations, by design (a same-format OpenAI endpoint is passed through and loses nothing):
- ``reasoning`` input items are dropped: their ``encrypted_content`` only means something to
  OpenAI itself, and sending a foreign blob as another provider's signature gets a 400.
- Tools other than ``function`` (web_search, namespace, custom, local_shell, ...) are
  provider built-ins with no IR form: skipped, as are input items other than messages,
  function calls and their outputs (built-in tool calls, ``item_reference``).
- ``system``/``developer`` messages join ``instructions`` in the IR system list, in order but
  moved ahead of the conversation.
- Images and files inside a ``function_call_output`` are dropped (IR tool results are text);
  ``input_file``, ``input_audio`` and ``file_id`` images in messages are refused with a 400.
- ``reasoning``, ``include``, ``store``, ``metadata``, ``truncation`` and ``prompt_cache_key``
  are not translated; the Response echoes them back. A Gemini thought signature on a tool
  call has no place in a ``function_call`` item and is dropped.
- Logprobs (``top_logprobs``, ``include`` of ``message.output_text.logprobs``) are refused:
  the IR carries none, and an empty list would read as a model that had none.
- A request is decoded once (``decode_view``); the IR is made from that (``request_ir``).
  ``previous_response_id`` must be resolved by a state store, which hands ``request_ir``
  the whole conversation; without one it is refused rather than silently forgotten.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from msgspec import UNSET

from gateway.codecs.openai_chat import agent_fields, bad_request_from, function_parameters
from gateway.errors import BadRequest, GatewayError
from gateway.ir import (
    AGENT_REQUEST_FIELDS, AgentFieldsEvent, ChatRequest, ChatResult, FinishEvent, FinishReason, ImagePart, Message, Part, ResponseFormat,
    StreamEvent, TextDelta, TextPart, ThinkingDelta, ThinkingPart, ToolCallDelta, ToolCallPart,
    ToolCallStart, ToolChoice, ToolResultPart, ToolSpec, Usage, UsageEvent,
)
from gateway.streaming.sse import encode_sse
from gateway.wire import openai_responses as w

_decode_view = msgspec.json.Decoder(w.ResponsesRequestView)
# The settings the view keeps as the caller's JSON, read for the IR from their own bytes.
_decode_instructions = msgspec.json.Decoder(str | None)
_decode_tool_choice = msgspec.json.Decoder(Literal["auto", "none", "required"] | w.NamedToolChoice | None)
_decode_text = msgspec.json.Decoder(w.TextConfig | None)
_decode_reasoning = msgspec.json.Decoder(w.Reasoning | None)
_decode_metadata = msgspec.json.Decoder(dict[str, str] | None)
_decode_type = msgspec.json.Decoder(w.TypeView)
_decode_message = msgspec.json.Decoder(w.InputMessage)
_decode_call = msgspec.json.Decoder(w.FunctionCall)
_decode_call_output = msgspec.json.Decoder(w.FunctionCallOutput)
_decode_tool = msgspec.json.Decoder(w.FunctionTool)
_decode_fields = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encode = msgspec.json.Encoder()

_DEFAULT_ECHO = w.ResponseEcho()
_TEXT_TYPES = ("input_text", "output_text")


# ---- request -> IR -----------------------------------------------------------------------

def _decode_body(decoder: msgspec.json.Decoder[Any], body: bytes) -> Any:
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise bad_request_from(exc) from None


def decode_view(body: bytes) -> w.ResponsesRequestView:
    """The one decode of a request body: everything routing, the state store, the IR and the reply read."""
    return _decode_body(_decode_view, body)


_NULL_RAW = b"null"


def echo_of(view: w.ResponsesRequestView) -> w.ResponseEcho:
    """The settings a Response repeats back, with OpenAI's defaults where the request sent none (or ``null``)."""
    fields = {}
    for name in w.ResponseEcho.__struct_fields__:
        value = getattr(view, name)
        if value is None or (isinstance(value, msgspec.Raw) and bytes(value) == _NULL_RAW):
            value = getattr(_DEFAULT_ECHO, name)
        fields[name] = value
    return w.ResponseEcho(**fields)


def _decode_at(decoder: msgspec.json.Decoder[Any], raw: msgspec.Raw, where: str) -> Any:
    """Decode one item of the body, naming its place (``input[3].content[0].text``) in errors."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        problem, _, path = str(exc).partition(" - at `$")
        param = where + path.rstrip("`")
        raise BadRequest(f"Invalid request: {problem} - at `{param}`", param=param) from None


def _image(part: w.ContentPart, where: str) -> ImagePart:
    if not part.image_url:
        raise BadRequest(f"{where}: images by file_id can only be sent to OpenAI; use image_url",
                         param=f"{where}.image_url")
    url = part.image_url
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        if not sep or ";base64" not in header:
            raise BadRequest(f"{where}.image_url: data URLs must be base64: data:<media type>;base64,<data>",
                             param=f"{where}.image_url")
        return ImagePart(data=data, media_type=header.split(";", 1)[0] or "image/png", detail=part.detail)
    return ImagePart(url=url, detail=part.detail)


def _parts(content: str | list[w.ContentPart], where: str) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    parts: list[Part] = []
    for j, p in enumerate(content):
        at = f"{where}.content[{j}]"
        if p.type in _TEXT_TYPES or p.type == "refusal":
            text = p.refusal if p.type == "refusal" else p.text
            if isinstance(text, msgspec.UnsetType):
                field = "refusal" if p.type == "refusal" else "text"
                raise BadRequest(f"{at}: a {p.type} part needs {field}", param=f"{at}.{field}")
            parts.append(TextPart(text))
        elif p.type == "input_image":
            parts.append(_image(p, at))
        else:
            raise BadRequest(f"{at}: content of type '{p.type}' cannot be translated for this endpoint",
                             param=f"{at}.type")
    return tuple(parts)


def _plain_text(content: str | list[w.ContentPart]) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.text for p in content if p.type in _TEXT_TYPES and isinstance(p.text, str))


def _conversation(items: list[msgspec.Raw]) -> tuple[list[str], list[Message]]:
    system: list[str] = []
    messages: list[Message] = []
    names: dict[str, str] = {}  # call_id -> function name, for providers that want it on results
    for i, raw in enumerate(items):
        where = f"input[{i}]"
        kind = _decode_at(_decode_type, raw, where).type
        if kind == "message":
            m: w.InputMessage = _decode_at(_decode_message, raw, where)
            if m.role in ("system", "developer"):
                system.append(_plain_text(m.content))
            else:
                messages.append(Message(m.role, _parts(m.content, where)))  # type: ignore[arg-type]
        elif kind == "function_call":
            c: w.FunctionCall = _decode_at(_decode_call, raw, where)
            names[c.call_id] = c.name
            part = ToolCallPart(c.call_id, c.name, c.arguments)
            # A turn's text and all its calls are one assistant message in the IR.
            if messages and messages[-1].role == "assistant":
                messages[-1] = Message("assistant", (*messages[-1].parts, part))
            else:
                messages.append(Message("assistant", (part,)))
        elif kind == "function_call_output":
            o: w.FunctionCallOutput = _decode_at(_decode_call_output, raw, where)
            result = ToolResultPart(o.call_id, _plain_text(o.output), names.get(o.call_id))
            messages.append(Message("tool", (result,)))
        # Other item types (reasoning, item_reference, built-in tool calls) are skipped: see above.
    return system, messages


def _tools(raws: list[msgspec.Raw] | None) -> tuple[ToolSpec, ...]:
    specs: list[ToolSpec] = []
    for i, raw in enumerate(raws or ()):
        where = f"tools[{i}]"
        if _decode_at(_decode_type, raw, where).type != "function":
            continue  # a built-in tool: no IR form
        t: w.FunctionTool = _decode_at(_decode_tool, raw, where)
        specs.append(ToolSpec(t.name, t.description, function_parameters(t.parameters)))
    return tuple(specs)


def _allowed_tools(choice: w.NamedToolChoice, tools: tuple[ToolSpec, ...]) -> tuple[str, tuple[ToolSpec, ...]]:
    """An ``allowed_tools`` choice as a plain mode over the function tools it names."""
    if choice.mode not in ("auto", "required"):
        raise BadRequest("tool_choice of type allowed_tools needs a mode, auto or required", param="tool_choice.mode")
    allowed = {t.name for t in choice.tools or () if t.type == "function"}
    return choice.mode, tuple(t for t in tools if t.name in allowed)


def _tool_choice(choice: str | w.NamedToolChoice | None, tools: tuple[ToolSpec, ...]) -> ToolChoice | None:
    if choice is None or not tools:
        return None
    if isinstance(choice, str):
        return ToolChoice(choice)  # type: ignore[arg-type]
    if choice.type == "function":
        if not choice.name:
            raise BadRequest("tool_choice of type function needs a name", param="tool_choice.name")
        return ToolChoice("required", choice.name)
    return None  # a built-in tool: leave the choice to the model


def _response_format(text: w.TextConfig | None) -> ResponseFormat | None:
    fmt = text.format if text is not None else None
    if fmt is None:
        return None
    if fmt.type == "json_schema":
        if not isinstance(fmt.schema, msgspec.Raw):
            raise BadRequest("text.format of type json_schema needs a schema", param="text.format.schema")
        return ResponseFormat("json_schema", fmt.name, fmt.schema, fmt.strict)
    return ResponseFormat(fmt.type)


_LOGPROBS_INCLUDE = "message.output_text.logprobs"
_NO_LOGPROBS = "logprobs are only available from OpenAI-format providers, not from this endpoint's"


def decode_request(body: bytes) -> ChatRequest:
    """Validate a Responses request body and turn it into the IR."""
    return request_ir(decode_view(body))


def request_ir(view: w.ResponsesRequestView, conversation: Sequence[msgspec.Raw] | None = None) -> ChatRequest:
    """The IR of a decoded request.

    ``conversation`` is its whole input when a state store resolved ``previous_response_id``
    (the stored items, then ``own_items(view)``); without it such a request is refused.
    """
    if conversation is None:
        if view.previous_response_id is not None:
            # OpenAI's words: the id may have expired, been stored with store: false, or never existed.
            raise BadRequest(f"Previous response with id '{view.previous_response_id}' not found.",
                             param="previous_response_id")
        conversation = view.input
    if isinstance(conversation, str):
        system, messages = [], [Message("user", (TextPart(conversation),))]
    else:
        system, messages = _conversation(conversation)
    instructions: str | None = _decode_at(_decode_instructions, view.instructions, "instructions")
    if instructions:
        system.insert(0, instructions)
    if not messages:
        raise BadRequest("input must contain at least one message", param="input")
    if view.top_logprobs:  # see the module docstring
        raise BadRequest(_NO_LOGPROBS, param="top_logprobs")
    if _LOGPROBS_INCLUDE in (view.include or ()):
        raise BadRequest(_NO_LOGPROBS, param="include")
    # Not translated, but refused as OpenAI would refuse them (see the module docstring).
    _decode_at(_decode_reasoning, view.reasoning, "reasoning")
    _decode_at(_decode_metadata, view.metadata, "metadata")
    tools = _tools(view.tools)
    choice = _decode_at(_decode_tool_choice, view.tool_choice, "tool_choice")
    if isinstance(choice, w.NamedToolChoice) and choice.type == "allowed_tools":
        choice, tools = _allowed_tools(choice, tools)
    return ChatRequest(
        model=view.model,
        messages=tuple(messages),
        system=tuple(system),
        tools=tools,
        tool_choice=_tool_choice(choice, tools),
        parallel_tool_calls=view.parallel_tool_calls,
        temperature=view.temperature,
        top_p=view.top_p,
        max_tokens=view.max_output_tokens,
        response_format=_response_format(_decode_at(_decode_text, view.text, "text")),
        stream=bool(view.stream),
        include_usage=True,  # a Responses stream always ends with usage in response.completed
        user=view.user,
        agent_fields=agent_fields(view, AGENT_REQUEST_FIELDS),
    )


# ---- conversation state (for a store that implements previous_response_id) ---------------

def own_items(view: w.ResponsesRequestView) -> list[msgspec.Raw]:
    """The request's own ``input`` as raw items; a string input becomes one user message item."""
    if isinstance(view.input, str):
        return [msgspec.Raw(_encode.encode({"type": "message", "role": "user", "content": view.input}))]
    # Copied: a decoded Raw points into the whole body (tools, instructions), which a stored
    # turn would otherwise keep in memory for as long as it is kept.
    return [item.copy() for item in view.input]


def expand_input(body: bytes, conversation: Sequence[msgspec.Raw]) -> bytes:
    """The request body with ``conversation`` as its ``input`` and no ``previous_response_id``,
    for a provider that takes the caller's bytes (OpenAI itself); every other field is kept
    byte for byte. Only the body's top level is parsed: the items are copied as they are.
    """
    fields: dict[str, msgspec.Raw] = _decode_body(_decode_fields, body)
    fields["input"] = msgspec.Raw(_encode.encode(list(conversation)))
    fields.pop("previous_response_id", None)
    return _encode.encode(fields)


# ---- IR result -> Response ---------------------------------------------------------------

def _item_id(prefix: str, response_id: str, index: int) -> str:
    # Derived from the response id, so encode_result and output_items agree with no shared state.
    return f"{prefix}_{response_id.removeprefix('resp_')}_{index}"


def _reasoning_item(item_id: str, text: str, signature: str | None) -> w.ReasoningItem:
    # Another provider's thinking signature rides in encrypted_content, the field clients echo back.
    return w.ReasoningItem(item_id, [], [w.ReasoningText(text)], signature if signature is not None else UNSET)


def _result_items(result: ChatResult, response_id: str) -> list[w.OutputItem]:
    items: list[w.OutputItem] = []
    text: list[str] = []
    for part in (*result.parts, None):
        if isinstance(part, TextPart):
            text.append(part.text)
            continue
        if text:
            items.append(w.OutputMessage(_item_id("msg", response_id, len(items)), "completed",
                                         [w.OutputText("".join(text))]))
            text = []
        if isinstance(part, ThinkingPart):
            items.append(_reasoning_item(_item_id("rs", response_id, len(items)), part.text, part.signature))
        elif isinstance(part, ToolCallPart):
            items.append(w.FunctionCall(part.id, part.name, part.arguments,
                                        id=_item_id("fc", response_id, len(items)), status="completed"))
    return items


def encode_usage(usage: Usage) -> w.Usage:
    """IR usage as Responses usage (input_tokens include cached ones, as OpenAI counts them)."""
    return w.Usage(
        input_tokens=usage.input_tokens,
        input_tokens_details=w.InputTokensDetails(usage.cache_read_tokens, usage.cache_write_tokens),
        output_tokens=usage.output_tokens,
        output_tokens_details=w.OutputTokensDetails(usage.reasoning_tokens),
        total_tokens=usage.total_tokens,
    )


_INCOMPLETE_REASONS: dict[str, str] = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _response(response_id: str, model: str, created: int, status: str, output: list[w.OutputItem],
              usage: Usage | None, echo: w.ResponseEcho | None, finish: FinishReason | None = None,
              error: w.ResponseError | None = None, agent: dict[str, msgspec.Raw] | None = None) -> w.Response:
    reason = _INCOMPLETE_REASONS.get(finish or "")
    return w.Response(
        **msgspec.structs.asdict(echo or _DEFAULT_ECHO),
        id=response_id, created_at=created, model=model, status=status, output=output,
        usage=encode_usage(usage) if usage is not None else None, error=error,
        incomplete_details=w.IncompleteDetails(reason) if reason else None,
        **(agent or {}),
    )


def _status(finish: FinishReason | None) -> str:
    return "incomplete" if finish in _INCOMPLETE_REASONS else "completed"


def encode_result(result: ChatResult, model: str, response_id: str, echo: w.ResponseEcho | None = None) -> bytes:
    """A ChatResult as a Response object; ``model`` is the endpoint name the caller used.

    ``echo`` (from ``echo_of``) fills the request settings a Response repeats back.
    """
    output = _result_items(result, response_id)
    body = _response(response_id, model, result.created or int(time.time()), _status(result.finish_reason),
                     output, result.usage, echo, result.finish_reason, agent=result.agent_fields)
    return _encode.encode(body)


def output_items(result: ChatResult, response_id: str) -> list[msgspec.Raw]:
    """The output items ``encode_result`` sends for this result, as raw JSON for a state store."""
    return [msgspec.Raw(_encode.encode(item)) for item in _result_items(result, response_id)]


# ---- IR stream -> Responses events -------------------------------------------------------

class _Item:
    """An output item being streamed: a message, a reasoning item or a function call."""

    __slots__ = ("index", "id", "kind", "chunks", "call_id", "name", "signature")

    def __init__(self, index: int, item_id: str, kind: str, call_id: str = "", name: str = "") -> None:
        self.index = index
        self.id = item_id
        self.kind = kind
        self.chunks: list[str] = []
        self.call_id = call_id
        self.name = name
        self.signature: str | None = None

    def snapshot(self, done: bool) -> w.OutputItem:
        """The item as ``output_item.added`` (empty, in progress) or ``.done`` shows it."""
        text = "".join(self.chunks)
        status = "completed" if done else "in_progress"
        if self.kind == "message":
            return w.OutputMessage(self.id, status, [w.OutputText(text)] if done else [])
        if self.kind == "reasoning":
            return _reasoning_item(self.id, text, self.signature) if done else w.ReasoningItem(self.id, [])
        return w.FunctionCall(self.call_id, self.name, text, id=self.id, status=status)


_ITEM_PREFIXES = {"message": "msg", "reasoning": "rs", "function_call": "fc"}
# response.failed carries a code from a closed list; the `error` event before it has ours.
_FAILED_CODES = {"rate_limit": "rate_limit_exceeded", "invalid_request": "invalid_prompt",
                 "too_large": "invalid_prompt"}


class ResponsesStreamEncoder:
    """IR stream events -> Responses SSE events, each with ``event:`` and a ``sequence_number``.

    Text and reasoning are one open item at a time; a different kind of content closes it.
    Tool calls get an item each at their start and stay open until the end, so parallel
    calls whose deltas interleave (addressed by IR index) land in their own items.
    ``result_items`` holds the final output items once ``finish()`` ran, for a state store.
    """

    def __init__(self, response_id: str, model: str, echo: w.ResponseEcho | None = None) -> None:
        self._id = response_id
        self._model = model
        self._echo = echo
        self._created = int(time.time())
        self._seq = 0
        self._started = False
        self._items: list[_Item] = []
        self._current: _Item | None = None  # the open message or reasoning item
        self._calls: dict[int, _Item] = {}  # IR tool-call index -> its open item
        self._finish: FinishReason | None = None
        self._agent_fields: dict[str, msgspec.Raw] = {}  # an agent app's, for the final response
        self.usage: Usage | None = None
        self.output_chars = 0
        self.result_items: list[msgspec.Raw] = []

    def _emit(self, out: list[bytes], event: type, kind: str, **fields: Any) -> None:
        out.append(encode_sse(_encode.encode(event(type=kind, sequence_number=self._seq, **fields)), kind))
        self._seq += 1

    def _lifecycle(self, out: list[bytes], kind: str, status: str, output: list[w.OutputItem],
                   error: w.ResponseError | None = None) -> None:
        final = status != "in_progress"
        response = _response(self._id, self._model, self._created, status, output,
                             self.usage if final else None, self._echo, self._finish if final else None, error,
                             self._agent_fields if final else None)
        self._emit(out, w.ResponseEvent, kind, response=response)

    def start(self) -> bytes:
        """response.created and response.in_progress, which every Responses stream opens with."""
        self._started = True
        out: list[bytes] = []
        self._lifecycle(out, "response.created", "in_progress", [])
        self._lifecycle(out, "response.in_progress", "in_progress", [])
        return b"".join(out)

    def _open(self, out: list[bytes], kind: str, call_id: str = "", name: str = "") -> _Item:
        index = len(self._items)
        item = _Item(index, _item_id(_ITEM_PREFIXES[kind], self._id, index), kind, call_id, name)
        self._items.append(item)
        self._emit(out, w.OutputItemEvent, "response.output_item.added", output_index=index,
                   item=item.snapshot(False))
        if kind != "function_call":
            part = w.OutputText("") if kind == "message" else w.ReasoningText("")
            self._emit(out, w.ContentPartEvent, "response.content_part.added",
                       item_id=item.id, output_index=index, content_index=0, part=part)
        return item

    def _close(self, out: list[bytes], item: _Item) -> None:
        text = "".join(item.chunks)
        at = {"item_id": item.id, "output_index": item.index}
        if item.kind == "function_call":
            self._emit(out, w.ArgumentsDoneEvent, "response.function_call_arguments.done", arguments=text,
                       name=item.name, **at)
        else:
            message = item.kind == "message"
            self._emit(out, w.TextDoneEvent, "response.output_text.done" if message else "response.reasoning_text.done",
                       content_index=0, text=text, logprobs=[] if message else UNSET, **at)
            self._emit(out, w.ContentPartEvent, "response.content_part.done", content_index=0,
                       part=w.OutputText(text) if message else w.ReasoningText(text), **at)
        self._emit(out, w.OutputItemEvent, "response.output_item.done", output_index=item.index,
                   item=item.snapshot(True))

    def _close_current(self, out: list[bytes]) -> None:
        if self._current is not None:
            self._close(out, self._current)
            self._current = None

    def _text(self, out: list[bytes], text: str) -> None:
        item = self._current
        if item is None or item.kind != "message":
            self._close_current(out)
            item = self._current = self._open(out, "message")
        item.chunks.append(text)
        self.output_chars += len(text)
        self._emit(out, w.TextDeltaEvent, "response.output_text.delta", item_id=item.id,
                   output_index=item.index, content_index=0, delta=text, logprobs=[])

    def _thinking(self, out: list[bytes], ev: ThinkingDelta) -> None:
        item = self._current
        # A signature ends a thinking block: anything after it is a new reasoning item.
        if item is None or item.kind != "reasoning" or item.signature is not None:
            self._close_current(out)
            item = self._current = self._open(out, "reasoning")
        if ev.text:
            item.chunks.append(ev.text)
            self.output_chars += len(ev.text)
            self._emit(out, w.TextDeltaEvent, "response.reasoning_text.delta", item_id=item.id,
                       output_index=item.index, content_index=0, delta=ev.text)
        if ev.signature is not None:
            item.signature = ev.signature

    def _arguments(self, out: list[bytes], ev: ToolCallDelta) -> None:
        item = self._calls.get(ev.index)
        if item is None:
            return  # a delta for a call that never started has no item to belong to
        item.chunks.append(ev.arguments)
        self.output_chars += len(ev.arguments)
        self._emit(out, w.ArgumentsDeltaEvent, "response.function_call_arguments.delta",
                   item_id=item.id, output_index=item.index, delta=ev.arguments)

    def encode(self, events: list[StreamEvent]) -> bytes:
        """The SSE bytes for a batch of IR events (opening the stream on the first call)."""
        out: list[bytes] = [] if self._started else [self.start()]
        for ev in events:
            if isinstance(ev, TextDelta):
                if ev.text:
                    self._text(out, ev.text)
            elif isinstance(ev, ThinkingDelta):
                if ev.text or ev.signature is not None:
                    self._thinking(out, ev)
            elif isinstance(ev, ToolCallStart):
                self._close_current(out)
                self._calls[ev.index] = self._open(out, "function_call", ev.id, ev.name)
            elif isinstance(ev, ToolCallDelta):
                if ev.arguments:
                    self._arguments(out, ev)
            elif isinstance(ev, FinishEvent):
                self._finish = ev.reason
            elif isinstance(ev, UsageEvent):
                self.usage = ev.usage
            elif isinstance(ev, AgentFieldsEvent):
                self._agent_fields.update(ev.fields)
        return b"".join(out)

    def finish(self) -> bytes:
        """Close every open item, then response.completed (or response.incomplete) with usage."""
        out: list[bytes] = [] if self._started else [self.start()]
        self._close_current(out)
        for item in self._calls.values():  # insertion order is output_index order
            self._close(out, item)
        self._calls.clear()
        output = [item.snapshot(True) for item in self._items]
        status = _status(self._finish)
        self._lifecycle(out, f"response.{status}", status, output)
        self.result_items = [msgspec.Raw(_encode.encode(item)) for item in output]
        return b"".join(out)

    def error_event(self, err: GatewayError) -> bytes:
        """An error after the stream started: an ``error`` event, then ``response.failed``.

        Pass this bound method where a stream relay wants ``error_event``: unlike the module
        function it knows the sequence number, and clients that wait for a terminal event
        (Codex) see the response end.
        """
        out: list[bytes] = [] if self._started else [self.start()]
        self._emit(out, w.ErrorEvent, "error", message=err.message, code=err.code, param=err.param)
        error = w.ResponseError(_FAILED_CODES.get(err.kind, "server_error"), err.message)
        self._lifecycle(out, "response.failed", "failed", [], error)
        return b"".join(out)


def stream_error_event(err: GatewayError, sequence_number: int = 0) -> bytes:
    """An ``error`` event for a stream whose sequence is unknown (a relayed OpenAI stream)."""
    event = w.ErrorEvent("error", sequence_number, err.message, err.code, err.param)
    return encode_sse(_encode.encode(event), "error")
