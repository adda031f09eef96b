"""OpenAI and OpenAI-compatible servers (vLLM, Ollama, llama.cpp server, ...).

These speak the gateway's own unified format, so requests from OpenAI-format callers take
the passthrough path: the body goes upstream with only ``model`` rewritten, and the
response bytes come back untouched. Callers in other formats, and fallbacks that cross
formats, take the IR path (``complete``, ``open_stream``, ``embed``), translated by
``openai_chat_translation``. A compatible vendor is data (base URL, headers), not code.
"""

from __future__ import annotations


import msgspec
from msgspec import UNSET
from yarl import URL

from gateway.config import ProviderConfig
from gateway.errors import UpstreamInvalidResponse
from gateway.ir import ChatRequest, ChatResult, EmbeddingResult, StreamEvent, Usage
from gateway.ir.result import estimate_tokens
from gateway.providers.base import Provider, ProviderStream, Target, decoded_stream
from gateway.providers.http import HttpClients, decode_json, read_body, send
from gateway.providers.openai_chat_translation import OpenAIChatStreamDecoder, decode_result, encode_request
from gateway.providers.upstream_client import UpstreamResponse
from gateway.streaming.passthrough import openai_usage
from gateway.wire import openai_embeddings as we

_encode = msgspec.json.Encoder()
_decode_embeddings = msgspec.json.Decoder(we.UpstreamEmbeddings)


class OpenAIProvider(Provider):
    """``base_url`` includes the version segment, as in the OpenAI SDK (``.../v1``)."""

    wire = "openai_chat"
    default_base_url = "https://api.openai.com/v1"

    def __init__(self, name: str, config: ProviderConfig, http: HttpClients) -> None:
        super().__init__(name, config, http)
        headers = {"content-type": "application/json", **self.config.headers}
        if self.config.api_key:
            headers["authorization"] = f"Bearer {self.config.api_key}"
        self._headers = headers
        self._urls: dict[str, URL] = {}
        # Only OpenAI (and Azure OpenAI) are known to take max_completion_tokens; compatible servers get max_tokens.
        self._max_completion_tokens = config.kind in ("openai", "azure_openai")
        #: Whether Responses requests pass through to ``/responses`` (compatible servers rarely
        #: serve it: they get Responses callers translated to Chat Completions).
        self.serves_responses = config.kind == "openai"

    def url(self, path: str, model: str) -> URL:
        """The upstream URL for an API path such as ``/chat/completions`` (``model`` is for
        transports that put it in the URL, as Azure's deployments do)."""
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = URL(self.base_url + path)
        return url

    async def passthrough(self, path: str, body: bytes, target: Target) -> UpstreamResponse:
        """POST the caller's (model-rewritten) body; returns the response once it is a success."""
        return await self._post(path, body, target)

    async def _post(self, path: str, body: bytes, target: Target) -> UpstreamResponse:
        url = self.url(path, target.model)
        return await send(
            self.session(url), "POST", url,
            provider=self.name, timeouts=target.timeouts, data=body, headers=self._headers,
        )

    def _chat_body(self, request: ChatRequest, target: Target, stream: bool) -> bytes:
        return encode_request(request, target.model, stream, max_completion_tokens=self._max_completion_tokens)

    async def complete(self, request: ChatRequest, target: Target) -> ChatResult:
        """One non-streaming turn, translated from and to the IR."""
        resp = await self._post("/chat/completions", self._chat_body(request, target, False), target)
        return decode_result(await read_body(resp, self.name), self.name)

    async def open_stream(self, request: ChatRequest, target: Target) -> ProviderStream[list[StreamEvent]]:
        """Start a streaming turn; returns once the upstream answered with a success status."""
        resp = await self._post("/chat/completions", self._chat_body(request, target, True), target)
        return decoded_stream(resp, self.name, OpenAIChatStreamDecoder(self.name))

    async def embed(self, inputs: list[str], target: Target, dimensions: int | None = None) -> EmbeddingResult:
        """Embed with ``/embeddings``; vectors come back in input order whatever order they arrive in."""
        body = we.EmbeddingsRequest(target.model, inputs, dimensions=dimensions if dimensions is not None else UNSET)
        resp = await self._post("/embeddings", _encode.encode(body), target)
        reply: we.UpstreamEmbeddings = decode_json(_decode_embeddings, await read_body(resp, self.name), self.name)
        data = sorted(reply.data, key=lambda e: e.index)
        if [e.index for e in data] != list(range(len(inputs))):
            raise UpstreamInvalidResponse(
                f"provider '{self.name}' returned {len(data)} embeddings that do not match {len(inputs)} inputs"
            )
        # Some compatible servers report zero or no usage; every non-empty input costs tokens.
        if reply.usage is not None and reply.usage.prompt_tokens:
            usage = openai_usage(reply.usage)
        else:
            usage = Usage(input_tokens=estimate_tokens(sum(map(len, inputs))), estimated=True)
        return EmbeddingResult([e.embedding for e in data], reply.model or target.model, usage)


class OpenAICompatibleProvider(OpenAIProvider):
    """Any Chat Completions server; ``base_url`` is required, ``api_key`` optional."""
