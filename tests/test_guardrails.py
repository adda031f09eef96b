"""Input and output guardrails through real HTTP, with the official SDKs as callers.

Every chat API (Chat Completions, Responses, Anthropic Messages, Gemini) is asked, streamed
and not, both through translation (the in-process mock) and through the same-format
passthrough (a fake upstream of the caller's own format), to block and to mask on input
and on output. The fake upstreams record what reached them, so a test sees whether a
blocked request got there and what a masked one looked like when it did.
"""

from __future__ import annotations

import json
import logging

import aiohttp
import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from prometheus_client import REGISTRY

from tests.conftest import TOKEN, Gateway
from tests.upstreams import UPSTREAM_KEY

EMAIL = "jane.doe@example.com"
PROMPT = f"Write to {EMAIL} today"
#: What the fake upstreams answer on the output endpoints: the same e-mail address.
SAY = "say-" + PROMPT.replace(" ", "_")
MASKED = "[EMAIL_ADDRESS]"
CLIENTS = ["chat", "responses", "anthropic", "gemini"]
#: The passthrough backend of each client API: the fake upstream that speaks its format.
SAME_FORMAT = {"chat": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}


def endpoint(name: str, provider: str, model: str, guardrails: dict) -> dict:  # type: ignore[type-arg]
    return {"name": name, "served_entities": [{"provider": provider, "model": model}], "guardrails": guardrails}


def matrix_endpoints() -> list[dict]:  # type: ignore[type-arg]
    """For each backend: ``in-block-*``, ``in-mask-*``, ``out-block-*``, ``out-mask-*`` (PII)."""
    out = []
    for backend in ("mock", "openai", "anthropic", "gemini"):
        ok, say = ("echo", "echo") if backend == "mock" else ("ok", SAY)
        out += [
            endpoint(f"in-block-{backend}", backend, ok, {"input": {"pii": {"behavior": "BLOCK"}}}),
            endpoint(f"in-mask-{backend}", backend, ok, {"input": {"pii": {"behavior": "MASK"}}}),
            endpoint(f"out-block-{backend}", backend, say, {"output": {"pii": {"behavior": "BLOCK"}}}),
            endpoint(f"out-mask-{backend}", backend, say, {"output": {"pii": {"behavior": "MASK"}}}),
        ]
    return out


class Stack:
    def __init__(self, gw: Gateway, ups: dict) -> None:  # type: ignore[type-arg]
        self.gw = gw
        self.ups = ups

    def upstream_requests(self) -> list[dict]:  # type: ignore[type-arg]
        return [r for up in self.ups.values() for r in up.recorder.requests]


async def stack(make_gateway, start_upstream, endpoints: list[dict], **sections) -> Stack:  # type: ignore[no-untyped-def, type-arg]
    ups = {kind: await start_upstream(kind) for kind in ("openai", "anthropic", "gemini")}
    providers = {"mock": {"kind": "mock"}, **{
        kind: {"kind": kind, "api_key": UPSTREAM_KEY, "base_url": up.url + "/v1" if kind == "openai" else up.url}
        for kind, up in ups.items()}}
    return Stack(await make_gateway(providers, endpoints, **sections), ups)


# ---- the callers --------------------------------------------------------------------------

async def ask(client: str, gw: Gateway, model: str, text: str, stream: bool, **extra) -> str:  # type: ignore[no-untyped-def]
    """The reply's text (tool-call arguments included) through ``client``'s SDK; raises its error."""
    if client in ("chat", "responses"):
        async with openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0) as oai:
            if client == "responses":
                return await _responses(oai, model, text, stream)
            return await _chat(oai, model, text, stream, **extra)
    if client == "anthropic":
        async with anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), api_key=TOKEN, max_retries=0) as claude:
            messages = [{"role": "user", "content": text}]
            if not stream:
                reply = await claude.messages.create(model=model, max_tokens=100, messages=messages)
                return "".join(b.text for b in reply.content if b.type == "text")
            events = await claude.messages.create(model=model, max_tokens=100, messages=messages, stream=True)
            return "".join([ev.delta.text async for ev in events
                            if ev.type == "content_block_delta" and ev.delta.type == "text_delta"])
    assert client == "gemini"
    gem = genai.Client(api_key=TOKEN, http_options=types.HttpOptions(base_url=gw.url("/gemini"))).aio
    async with gem:
        if not stream:
            return (await gem.models.generate_content(model=model, contents=text)).text or ""
        chunks = await gem.models.generate_content_stream(model=model, contents=text)
        return "".join([c.text or "" async for c in chunks])


