"""The text of a request body, per client API: read for the input guardrails, and rewritten
when one of them masks.

Reading decodes a small view of the body that names only the fields holding text (message
contents and text parts, tool-call arguments, tool results, system prompts), so images and
tool schemas are skipped, not copied. What a caller sends counts as input: the system
prompt and the whole conversation as sent, not only the last message. The model's own
reasoning blocks passed back (Anthropic thinking) are not read: they are signed, and a
masked one would be refused by the provider.

Rewriting keeps the body as it came but for the fields that hold the texts a check
changed: only those top-level fields are decoded, each text that changed is replaced
where it stands, and every other byte is forwarded as the caller sent it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from gateway.errors import BadRequest

_fields = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encode = msgspec.json.Encoder()


def string_leaves(node: Any, out: list[str]) -> None:
    """Every string value in a decoded JSON value (tool arguments given as objects)."""
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, dict):
        for value in node.values():
            string_leaves(value, out)
    elif isinstance(node, list):
        for value in node:
            string_leaves(value, out)


def _replaced(node: Any, changes: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return changes.get(node, node)
    if isinstance(node, dict):
        return {key: _replaced(value, changes) for key, value in node.items()}
    if isinstance(node, list):
        return [_replaced(value, changes) for value in node]
    return node


class RequestTexts:
    """How one client API's request body holds its text."""

    __slots__ = ("_decoder", "_texts", "fields")

    def __init__(self, view: type, texts: Callable[[Any], list[str]], fields: tuple[str, ...]) -> None:
        self._decoder = msgspec.json.Decoder(view)
        self._texts = texts
        #: The top-level fields that hold every text ``read`` returns.
        self.fields = fields

    def read(self, body: bytes) -> list[str]:
        """The body's texts, in order; a body whose text fields have another shape is refused,
        since what cannot be read cannot be checked."""
        try:
            return self._texts(self._decoder.decode(body))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise BadRequest(f"The request's messages could not be read for the endpoint's guardrails: {exc}") from None

    def rewrite(self, body: bytes, changes: Mapping[str, str]) -> bytes:
        """``body`` with each text in ``changes`` (old -> new) replaced, other bytes kept."""
        fields = _fields.decode(body)
        for name in self.fields:
            raw = fields.get(name)
            if raw is not None:
                fields[name] = msgspec.Raw(_encode.encode(_replaced(msgspec.json.decode(raw), changes)))
        return _encode.encode(fields)


class _Text(msgspec.Struct):
    """A content part; parts without text (images, audio, files) leave it None."""

    text: str | None = None


def _part_texts(content: str | list[_Text] | _Text | None, out: list[str]) -> None:
    if isinstance(content, str):
        out.append(content)
    elif isinstance(content, list):
        out.extend(p.text for p in content if p.text)
    elif content is not None and content.text:
        out.append(content.text)


# ---- OpenAI Chat Completions (also /serving-endpoints invocations with messages) ----------

class _Function(msgspec.Struct):
    arguments: str | None = None


class _ToolCall(msgspec.Struct):
    function: _Function | None = None


class _ChatMessage(msgspec.Struct):
    content: str | list[_Text] | None = None
    tool_calls: list[_ToolCall] | None = None
    function_call: _Function | None = None


class _ChatBody(msgspec.Struct):
    messages: list[_ChatMessage] = []


def _chat_texts(body: _ChatBody) -> list[str]:
    out: list[str] = []
    for m in body.messages:
        _part_texts(m.content, out)
        calls = [c.function for c in m.tool_calls or () if c.function is not None]
        if m.function_call is not None:
            calls.append(m.function_call)
        out.extend(f.arguments for f in calls if f.arguments)
    return out


OPENAI_CHAT = RequestTexts(_ChatBody, _chat_texts, ("messages",))


# ---- OpenAI Responses --------------------------------------------------------------------

class _ResponsesItem(msgspec.Struct):
    content: str | list[_Text] | None = None  # a message
    arguments: str | None = None  # a function call
    output: str | list[_Text] | _Text | None = None  # a function call's output


