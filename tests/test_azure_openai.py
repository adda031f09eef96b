"""The azure_openai provider kind through the gateway over real HTTP, with the openai and
anthropic SDKs, against a fake Azure OpenAI that records what it got."""

from __future__ import annotations

import json

import aiohttp
import anthropic
import openai
import pytest

from gateway.config import ConfigError, parse_config
from tests.agent_upstreams import AZURE_KEY, azure_app, sse_data
from tests.conftest import TOKEN
from tests.upstreams import Recorder

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def azure(make_gateway, aiohttp_server):  # type: ignore[no-untyped-def]
    """A gateway with Azure on the deployments URLs (``dated``), on the v1 API (``v1``), and
    with an Entra token (``entra``)."""
    rec = Recorder()
    url = str((await aiohttp_server(azure_app(rec))).make_url("")).rstrip("/")
    gw = await make_gateway(
        {"dated": {"kind": "azure_openai", "base_url": url, "api_key": AZURE_KEY},
         "v1": {"kind": "azure_openai", "base_url": url + "/openai/v1", "api_key": AZURE_KEY, "api_version": "v1"},
         "entra": {"kind": "azure_openai", "base_url": url, "api_version": "2025-04-01-preview",
                   "headers": {"Authorization": "Bearer entra-tok"}},
         "backup": {"kind": "mock"}},
        [{"name": "az", "served_entities": [{"provider": "dated", "model": "gpt4o-prod"}]},
         {"name": "az-v1", "served_entities": [{"provider": "v1", "model": "gpt4o-prod"}]},
         {"name": "az-entra", "served_entities": [{"provider": "entra", "model": "gpt4o-prod"}]},
         {"name": "az-embed", "task": "embeddings", "served_entities": [{"provider": "dated", "model": "embed-prod"}]},
         {"name": "az-filtered", "served_entities": [{"provider": "dated", "model": "filtered"}],
          "fallbacks": [{"provider": "backup", "model": "echo"}]},
         {"name": "az-429", "served_entities": [{"provider": "dated", "model": "fail-429"}]}],
    )
    return gw, rec


def client(gw) -> openai.AsyncOpenAI:  # type: ignore[no-untyped-def]
    return openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)


def headers_of(request: dict) -> dict[str, str]:
    return {k.lower(): v for k, v in request["headers"].items()}


async def test_chat_goes_to_the_deployment_url_with_the_api_key_and_passes_through(azure):
    gw, rec = azure
    reply = await client(gw).chat.completions.create(model="az", messages=HI, temperature=0.1)
    sent = rec.last
    assert sent["path"] == "/openai/deployments/gpt4o-prod/chat/completions"
    assert sent["query"] == {"api-version": "2024-10-21"}
    headers = headers_of(sent)
    assert headers["api-key"] == AZURE_KEY and "authorization" not in headers
    assert TOKEN not in json.dumps(sent)
    assert sent["body"] == {"model": "gpt4o-prod", "messages": HI, "temperature": 0.1}
    assert reply.choices[0].message.content == "Hello from Azure"
    # Passed through: Azure's own fields reach the caller.
    assert (reply.model_extra or {})["prompt_filter_results"][0]["prompt_index"] == 0
    row = (await gw.usage_rows(1))[-1]
    assert (row["endpoint"], row["provider"], row["provider_model"]) == ("az", "dated", "gpt4o-prod")
    assert (row["input_tokens"], row["output_tokens"]) == (9, 4)


async def test_a_stream_is_relayed_as_azure_sent_it_with_usage_recorded(azure):
    gw, rec = azure
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url("/mlflow/v1/chat/completions"), headers={"Authorization": f"Bearer {TOKEN}"},
                          json={"model": "az", "messages": HI, "stream": True}) as r:
            raw = await r.read()
    events = sse_data(raw)
    assert events[0]["prompt_filter_results"] and events[0]["choices"] == []  # Azure's opening chunk, relayed
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[1:-1] if isinstance(e, dict)
                   and e["choices"]) == "Hello from Azure"
    assert events[-1] == "[DONE]" and not any(isinstance(e, dict) and e.get("usage") for e in events)
    assert rec.last["body"]["stream_options"] == {"include_usage": True}  # asked for, and hidden from the caller
    row = (await gw.usage_rows(1))[-1]
    assert (row["input_tokens"], row["output_tokens"], row["tokens_estimated"]) == (9, 4, 0)