async def _chat(oai: openai.AsyncOpenAI, model: str, text: str, stream: bool, **extra) -> str:  # type: ignore[no-untyped-def]
    messages = [{"role": "user", "content": text}]
    if not stream:
        message = (await oai.chat.completions.create(model=model, messages=messages, **extra)).choices[0].message
        return (message.content or "") + "".join(c.function.arguments for c in message.tool_calls or ())
    out = []
    async for chunk in await oai.chat.completions.create(model=model, messages=messages, stream=True, **extra):
        for choice in chunk.choices:
            out.append(choice.delta.content or "")
            out += [c.function.arguments or "" for c in choice.delta.tool_calls or () if c.function]
    return "".join(out)


async def _responses(oai: openai.AsyncOpenAI, model: str, text: str, stream: bool) -> str:
    if not stream:
        return (await oai.responses.create(model=model, input=text)).output_text
    events = await oai.responses.create(model=model, input=text, stream=True)
    return "".join([ev.delta async for ev in events if ev.type == "response.output_text.delta"])


async def refused(client: str, gw: Gateway, model: str, text: str, stream: bool, **extra) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """The status and message of the error ``client``'s SDK raised."""
    try:
        got = await ask(client, gw, model, text, stream, **extra)
    except (openai.APIStatusError, anthropic.APIStatusError) as exc:
        return exc.status_code, exc.message
    except genai_errors.APIError as exc:
        return exc.code, exc.message or ""
    raise AssertionError(f"not refused; the reply was {got!r}")


def backend_for(client: str, via: str) -> str:
    return "mock" if via == "translated" else SAME_FORMAT[client]


MATRIX = [(c, via, s) for c in CLIENTS for via in ("translated", "passthrough") for s in (False, True)]


@pytest.mark.parametrize("client,via,stream", MATRIX)
async def test_input_pii_block_never_reaches_the_provider(make_gateway, start_upstream, client, via, stream):
    st = await stack(make_gateway, start_upstream, matrix_endpoints())
    status, message = await refused(client, st.gw, f"in-block-{backend_for(client, via)}", PROMPT, stream)
    assert status == 400 and "Request blocked by input guardrail 'pii'" in message
    assert st.upstream_requests() == []
    assert EMAIL not in message


@pytest.mark.parametrize("client,via,stream", MATRIX)
async def test_input_pii_mask_sends_the_provider_masked_text(make_gateway, start_upstream, client, via, stream):
    st = await stack(make_gateway, start_upstream, matrix_endpoints())
    reply = await ask(client, st.gw, f"in-mask-{backend_for(client, via)}", PROMPT, stream)
    if via == "translated":  # the mock echoes what it was sent
        assert reply.strip() == f"Echo: Write to {MASKED} today"
    else:
        (sent,) = st.upstream_requests()
        assert MASKED in json.dumps(sent["body"]) and EMAIL not in json.dumps(sent["body"])
        assert reply.strip().startswith("Hello from")


@pytest.mark.parametrize("client,via,stream", MATRIX)
async def test_output_pii_block_sends_no_reply_text(make_gateway, start_upstream, client, via, stream):
    st = await stack(make_gateway, start_upstream, matrix_endpoints())
    status, message = await refused(client, st.gw, f"out-block-{backend_for(client, via)}", PROMPT, stream)
    assert status == 400 and "Response blocked by output guardrail 'pii'" in message


@pytest.mark.parametrize("client,via,stream", MATRIX)
async def test_output_pii_mask_rewrites_the_reply(make_gateway, start_upstream, client, via, stream):
    st = await stack(make_gateway, start_upstream, matrix_endpoints())
    reply = await ask(client, st.gw, f"out-mask-{backend_for(client, via)}", PROMPT, stream)
    assert EMAIL not in reply and MASKED in reply
    assert "today" in reply  # the rest of the text is kept


async def test_a_blocked_stream_is_a_plain_400_with_no_model_text(make_gateway, start_upstream):
    st = await stack(make_gateway, start_upstream, matrix_endpoints())
    async with aiohttp.ClientSession() as s:
        async with s.post(st.gw.url("/v1/chat/completions"), headers={"Authorization": f"Bearer {TOKEN}"},
                          json={"model": "out-block-openai", "stream": True,
                                "messages": [{"role": "user", "content": "hi"}]}) as r:
            status, raw = r.status, await r.read()
    assert status == 400 and r.content_type == "application/json"
    assert b"jane" not in raw and b"Response blocked by output guardrail 'pii'" in raw


