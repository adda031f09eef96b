"""OpenAI and OpenAI-compatible servers (vLLM, Ollama, llama.cpp server, ...).

These speak the gateway's own unified format, so requests from OpenAI-format callers take
the passthrough path: the body goes upstream with only ``model`` rewritten, and the
response bytes come back untouched. A compatible vendor is data (base URL, headers),
not code.
"""

from __future__ import annotations

import aiohttp
from yarl import URL

from gateway.config import ProviderConfig, Timeouts
from gateway.providers.base import Provider
from gateway.providers.http import HttpClients, send


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

    def url(self, path: str) -> URL:
        """The upstream URL for an API path such as ``/chat/completions``."""
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = URL(self.base_url + path)
        return url

    async def passthrough(self, path: str, body: bytes, timeouts: Timeouts) -> aiohttp.ClientResponse:
        """POST the caller's (model-rewritten) body; returns the response once it is a success."""
        url = self.url(path)
        return await send(
            self.session(url), "POST", url,
            provider=self.name, timeouts=timeouts, data=body, headers=self._headers,
        )


class OpenAICompatibleProvider(OpenAIProvider):
    """Any Chat Completions server; ``base_url`` is required, ``api_key`` optional."""
