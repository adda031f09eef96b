"""Routing that survives providers: split, affinity, fallbacks, retries, deadlines, breakers."""

from __future__ import annotations

import json
import random
from collections import Counter

import aiohttp
import openai
import pytest

from gateway.config import CircuitBreakerConfig, ProviderConfig, parse_config
from gateway.providers.http import HttpClients
from gateway.providers.mock import MockProvider
from gateway.errors import UpstreamStatus
from gateway.pipeline.breaker import Breakers, State
from gateway.pipeline.call import Call, RequestContext
from gateway.pipeline.replies import ResultReply
from gateway.pipeline.routing import Router, backoff, pick
from gateway.ir import ChatResult
from tests.conftest import TOKEN, Gateway
from tests.test_faults import free_port
from tests.upstreams import UPSTREAM_KEY

AUTH = {"Authorization": f"Bearer {TOKEN}"}
MOCK = {"mock": {"kind": "mock"}}
MOCK_PROVIDERS = {"mock": MockProvider("mock", ProviderConfig(kind="mock"), HttpClients())}


def entity(model: str, weight: int | None = None) -> dict:
    e = {"provider": "mock", "model": model}
    if weight is not None:
        e["weight"] = weight
    return e


async def chat(gw: Gateway, model: str = "ep", stream: bool = False, **headers: str) -> tuple[int, str]:
    """Status and the reply text (joined deltas for streams)."""
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url("/v1/chat/completions"), json=body, headers={**AUTH, **headers}) as r:
            if not stream or r.status != 200:
                data = await r.json()
                return r.status, data["choices"][0]["message"]["content"] if r.status == 200 else data["error"]["code"]
            text = ""
            async for line in r.content:
                if line.startswith(b"data: {"):
                    event = json.loads(line[6:])
                    if "error" in event:
                        return r.status, text + "|error:" + event["error"]["code"]
                    text += "".join(c["delta"].get("content") or "" for c in event["choices"])
            return r.status, text


async def attempts_of(gw: Gateway, n: int = 1) -> list[list[dict]]:
    return [json.loads(row["attempts"]) for row in await gw.usage_rows(n)]


# ---- fallback triggers and order -----------------------------------------------------------

@pytest.mark.parametrize("failing", ["error-429", "error-500", "error-502", "error-503", "error-529"])
@pytest.mark.parametrize("stream", [False, True])
async def test_each_retryable_status_falls_back_in_order(make_gateway, failing, stream):
    gw = await make_gateway(MOCK, [{"name": "ep", "served_entities": [entity(failing)],
                                    "fallbacks": [entity("error-503"), entity("echo"), entity("tool")]}])
    assert await chat(gw, stream=stream) == (200, "Echo: hi")
    (attempts,) = await attempts_of(gw)
    assert [(a["entity"], a["status"]) for a in attempts] == [
        (f"mock/{failing}", int(failing[-3:])), ("mock/error-503", 503), ("mock/echo", 200)]
    assert attempts[0]["error_code"] == f"upstream_{failing[-3:]}"


async def test_attempts_are_json_text_that_sql_can_query(make_gateway):
    import sqlite3

    gw = await make_gateway(MOCK, [{"name": "ep", "served_entities": [entity("error-503")],
                                    "fallbacks": [entity("echo")]}])
    assert await chat(gw) == (200, "Echo: hi")
    await gw.usage_rows(1)
    with sqlite3.connect(f"{gw.data_dir}/usage.db") as conn:
        row = conn.execute("SELECT typeof(attempts), json_extract(attempts, '$[1].entity') FROM usage").fetchone()
    assert row == ("text", "mock/echo")


async def test_connection_refused_and_timeout_fall_back(make_gateway, start_upstream):
    up = await start_upstream("openai")
    gw = await make_gateway(
        {"down": {"kind": "openai_compatible", "base_url": f"http://127.0.0.1:{free_port()}/v1"},
         "slow": {"kind": "openai", "api_key": UPSTREAM_KEY, "base_url": up.url + "/v1",
                  "timeouts": {"first_byte": 0.2}},
         "mock": {"kind": "mock"}},
        [{"name": "ep", "served_entities": [{"provider": "down", "model": "m"}],
          "fallbacks": [{"provider": "slow", "model": "hang"}, entity("echo")]}])
    assert await chat(gw) == (200, "Echo: hi")
    (attempts,) = await attempts_of(gw)
    assert [a["error_code"] for a in attempts] == ["upstream_unavailable", "upstream_timeout", None]


