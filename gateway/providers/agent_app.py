"""Agent apps: an upstream agent that serves OpenAI Responses (``/responses``, as MLflow's
agent server and Databricks Apps agents do) or Chat Completions (``/chat/completions``).

A caller in the app's own format is relayed (``relay``): its body goes as sent, agent fields
(``custom_inputs``, ``databricks_options``, ``context``) included, and the app's bytes come
back untouched, ``custom_outputs`` and traces included. A caller in another format is
translated through the IR, which carries the agent fields opaque both ways
(``openai_responses_translation`` or ``openai_chat_translation``).

The app is sent its own credentials from the configuration (``api_key`` as a bearer token,
or any ``headers``), never the caller's. An app that does not serve the path (404, 405)
is the configuration's fault: 502, not the 404 of an unknown app.
"""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType
from yarl import URL

from gateway.config import AgentAPI, ProviderConfig
from gateway.errors import BadRequest, UpstreamError, UpstreamInvalidResponse, UpstreamStatus
from gateway.ir import AGENT_RESULT_FIELDS, AgentFieldsEvent, ChatRequest, ChatResult, EmbeddingResult, StreamEvent
from gateway.providers import openai_chat_translation as chat
from gateway.providers import openai_responses_translation as responses
from gateway.providers.base import Provider, ProviderStream, Target, decoded_stream
from gateway.providers.http import HttpClients, read_body, send
from gateway.providers.upstream_client import UpstreamResponse

_PATHS: dict[AgentAPI, str] = {"responses": "/responses", "chat_completions": "/chat/completions"}


class _AgentFields(msgspec.Struct):
    custom_outputs: msgspec.Raw | UnsetType = UNSET
    databricks_output: msgspec.Raw | UnsetType = UNSET


_decode_fields = msgspec.json.Decoder(_AgentFields)
_MARKERS = tuple(f'"{name}"'.encode() for name in AGENT_RESULT_FIELDS)


def _fields_of(data: bytes, provider: str) -> dict[str, msgspec.Raw]:
    """The agent fields of a Chat Completions body or chunk, decoded only if named in it."""
    if not any(marker in data for marker in _MARKERS):
        return {}
    try:
        return responses.agent_fields_of(_decode_fields.decode(data))
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise UpstreamInvalidResponse(f"provider '{provider}' sent a response the gateway could not parse") from None


class _ChatAgentStreamDecoder(chat.OpenAIChatStreamDecoder):
    """Chat Completions chunks, plus the agent fields an app puts on them."""

    def _event(self, data: bytes, out: list[StreamEvent]) -> None:
        super()._event(data, out)
        if data != b"[DONE]" and (fields := _fields_of(data, self.provider)):
            out.append(AgentFieldsEvent(fields))


class AgentAppProvider(Provider):
    """``kind: agent_app``; ``api`` says what the app serves (default ``responses``)."""

    wire = "openai_responses"

    def __init__(self, name: str, config: ProviderConfig, http: HttpClients) -> None:
        super().__init__(name, config, http)
        self.api: AgentAPI = config.api or "responses"
        self.wire = "openai_chat" if self.api == "chat_completions" else "openai_responses"  # type: ignore[misc]
        self.path = _PATHS[self.api]
        self.url = URL(self.base_url + self.path)
        headers = {"content-type": "application/json", **config.headers}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key}"
        self._headers = headers

    async def post(self, body: bytes, target: Target) -> UpstreamResponse:
        """POST a body to the app; returns once it answered with a success status."""
        try:
            return await send(self.session(self.url), "POST", self.url, provider=self.name,
                              timeouts=target.timeouts, data=body, headers=self._headers)
        except UpstreamStatus as exc:
            if exc.upstream_status in (404, 405):
                raise UpstreamError(f"provider '{self.name}' does not serve POST {self.path} "
                                    f"(HTTP {exc.upstream_status}): check its base_url and api") from None
            raise

    def serves(self, api: AgentAPI) -> bool:
        """Whether a caller of ``api`` is relayed as it is."""
        return self.api == api

    async def complete(self, request: ChatRequest, target: Target) -> ChatResult:
        """One turn of a caller in the other format, translated to and from the app's."""
        if self.api == "responses":
            resp = await self.post(responses.encode_request(request, target.model, stream=False), target)
            return responses.decode_result(await read_body(resp, self.name), self.name)
        resp = await self.post(self._chat_body(request, target, stream=False), target)
        body = await read_body(resp, self.name)
        result = chat.decode_result(body, self.name)
        result.agent_fields = _fields_of(body, self.name)
        return result

    async def open_stream(self, request: ChatRequest, target: Target) -> ProviderStream[list[StreamEvent]]:
        """A streamed turn of a caller in the other format; returns once the app accepted it."""
        if self.api == "responses":
            resp = await self.post(responses.encode_request(request, target.model, stream=True), target)
            return decoded_stream(resp, self.name, responses.ResponsesStreamDecoder(self.name))
        resp = await self.post(self._chat_body(request, target, stream=True), target)
        return decoded_stream(resp, self.name, _ChatAgentStreamDecoder(self.name))

    async def embed(self, inputs: list[str], target: Target, dimensions: int | None = None) -> EmbeddingResult:
        """Agents answer turns; an embeddings endpoint served by one is refused, naming it."""
        raise BadRequest(f"provider '{self.name}' is an agent app and does not compute embeddings", param="model")

    @staticmethod
    def _chat_body(request: ChatRequest, target: Target, stream: bool) -> bytes:
        body = chat.encode_request(request, target.model, stream, max_completion_tokens=False)
        if not request.agent_fields:
            return body
        # The encoded body is one JSON object: the agent fields go in before its closing brace.
        extra = b"".join(b"," + msgspec.json.encode(k) + b":" + bytes(v) for k, v in request.agent_fields.items())
        return body[:-1] + extra + b"}"
