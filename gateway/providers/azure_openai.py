"""Azure OpenAI: OpenAI's formats behind Azure's URLs and keys.

Two URL shapes, picked by ``api_version``:

- a dated version (default ``2024-10-21``, the GA one): ``{base_url}/openai/deployments/
  {deployment}/chat/completions?api-version=...`` and ``.../embeddings``; the served entity's
  ``model`` is the deployment name, which Azure reads from the path;
- ``v1``: the version-less API, ``{base_url}/openai/v1/chat/completions``, ``/embeddings``
  and ``/responses``, with the deployment name as the body's ``model``.

``base_url`` is the resource endpoint (``https://<resource>.openai.azure.com``). A key goes
in the ``api-key`` header; a Microsoft Entra ID token instead goes in
``headers: {Authorization: "Bearer ..."}``. Azure speaks OpenAI's wire format, so everything
else (passthrough of OpenAI-format callers, translation for the rest, error mapping) is the
OpenAI adapter's; Azure's ``content_filter`` refusals become ``ContentFiltered`` in
``providers/http.py``.
"""

from __future__ import annotations

from yarl import URL

from gateway.config import ProviderConfig
from gateway.providers.http import HttpClients
from gateway.providers.openai import OpenAIProvider

#: The newest generally available dated version when this was written.
DEFAULT_API_VERSION = "2024-10-21"
V1 = "v1"


class AzureOpenAIProvider(OpenAIProvider):
    """``kind: azure_openai``."""

    def __init__(self, name: str, config: ProviderConfig, http: HttpClients) -> None:
        super().__init__(name, config, http)
        # The resource endpoint, forgiving a copied ".../openai" or ".../openai/v1".
        self.base_url = self.base_url.removesuffix("/v1").removesuffix("/openai")
        self.api_version = config.api_version or DEFAULT_API_VERSION
        headers = {"content-type": "application/json", **config.headers}
        if config.api_key:
            headers["api-key"] = config.api_key
        self._headers = headers
        self._deployment_urls: dict[tuple[str, str], URL] = {}
        # Responses is served by the v1 API; with a dated version it is translated to Chat Completions.
        self.serves_responses = self.api_version == V1

    def url(self, path: str, model: str) -> URL:
        """``path`` (``/chat/completions``, ``/embeddings``, ``/responses``) for deployment ``model``."""
        key = (path, model)
        url = self._deployment_urls.get(key)
        if url is None:
            if self.api_version == V1:
                url = URL(f"{self.base_url}/openai/v1{path}")
            else:
                url = URL(f"{self.base_url}/openai/deployments/{model}{path}").with_query(
                    {"api-version": self.api_version})
            self._deployment_urls[key] = url
        return url