async def test_a_400_is_final(make_gateway):
    gw = await make_gateway(MOCK, [{"name": "ep", "served_entities": [entity("error-400")], "fallbacks": [entity("echo")]}])
    assert (await chat(gw))[0] == 400
    (attempts,) = await attempts_of(gw)
    assert len(attempts) == 1


async def test_fallback_crosses_wire_formats(make_gateway, start_upstream):
    """A Chat Completions call falls back from an OpenAI entity to an Anthropic one, translated."""
    openai_up = await start_upstream("openai")
    anthropic_up = await start_upstream("anthropic")
    gw = await make_gateway(
        {"oa": {"kind": "openai", "api_key": UPSTREAM_KEY, "base_url": openai_up.url + "/v1"},
         "an": {"kind": "anthropic", "api_key": UPSTREAM_KEY, "base_url": anthropic_up.url}},
        [{"name": "ep", "served_entities": [{"provider": "oa", "model": "fail-503"}],
          "fallbacks": [{"provider": "an", "model": "ok"}]}])
    client = openai.AsyncOpenAI(base_url=gw.url("/v1"), api_key=TOKEN, max_retries=0)
    reply = await client.chat.completions.create(model="ep", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content.strip() == "Hello from Claude"
    assert anthropic_up.recorder.last["body"]["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    stream = await client.chat.completions.create(model="ep", stream=True, messages=[{"role": "user", "content": "hi"}])
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]).strip() == "Hello from Claude"


# ---- streams -----------------------------------------------------------------------------

async def test_stream_failing_before_its_first_byte_falls_back(make_gateway):
    gw = await make_gateway(MOCK, [{"name": "ep", "served_entities": [entity("echo+cut-after-0")],
                                    "fallbacks": [entity("echo")]}])
    assert await chat(gw, stream=True) == (200, "Echo: hi")
    (attempts,) = await attempts_of(gw)
    assert [a["error_code"] for a in attempts] == ["upstream_unavailable", None]


async def test_stream_failing_after_bytes_were_sent_ends_with_an_error_event(make_gateway):
    gw = await make_gateway(MOCK, [{"name": "ep", "served_entities": [entity("echo+cut-after-1")],
                                    "fallbacks": [entity("echo")]}])
    assert await chat(gw, stream=True) == (200, "Echo:|error:upstream_unavailable")
    (row,) = await gw.usage_rows(1)
    assert row["status_code"] == 502 and len(json.loads(row["attempts"])) == 1


async def test_first_token_timeout_falls_over(make_gateway):
    gw = await make_gateway(MOCK, [{"name": "ep", "served_entities": [entity("echo+first-token-5000ms")],
                                    "fallbacks": [entity("echo")], "routing": {"first_token_timeout": 0.1}}])
    assert await chat(gw, stream=True) == (200, "Echo: hi")
    (attempts,) = await attempts_of(gw)
    assert attempts[0]["error_code"] == "upstream_timeout" and attempts[1]["status"] == 200


# ---- retries and deadlines ------------------------------------------------------------------

async def test_retries_repeat_an_entity_before_falling_back(make_gateway):
    gw = await make_gateway(MOCK, [{"name": "ep", "served_entities": [entity("error-503")],
                                    "fallbacks": [entity("echo")],
                                    "routing": {"retries": {"attempts": 2, "backoff_ms": 1}}}])
    assert await chat(gw) == (200, "Echo: hi")
    (attempts,) = await attempts_of(gw)
    assert [a["entity"] for a in attempts] == ["mock/error-503"] * 3 + ["mock/echo"]


async def test_retry_after_that_overruns_the_deadline_is_not_waited_for(make_gateway):
    # error-429 says Retry-After: 1s; the caller allows 0.5s, so the retry is skipped.
    gw = await make_gateway(MOCK, [{"name": "ep", "served_entities": [entity("error-429")],
                                    "fallbacks": [entity("echo")],
                                    "routing": {"retries": {"attempts": 3, "backoff_ms": 1}}}])
    assert await chat(gw, **{"x-gateway-timeout": "0.5"}) == (200, "Echo: hi")
    (attempts,) = await attempts_of(gw)
    assert [a["entity"] for a in attempts] == ["mock/error-429", "mock/echo"]


async def test_a_passed_deadline_is_504_and_the_upstream_is_not_called(make_gateway):
    gw = await make_gateway(MOCK, [{"name": "ep", "served_entities": [entity("slow-300ms+error-503")],
                                    "fallbacks": [entity("echo")]}])
    assert await chat(gw, **{"x-gateway-timeout": "0.1"}) == (504, "deadline_exceeded")