async def test_serving_invocations_are_guarded_in_the_databricks_shape(make_gateway, start_upstream):
    st = await stack(make_gateway, start_upstream, matrix_endpoints())
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as s:
        async with s.post(st.gw.url("/serving-endpoints/in-block-openai/invocations"), headers=headers,
                          json={"messages": [{"role": "user", "content": PROMPT}]}) as r:
            assert r.status == 400
            assert await r.json() == {"error_code": "INVALID_PARAMETER_VALUE", "details": [],
                                      "message": "Request blocked by input guardrail 'pii'"}
        async with s.post(st.gw.url("/serving-endpoints/in-mask-mock/invocations"), headers=headers,
                          json={"prompt": PROMPT, "max_tokens": 20}) as r:
            assert r.status == 200
            assert (await r.json())["choices"][0]["text"] == f"Echo: Write to {MASKED} today"
        async with s.post(st.gw.url("/serving-endpoints/out-block-mock/invocations"), headers=headers,
                          json={"prompt": PROMPT}) as r:
            assert r.status == 400 and (await r.json())["message"] == "Response blocked by output guardrail 'pii'"
    assert st.upstream_requests() == []


# ---- keywords, patterns and tool calls ------------------------------------------------------

async def test_invalid_keywords_match_whole_words_in_any_case(make_gateway, start_upstream):
    st = await stack(make_gateway, start_upstream, [
        endpoint("kw", "openai", "ok", {"input": {"invalid_keywords": ["Project Falcon", "secret"]}}),
        endpoint("kw-out", "mock", "echo", {"output": {"invalid_keywords": ["secret"]}}),
    ])
    for text in ("tell me about project   FALCON", "that is SECRET."):
        status, message = await refused("chat", st.gw, "kw", text, False)
        assert status == 400 and message.endswith("Request blocked by input guardrail 'invalid_keywords'")
    assert st.upstream_requests() == []
    assert (await ask("chat", st.gw, "kw", "my secretary likes falconry", False)) == "Hello from OpenAI"
    status, message = await refused("anthropic", st.gw, "kw-out", "a secret", True)
    assert status == 400 and "Response blocked by output guardrail 'invalid_keywords'" in message


WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_call_arguments_are_output_text(make_gateway, start_upstream, stream):
    st = await stack(make_gateway, start_upstream, [
        endpoint("tool-mask", "mock", "tool", {"output": {"pii": {"behavior": "MASK"}}}),
        endpoint("tool-pattern", "openai", "tool", {"output": {"patterns": [
            {"name": "city", "pattern": "Paris", "behavior": "MASK"}]}}),
        endpoint("tool-block", "anthropic", "tool", {"output": {"invalid_keywords": ["paris"]}}),
    ])
    # The mock calls the tool with the prompt as its argument; the PII is masked inside the JSON.
    got = await ask("chat", st.gw, "tool-mask", f"weather for {EMAIL}", stream, tools=[WEATHER_TOOL])
    assert json.loads(got) == {"city": f"weather for {MASKED}"}
    # A relayed OpenAI reply's arguments; an Anthropic tool_use input, translated for this caller.
    got = await ask("chat", st.gw, "tool-pattern", "weather?", stream, tools=[WEATHER_TOOL])
    assert json.loads(got) == {"city": "[city]"}
    status, message = await refused("chat", st.gw, "tool-block", "weather?", stream, tools=[WEATHER_TOOL])
    assert status == 400 and "output guardrail 'invalid_keywords'" in message


async def test_input_tool_arguments_and_results_are_checked(make_gateway, start_upstream):
    st = await stack(make_gateway, start_upstream, [
        endpoint("in-mask", "openai", "ok", {"input": {"pii": {"behavior": "MASK"}}})])
    oai = openai.AsyncOpenAI(base_url=st.gw.url("/v1"), api_key=TOKEN, max_retries=0)
    await oai.chat.completions.create(model="in-mask", messages=[
        {"role": "user", "content": "mail my friend"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "send", "arguments": json.dumps({"to": EMAIL})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sent to 10.1.2.3"},
    ])
    sent = st.upstream_requests()[0]["body"]["messages"]
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"to": MASKED}
    assert sent[2]["content"] == "sent to [IP_ADDRESS]"
    assert sent[0] == {"role": "user", "content": "mail my friend"}  # what needed no mask went as sent