async def test_embeddings_go_to_the_deployments_embeddings_url(azure):
    gw, rec = azure
    reply = await client(gw).embeddings.create(model="az-embed", input=["a", "b"])
    assert [d.embedding for d in reply.data] == [[0.1, 0.2], [0.1, 0.2]]
    assert rec.last["path"] == "/openai/deployments/embed-prod/embeddings"
    assert rec.last["query"] == {"api-version": "2024-10-21"}


async def test_the_v1_api_takes_the_deployment_as_model_and_passes_responses_through(azure):
    gw, rec = azure
    await client(gw).chat.completions.create(model="az-v1", messages=HI)
    assert rec.last["path"] == "/openai/v1/chat/completions" and rec.last["query"] == {}
    assert rec.last["body"]["model"] == "gpt4o-prod"
    reply = await client(gw).responses.create(model="az-v1", input="hi")
    assert rec.last["path"] == "/openai/v1/responses" and rec.last["body"] == {"model": "gpt4o-prod", "input": "hi"}
    assert reply.id == "resp_az" and reply.output_text == "Hello from Azure Responses"


async def test_responses_to_a_dated_version_are_translated_to_chat_completions(azure):
    gw, rec = azure
    reply = await client(gw).responses.create(model="az", input="hi")
    assert rec.last["path"] == "/openai/deployments/gpt4o-prod/chat/completions"
    assert reply.output_text == "Hello from Azure"


async def test_an_entra_token_is_sent_as_bearer_with_the_configured_version(azure):
    gw, rec = azure
    await client(gw).chat.completions.create(model="az-entra", messages=HI)
    headers = headers_of(rec.last)
    assert headers["authorization"] == "Bearer entra-tok" and "api-key" not in headers
    assert rec.last["query"] == {"api-version": "2025-04-01-preview"}


async def test_a_content_filter_refusal_is_a_final_400_naming_the_filtered_categories(azure):
    gw, rec = azure
    with pytest.raises(openai.BadRequestError) as err:
        await client(gw).chat.completions.create(model="az-filtered", messages=HI)
    body = err.value.body
    assert body["code"] == "content_filter"
    assert "content management policy" in body["message"] and "(filtered: hate)" in body["message"]
    row = (await gw.usage_rows(1))[-1]
    assert row["status_code"] == 400 and row["error_code"] == "content_filter"
    assert len(json.loads(row["attempts"])) == 1  # the prompt is the problem: no fallback tried
    # The same refusal in Anthropic's shape for an Anthropic caller (translated to Azure).
    claude = anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), api_key=TOKEN, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as aerr:
        await claude.messages.create(model="az-filtered", max_tokens=10, messages=HI)
    assert aerr.value.body["error"]["type"] == "invalid_request_error"


async def test_an_anthropic_caller_is_translated_to_azure_chat_completions(azure):
    gw, rec = azure
    claude = anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), api_key=TOKEN, max_retries=0)
    reply = await claude.messages.create(model="az", max_tokens=50, messages=HI)
    assert reply.content[0].text == "Hello from Azure"
    assert rec.last["body"]["max_completion_tokens"] == 50 and rec.last["body"]["model"] == "gpt4o-prod"


async def test_azure_429_keeps_its_status_and_retry_after(azure):
    gw, _ = azure
    with pytest.raises(openai.RateLimitError) as err:
        await client(gw).chat.completions.create(model="az-429", messages=HI)
    assert err.value.response.headers["retry-after"] == "3"


@pytest.mark.parametrize("provider,message", [
    ({"kind": "azure_openai", "api_key": "k"}, "providers.az.base_url: required for kind 'azure_openai'"),
    ({"kind": "azure_openai", "base_url": "https://r.openai.azure.com"}, "providers.az.api_key: required"),
    ({"kind": "openai", "api_key": "k", "api_version": "v1"}, "providers.az.api_version: only for kind 'azure_openai'"),
])
def test_azure_configuration_is_checked(provider, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_config({"providers": {"az": provider}}, env={})