def make_call(endpoint_raw: dict, deadline: float | None = None) -> Call:
    cfg = parse_config({"providers": MOCK, "endpoints": [endpoint_raw]}, env={})
    ctx = RequestContext("r", "t", None, deadline)
    return Call(ctx, cfg.endpoints[0], b"{}", stream=False, include_usage=False, decode=lambda b: None)


async def test_retry_waits_out_retry_after_and_stops_at_the_deadline():
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async def always_429(call, provider, target):  # type: ignore[no-untyped-def]
        now[0] += 0.1
        raise UpstreamStatus(429, "busy", retry_after=2.0)

    router = Router(MOCK_PROVIDERS, rng=random.Random(1), clock=lambda: now[0], sleep=sleep)
    call = make_call({"name": "ep", "served_entities": [entity("x")],
                      "routing": {"retries": {"attempts": 5, "backoff_ms": 10}}}, deadline=5.0)
    with pytest.raises(UpstreamStatus):
        await router.route(call, always_429)
    assert slept == [2.0, 2.0]  # at 0.1 and 2.2; a third wait (from 4.3) would pass the deadline
    assert len(call.ctx.record.attempts) == 3


def test_backoff_is_jittered_and_capped():
    rng = random.Random(7)
    delays = [backoff(n, 100, 1000, rng) for n in range(8)]
    assert all(0 <= d <= min(1.0, 0.1 * 2**n) for n, d in enumerate(delays))
    assert len(set(delays)) == len(delays)


# ---- traffic split and affinity -------------------------------------------------------------

def test_split_distribution_follows_the_weights():
    cfg = parse_config({"providers": MOCK, "endpoints": [{"name": "ep", "served_entities": [
        entity("a", 70), entity("b", 20), entity("c", 10)]}]}, env={})
    rng = random.Random(42)
    counts = Counter(pick(cfg.endpoints[0].served_entities, rng).model for _ in range(10_000))
    assert counts["a"] == pytest.approx(7000, abs=300)
    assert counts["b"] == pytest.approx(2000, abs=200)
    assert counts["c"] == pytest.approx(1000, abs=150)


async def test_split_through_the_gateway_with_seeded_randomness(aiohttp_server, tmp_path):
    from gateway.app import create_app

    cfg = parse_config({"server": {"data_dir": str(tmp_path)}, "providers": MOCK,
                        "tokens": [{"principal": "a", "token": TOKEN}], "storage": {"flush_interval_ms": 1},
                        "endpoints": [{"name": "ep", "served_entities": [entity("echo", 75), entity("echo+slow-1ms", 25)]}]},
                       env={})
    gw = Gateway(await aiohttp_server(create_app(cfg, rng=random.Random(3))), None, str(tmp_path))  # type: ignore[arg-type]
    gw.app = gw.server.app
    for _ in range(200):
        assert (await chat(gw))[0] == 200
    counts = Counter(row["provider_model"] for row in await gw.usage_rows(200))
    assert counts["echo"] == pytest.approx(150, abs=25) and counts["echo"] + counts["echo+slow-1ms"] == 200


async def test_session_affinity_pins_a_session_to_one_entity(make_gateway):
    gw = await make_gateway(MOCK, [{"name": "ep", "routing": {"session_header": "x-session-id"},
                                    "served_entities": [entity("echo", 50), entity("echo+slow-1ms", 50)]}])
    sessions = [f"session-{i}" for i in range(12)]
    for _ in range(3):
        for s in sessions:
            assert (await chat(gw, **{"x-session-id": s}))[0] == 200
    rows = await gw.usage_rows(36)
    by_session: dict[int, set[str]] = {}
    for i, row in enumerate(rows):
        by_session.setdefault(i % 12, set()).add(row["provider_model"])
    assert all(len(models) == 1 for models in by_session.values())
    assert len({next(iter(m)) for m in by_session.values()}) == 2, "sessions spread over both entities"


# ---- circuit breaking -----------------------------------------------------------------------

def test_breaker_closed_open_half_open_closed():
    now = [0.0]
    breaker = Breakers(lambda: now[0]).get("ep", "mock/x", CircuitBreakerConfig(failures=3, cooldown_s=10))
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state is State.CLOSED
    assert breaker.allow()
    breaker.failure()
    assert breaker.state is State.OPEN and not breaker.allow()
    now[0] = 10.0
    assert breaker.allow() and breaker.state is State.HALF_OPEN
    assert not breaker.allow(), "one probe at a time"
    breaker.failure()
    assert breaker.state is State.OPEN and not breaker.allow()
    now[0] = 20.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state is State.CLOSED and breaker.allow()