# ---- usage rows, metrics, logs, inference tables -------------------------------------------

def verdicts(endpoint_: str, stage: str, verdict: str, guardrail: str = "pii") -> float:
    labels = {"endpoint": endpoint_, "guardrail": guardrail, "stage": stage, "verdict": verdict}
    return REGISTRY.get_sample_value("gateway_guardrail_verdicts_total", labels) or 0.0


SEEN = (("in-block-openai", "input", "block"), ("in-mask-mock", "input", "mask"),
        ("out-block-gemini", "output", "block"))


async def test_blocks_and_masks_leave_usage_rows_metrics_and_no_pii_in_logs(make_gateway, start_upstream, caplog):
    caplog.set_level(logging.INFO, logger="gateway")
    st = await stack(make_gateway, start_upstream, matrix_endpoints())
    before = [verdicts(*labels) for labels in SEEN]
    await refused("chat", st.gw, "in-block-openai", PROMPT, False)
    await ask("anthropic", st.gw, "in-mask-mock", PROMPT, False)
    await refused("gemini", st.gw, "out-block-gemini", PROMPT, True)
    rows = await st.gw.usage_rows(at_least=3)
    blocked, masked, out_blocked = rows
    assert blocked["status_code"] == 400 and blocked["error_code"] == "guardrail_blocked"
    assert blocked["guardrails"] == "input.pii:block"
    assert blocked["endpoint"] == "in-block-openai" and blocked["provider"] is None  # no provider was tried
    assert (masked["status_code"], masked["error_code"], masked["guardrails"]) == (200, None, "input.pii:mask")
    assert (out_blocked["status_code"], out_blocked["guardrails"]) == (400, "output.pii:block")
    assert out_blocked["provider"] == "gemini" and out_blocked["output_tokens"] > 0  # the provider was paid
    assert [verdicts(*labels) - b for labels, b in zip(SEEN, before)] == [1, 1, 1]
    async with aiohttp.ClientSession() as s:
        async with s.get(st.gw.url("/metrics")) as r:
            text = await r.text()
    assert ('gateway_guardrail_verdicts_total{endpoint="in-mask-mock",guardrail="pii",stage="input",'
            'verdict="mask"}') in text
    assert "input guardrail 'pii' of endpoint 'in-block-openai': block (EMAIL_ADDRESS)" in caplog.text
    assert EMAIL not in caplog.text


async def test_inference_table_keeps_masked_payloads_not_the_pii(make_gateway, start_upstream):
    table = {"inference_table": {"enabled": True}}
    st = await stack(make_gateway, start_upstream, [
        {**endpoint("mask", "openai", "ok", {"input": {"pii": {"behavior": "MASK"}}}), **table},
        {**endpoint("block", "openai", "ok", {"input": {"invalid_keywords": ["today"]}}), **table},
        {**endpoint("out-mask", "mock", "echo", {"output": {"pii": {"behavior": "MASK"}}}), **table},
    ])
    await ask("chat", st.gw, "mask", PROMPT, False)
    await refused("chat", st.gw, "block", PROMPT, False)
    await ask("chat", st.gw, "out-mask", "hi " + EMAIL, True)
    rows = await st.gw.inference_rows(at_least=3)
    assert len(rows) == 3
    # What went to the provider (masked), a refused request PII-masked all the same, a masked reply.
    assert EMAIL not in rows[0]["request"] + rows[1]["request"] + rows[2]["response"]
    assert MASKED in rows[0]["request"] and MASKED in rows[1]["request"]
    assert "Request blocked by input guardrail 'invalid_keywords'" in rows[1]["response"]
    assert MASKED in rows[2]["response"]


# ---- the judge: safety and valid_topics --------------------------------------------------

def judged_endpoints(judge_model: str = "judge") -> list[dict]:  # type: ignore[type-arg]
    return [
        # The judge's own guardrails would refuse every judge prompt ("<text>"): they must not run on it.
        endpoint("judge", "openai", judge_model, {"input": {"invalid_keywords": ["<text>"]}}),
        endpoint("safe-chat", "mock", "echo", {"input": {"safety": True}, "output": {"safety": True}}),
        endpoint("topical", "mock", "echo", {"input": {"valid_topics": ["billing", "shipping"],
                                                       "pii": {"behavior": "MASK"}}}),
    ]


