"""The one place a provider kind is looked up."""

from __future__ import annotations

from gateway.config import GatewayConfig
from gateway.providers.agent_app import AgentAppProvider
from gateway.providers.anthropic import AnthropicProvider
from gateway.providers.azure_openai import AzureOpenAIProvider
from gateway.providers.base import Provider
from gateway.providers.gemini import GeminiProvider
from gateway.providers.http import HttpClients
from gateway.providers.mock import MockProvider
from gateway.providers.openai import OpenAICompatibleProvider, OpenAIProvider

PROVIDERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "openai_compatible": OpenAICompatibleProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "azure_openai": AzureOpenAIProvider,
    "agent_app": AgentAppProvider,
    "mock": MockProvider,
}


def build_providers(config: GatewayConfig, http: HttpClients) -> dict[str, Provider]:
    """One adapter per configured provider, sharing the pooled HTTP sessions."""
    return {name: PROVIDERS[p.kind](name, p, http) for name, p in config.providers.items()}
