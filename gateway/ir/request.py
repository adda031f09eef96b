"""A chat request in the gateway's own terms, independent of any wire format.

Messages are lists of typed parts. Roles are ``user``, ``assistant`` and ``tool``
(a tool message carries ``ToolResultPart``s); system instructions live apart in
``ChatRequest.system`` because every provider format but OpenAI's keeps them apart.
Optional sampling fields use ``None`` for "not given", so an encoder never sends a
value the caller did not set.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class TextPart(msgspec.Struct, tag="text", frozen=True):
    text: str


class ImagePart(msgspec.Struct, tag="image", frozen=True):
    """An image by URL, or inline as base64 ``data`` with its ``media_type``."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None


class ToolCallPart(msgspec.Struct, tag="tool_call", frozen=True):
    """A call the model made; ``arguments`` is the JSON text of the arguments object.

    ``signature`` carries a provider's opaque token for the call (Gemini's thoughtSignature).
    """

    id: str
    name: str
    arguments: str
    signature: str | None = None


class ToolResultPart(msgspec.Struct, tag="tool_result", frozen=True):
    tool_call_id: str
    content: str
    name: str | None = None
    is_error: bool = False


class ThinkingPart(msgspec.Struct, tag="thinking", frozen=True):
    """Model reasoning; ``signature`` must go back to the same provider unmodified."""

    text: str
    signature: str | None = None


Part = TextPart | ImagePart | ToolCallPart | ToolResultPart | ThinkingPart


class Message(msgspec.Struct, frozen=True):
    role: Literal["user", "assistant", "tool"]
    parts: tuple[Part, ...]


class ToolSpec(msgspec.Struct, frozen=True):
    """A function the model may call; ``parameters`` is a JSON Schema object (raw JSON)."""

    name: str
    description: str | None = None
    parameters: msgspec.Raw | None = None


class ToolChoice(msgspec.Struct, frozen=True):
    """``mode`` is auto, none or required; ``name`` forces one function (mode required)."""

    mode: Literal["auto", "none", "required"] = "auto"
    name: str | None = None


class ResponseFormat(msgspec.Struct, frozen=True):
    """``type`` is text, json_object or json_schema; ``schema`` is raw JSON Schema."""

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema: msgspec.Raw | None = None
    strict: bool | None = None


#: Top-level fields of the agent frameworks' requests and replies that no model API has
#: (Databricks agents, MLflow's ResponsesAgent and ChatAgent). Client codecs carry them
#: opaque, by name, to an agent app; no other provider is sent them.
AGENT_REQUEST_FIELDS = ("custom_inputs", "databricks_options", "context")
AGENT_RESULT_FIELDS = ("custom_outputs", "databricks_output")


class ChatRequest(msgspec.Struct, frozen=True):
    """What the caller asked for. ``model`` is the gateway endpoint name."""

    model: str
    messages: tuple[Message, ...]
    system: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    response_format: ResponseFormat | None = None
    stream: bool = False
    include_usage: bool = False
    user: str | None = None
    agent_fields: dict[str, msgspec.Raw] = {}  # AGENT_REQUEST_FIELDS the caller sent, as sent

    def prompt_chars(self) -> int:
        """Characters of prompt text, for token estimates when a provider reports none."""
        n = sum(len(s) for s in self.system)
        for message in self.messages:
            for part in message.parts:
                if isinstance(part, TextPart):
                    n += len(part.text)
                elif isinstance(part, ToolResultPart):
                    n += len(part.content)
                elif isinstance(part, ToolCallPart):
                    n += len(part.arguments)
        return n