async def judged_stack(make_gateway, start_upstream, judge_model: str = "judge", **judge) -> Stack:  # type: ignore[no-untyped-def]
    return await stack(make_gateway, start_upstream, judged_endpoints(judge_model),
                       guardrail_judge={"endpoint": "judge", **judge})


@pytest.mark.parametrize("client", CLIENTS)
async def test_the_judge_allows_and_blocks(make_gateway, start_upstream, client):
    st = await judged_stack(make_gateway, start_upstream)
    assert (await ask(client, st.gw, "safe-chat", "how do I bake bread", False)).strip() == "Echo: how do I bake bread"
    status, message = await refused(client, st.gw, "safe-chat", "tell me the forbidden thing", False)
    assert status == 400 and "Request blocked by input guardrail 'safety'" in message
    judged = [r["body"] for r in st.ups["openai"].recorder.requests]
    # Asked twice for the allowed request (input, output), once for the blocked one; in process, no token.
    assert len(judged) == 3 and all(b["model"] == "judge" and b["temperature"] == 0 for b in judged)
    assert "how do I bake bread" in judged[0]["messages"][-1]["content"]


async def test_the_judge_reads_masked_text_and_its_calls_are_accounted(make_gateway, start_upstream):
    st = await judged_stack(make_gateway, start_upstream)
    assert (await ask("chat", st.gw, "topical", f"my bill, mail {EMAIL}", False)) == f"Echo: my bill, mail {MASKED}"
    (judged,) = st.ups["openai"].recorder.requests
    assert EMAIL not in json.dumps(judged["body"]) and MASKED in json.dumps(judged["body"])
    assert "billing; shipping" in judged["body"]["messages"][0]["content"]
    rows = await st.gw.usage_rows(at_least=2)
    judge_row = next(r for r in rows if r["api_type"] == "guardrails/judge")
    caller_row = next(r for r in rows if r["api_type"] != "guardrails/judge")
    assert judge_row["endpoint"] == "judge" and judge_row["requester"] == "alice@example.com"
    assert judge_row["request_id"] == f"{caller_row['request_id']}.judge.input.valid_topics"
    assert json.loads(judge_row["request_tags"]) == {"guarded_endpoint": "topical", "guardrail": "input.valid_topics"}
    assert judge_row["input_tokens"] == 11 and judge_row["status_code"] == 200
    assert caller_row["guardrails"] == "input.pii:mask"


@pytest.mark.parametrize("judge_model", ["fail-500", "say-I_am_not_sure"])
async def test_a_failed_judge_fails_closed_by_default(make_gateway, start_upstream, judge_model, caplog):
    st = await judged_stack(make_gateway, start_upstream, judge_model)
    labels = {"endpoint": "safe-chat", "guardrail": "safety", "stage": "input", "outcome": "blocked"}
    before = REGISTRY.get_sample_value("gateway_guardrail_judge_failures_total", labels) or 0.0
    status, message = await refused("anthropic", st.gw, "safe-chat", "hello", False)
    assert status == 503 and "Request blocked by input guardrail 'safety': its judge could not decide" in message
    rows = await st.gw.usage_rows(at_least=2)
    caller = next(r for r in rows if r["api_type"] != "guardrails/judge")
    assert (caller["error_code"], caller["guardrails"]) == ("guardrail_judge_failed", "input.safety:error")
    assert REGISTRY.get_sample_value("gateway_guardrail_judge_failures_total", labels) == before + 1
    assert verdicts("safe-chat", "input", "error", "safety") >= 1
    assert "could not be judged" in caplog.text


async def test_a_failed_judge_lets_through_when_fail_open(make_gateway, start_upstream):
    st = await judged_stack(make_gateway, start_upstream, "fail-500", fail_open=True)
    assert (await ask("gemini", st.gw, "safe-chat", "hello", True)).strip() == "Echo: hello"
    rows = await st.gw.usage_rows(at_least=3)
    caller = next(r for r in rows if r["api_type"] != "guardrails/judge")
    assert caller["status_code"] == 200 and caller["guardrails"] == "input.safety:error,output.safety:error"
    assert [r["status_code"] for r in rows if r["api_type"] == "guardrails/judge"] == [500, 500]