class _ResponsesBody(msgspec.Struct):
    input: str | list[_ResponsesItem] = ""
    instructions: str | None = None


def _responses_texts(body: _ResponsesBody) -> list[str]:
    out = [body.instructions] if body.instructions else []
    if isinstance(body.input, str):
        out.append(body.input)
        return out
    for item in body.input:
        _part_texts(item.content, out)
        if item.arguments:
            out.append(item.arguments)
        _part_texts(item.output, out)
    return out


OPENAI_RESPONSES = RequestTexts(_ResponsesBody, _responses_texts, ("input", "instructions"))


# ---- Anthropic Messages ------------------------------------------------------------------

class _DocumentSource(msgspec.Struct):
    type: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")  # base64 for a PDF: decoded only for a plain-text document


class _Block(msgspec.Struct):
    type: str = ""
    text: str | None = None  # text
    input: Any = None  # tool_use: an object
    content: str | list[_Block] | _Block | None = None  # tool_result, search results
    source: _DocumentSource | None = None  # document


class _AnthropicMessage(msgspec.Struct):
    content: str | list[_Block] = ""


class _AnthropicBody(msgspec.Struct):
    system: str | list[_Block] | None = None
    messages: list[_AnthropicMessage] = []


def _block_texts(content: str | list[_Block] | _Block | None, out: list[str]) -> None:
    if isinstance(content, str):
        out.append(content)
        return
    for block in content if isinstance(content, list) else (content,) if content is not None else ():
        if block.type in ("thinking", "redacted_thinking"):
            continue
        if block.text:
            out.append(block.text)
        if block.input is not None:
            string_leaves(block.input, out)
        _block_texts(block.content, out)
        if block.source is not None and block.source.type == "text" and block.source.data:
            string_leaves(msgspec.json.decode(block.source.data), out)


def _anthropic_texts(body: _AnthropicBody) -> list[str]:
    out: list[str] = []
    _block_texts(body.system, out)
    for m in body.messages:
        _block_texts(m.content, out)
    return out


ANTHROPIC = RequestTexts(_AnthropicBody, _anthropic_texts, ("system", "messages"))


# ---- Gemini generateContent (camelCase, or the snake_case the REST API also takes) --------

class _FunctionCall(msgspec.Struct):
    args: Any = None


class _FunctionResponse(msgspec.Struct):
    response: Any = None


class _GeminiPart(msgspec.Struct):
    text: str | None = None
    functionCall: _FunctionCall | None = None  # noqa: N815 - Gemini's field names
    function_call: _FunctionCall | None = None
    functionResponse: _FunctionResponse | None = None  # noqa: N815
    function_response: _FunctionResponse | None = None


class _GeminiContent(msgspec.Struct):
    parts: list[_GeminiPart] = []


class _GeminiBody(msgspec.Struct):
    contents: list[_GeminiContent] = []
    systemInstruction: _GeminiContent | None = None  # noqa: N815
    system_instruction: _GeminiContent | None = None


def _gemini_texts(body: _GeminiBody) -> list[str]:
    out: list[str] = []
    contents = [c for c in (body.systemInstruction, body.system_instruction) if c is not None] + body.contents
    for content in contents:
        for part in content.parts:
            if part.text:
                out.append(part.text)
            for call in (part.functionCall, part.function_call):
                if call is not None:
                    string_leaves(call.args, out)
            for response in (part.functionResponse, part.function_response):
                if response is not None:
                    string_leaves(response.response, out)
    return out


GEMINI = RequestTexts(_GeminiBody, _gemini_texts, ("contents", "systemInstruction", "system_instruction"))


# ---- completions (/serving-endpoints invocations with a prompt) --------------------------

class _CompletionBody(msgspec.Struct):
    prompt: str | list[str] = ""


def _completion_texts(body: _CompletionBody) -> list[str]:
    return [body.prompt] if isinstance(body.prompt, str) else list(body.prompt)


COMPLETIONS = RequestTexts(_CompletionBody, _completion_texts, ("prompt",))
