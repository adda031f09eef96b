"""Usage (cached and reasoning tokens included) and the max-tokens stop, for every client API
against every provider wire format, each client reading it in its own terms."""

from __future__ import annotations

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from tests.conftest import TOKEN
from tests.upstreams import UPSTREAM_KEY

# What each fake upstream reports, in IR terms: input (incl. cached), output (incl. reasoning),
# cache read, cache write, reasoning.
IR_USAGE = {"openai": (11, 7, 3, 0, 2), "anthropic": (25, 9, 4, 1, 0), "gemini": (15, 8, 5, 0, 2)}
RESPONSES_UPSTREAM = (12, 6, 2, 0, 1)  # the fake's own /v1/responses, reached by passthrough


async def gateway_for(make_gateway, start_upstream, kind):  # type: ignore[no-untyped-def]
    up = await start_upstream(kind)
    base = up.url + "/v1" if kind == "openai" else up.url
    return await make_gateway({"up": {"kind": kind, "api_key": UPSTREAM_KEY, "base_url": base}},
                              [{"name": "ep", "served_entities": [{"provider": "up", "model": "ok"}]}])


async def usage_seen(client: str, gw) -> tuple[int, int, int, int, int]:  # type: ignore[no-untyped-def]
    """The usage a client reads, converted back to IR terms."""
    if client == "chat":
        c = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
        u = (await c.chat.completions.create(model="ep", messages=[{"role": "user", "content": "x"}])).usage
        return (u.prompt_tokens, u.completion_tokens, u.prompt_tokens_details.cached_tokens, 0,
                u.completion_tokens_details.reasoning_tokens)
    if client == "responses":
        c = openai.AsyncOpenAI(base_url=gw.url("/openai/v1"), api_key=TOKEN, max_retries=0)
        u = (await c.responses.create(model="ep", input="x")).usage
        return (u.input_tokens, u.output_tokens, u.input_tokens_details.cached_tokens, 0,
                u.output_tokens_details.reasoning_tokens)
    if client == "anthropic":
        c = anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), api_key=TOKEN, max_retries=0)
        u = (await c.messages.create(model="ep", max_tokens=50, messages=[{"role": "user", "content": "x"}])).usage
        cache_read, cache_write = u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0
        return (u.input_tokens + cache_read + cache_write, u.output_tokens, cache_read, cache_write, 0)
    c = genai.Client(api_key=TOKEN, http_options=types.HttpOptions(base_url=gw.url("/gemini")))
    m = (await c.aio.models.generate_content(model="ep", contents="x")).usage_metadata
    thoughts = m.thoughts_token_count or 0
    return (m.prompt_token_count, (m.candidates_token_count or 0) + thoughts, m.cached_content_token_count or 0, 0, thoughts)


# What survives in each client's terms: Chat Completions and Responses have no cache-write
# count, Anthropic has no reasoning count, Gemini neither cache writes.
DROPPED = {"chat": (3,), "responses": (3,), "anthropic": (4,), "gemini": (3,)}


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("client", ["chat", "responses", "anthropic", "gemini"])
async def test_usage_reaches_every_client_in_its_terms(make_gateway, start_upstream, client, provider):
    gw = await gateway_for(make_gateway, start_upstream, provider)
    expected = list(RESPONSES_UPSTREAM if (client, provider) == ("responses", "openai") else IR_USAGE[provider])
    for i in DROPPED[client]:
        expected[i] = 0
    assert await usage_seen(client, gw) == tuple(expected)
    (row,) = await gw.usage_rows(1)
    ir = RESPONSES_UPSTREAM if (client, provider) == ("responses", "openai") else IR_USAGE[provider]
    assert (row["input_tokens"], row["output_tokens"], row["cache_read_tokens"]) == ir[:3]


@pytest.mark.parametrize("provider", ["anthropic", "gemini"])
@pytest.mark.parametrize("client", ["chat", "responses", "anthropic", "gemini"])
async def test_max_tokens_stop_maps_per_client(make_gateway, start_upstream, client, provider):
    gw = await gateway_for(make_gateway, start_upstream, provider)
    if client == "chat":
        c = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
        r = await c.chat.completions.create(model="ep", max_tokens=3, messages=[{"role": "user", "content": "x"}])
        assert r.choices[0].finish_reason == "length"
    elif client == "responses":
        c = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
        r = await c.responses.create(model="ep", input="x", max_output_tokens=3)
        assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    elif client == "anthropic":
        c = anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), api_key=TOKEN, max_retries=0)
        r = await c.messages.create(model="ep", max_tokens=3, messages=[{"role": "user", "content": "x"}])
        assert r.stop_reason == "max_tokens"
    else:
        c = genai.Client(api_key=TOKEN, http_options=types.HttpOptions(base_url=gw.url("/gemini")))
        r = await c.aio.models.generate_content(model="ep", contents="x",
                                                config=types.GenerateContentConfig(max_output_tokens=3))
        assert r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


@pytest.mark.parametrize("provider, exact", [("anthropic", True), ("gemini", True), ("openai", False)])
async def test_token_counting_asks_the_provider_when_it_can(make_gateway, start_upstream, provider, exact):
    gw = await gateway_for(make_gateway, start_upstream, provider)
    claude = anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), api_key=TOKEN, max_retries=0)
    gem = genai.Client(api_key=TOKEN, http_options=types.HttpOptions(base_url=gw.url("/gemini")))
    counted = (await claude.messages.count_tokens(model="ep", messages=[{"role": "user", "content": "twelve chars"}])).input_tokens
    g_counted = (await gem.aio.models.count_tokens(model="ep", contents="twelve chars")).total_tokens
    estimate = (len("twelve chars") + 1) // 4
    assert counted == (42 if provider == "anthropic" else estimate)
    assert g_counted == (42 if provider == "gemini" else estimate)
    rows = await gw.usage_rows(2)
    assert [(r["status_code"], r["input_tokens"], r["total_tokens"]) for r in rows] == [(200, 0, 0)] * 2  # consumed none