async def test_open_circuit_skips_the_entity_and_shows_in_metrics(make_gateway):
    gw = await make_gateway(MOCK, [{"name": "ep", "served_entities": [entity("error-500")],
                                    "fallbacks": [entity("echo")],
                                    "routing": {"circuit_breaker": {"failures": 2, "cooldown_s": 3600}}}])
    for _ in range(3):
        assert await chat(gw) == (200, "Echo: hi")
    attempts = await attempts_of(gw, 3)
    assert [a[0]["error_code"] for a in attempts] == ["upstream_500", "upstream_500", "circuit_open"]
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url("/metrics")) as r:
            text = await r.text()
    assert 'gateway_circuit_state{endpoint="ep",entity="mock/error-500"} 1.0' in text
    assert 'gateway_fallbacks_total{endpoint="ep",reason="circuit_open"}' in text


async def test_all_circuits_open_is_503(make_gateway):
    gw = await make_gateway(MOCK, [{"name": "ep", "served_entities": [entity("error-500")],
                                    "routing": {"circuit_breaker": {"failures": 1, "cooldown_s": 3600}}}])
    assert (await chat(gw))[0] == 500
    assert await chat(gw) == (503, "no_entity_available")


async def test_router_reports_success_through_a_fake_attempt():
    async def ok(call, provider, target):  # type: ignore[no-untyped-def]
        return ResultReply(ChatResult("id", target.model, [], "stop"))

    router = Router(MOCK_PROVIDERS, rng=random.Random(0))
    call = make_call({"name": "ep", "served_entities": [entity("x")]})
    reply = await router.route(call, ok)
    assert isinstance(reply, ResultReply) and call.ctx.record.attempts[0].status == 200


@pytest.mark.parametrize("raw, message", [
    ({"served_entities": [entity("a", 60), entity("b", 30)]}, "weights must add up to 100"),
    ({"served_entities": [entity("a", 60), entity("b")]}, r"served_entities\[1\]\.weight: required"),
    ({"served_entities": [entity("a", 10)] * 11}, "at most 10 served entities"),
    ({"served_entities": [entity("a")], "fallbacks": [entity("b")] * 6}, "at most 5 fallbacks"),
    ({"served_entities": [entity("a")], "fallbacks": [entity("b", 50)]}, "take no weight"),
])
def test_routing_config_is_validated(raw, message):
    from gateway.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_config({"providers": MOCK, "endpoints": [{"name": "ep", **raw}]}, env={})


async def test_a_passed_deadline_does_not_leave_a_half_open_probe_claimed():
    now = [0.0]
    router = Router(MOCK_PROVIDERS, rng=random.Random(0), clock=lambda: now[0])
    raw = {"name": "ep", "served_entities": [entity("x")], "routing": {"circuit_breaker": {"failures": 1, "cooldown_s": 1}}}

    async def fail(call, provider, target):  # type: ignore[no-untyped-def]
        raise UpstreamStatus(500, "down")

    async def ok(call, provider, target):  # type: ignore[no-untyped-def]
        return ResultReply(ChatResult("id", target.model, [], "stop"))

    with pytest.raises(UpstreamStatus):
        await router.route(make_call(raw), fail)  # opens the circuit
    now[0] = 5.0  # cool-down over: the next request would be the half-open probe
    with pytest.raises(Exception, match="deadline"):
        await router.route(make_call(raw, deadline=4.0), ok)
    assert isinstance(await router.route(make_call(raw), ok), ResultReply)


async def test_the_last_entity_failing_is_no_fallback(make_gateway):
    gw = await make_gateway(MOCK, [{"name": "lonely", "served_entities": [entity("error-500")]},
                                   {"name": "pair", "served_entities": [entity("error-500")],
                                    "fallbacks": [entity("error-503")]}])
    assert (await chat(gw, model="lonely"))[0] == 500 and (await chat(gw, model="pair"))[0] == 503
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url("/metrics")) as r:
            text = await r.text()
    assert 'gateway_fallbacks_total{endpoint="lonely"' not in text
    assert 'gateway_fallbacks_total{endpoint="pair",reason="upstream_500"} 1.0' in text
    assert 'gateway_fallbacks_total{endpoint="pair",reason="upstream_503"}' not in text


def test_a_caller_deadline_beyond_the_timeouts_leaves_them_as_they_are():
    from gateway.config import Timeouts
    from gateway.pipeline.routing import _cut

    t = Timeouts()
    assert _cut(t, None) is t and _cut(t, 599.5) is t  # an SDK's own 600 s, slightly spent
    cut = _cut(t, 30.04)
    assert (cut.connect, cut.first_byte, cut.total) == (10.0, 30.0, 30.0)
    assert _cut(t, 30.01) is cut  # the same cut on the 0.1 s grid, so timeouts built from it are reused
