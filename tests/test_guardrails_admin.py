"""Guardrails set at run time through the admin API (``PUT .../ai-gateway`` with Databricks'
``guardrails`` body), read back, stored and reloaded by a second worker; and refused, with
the path of the bad field, at config load and in the admin API."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from gateway.config import ConfigError, parse_config
from gateway.state import STORE_REFRESHER
from tests.conftest import OTHER_TOKEN, TOKEN

ADMIN = "gw-admin-token-42"
TOKENS = [
    {"principal": "alice@example.com", "token": TOKEN},
    {"principal": "bob@example.com", "token": OTHER_TOKEN},
    {"principal": "root", "token": ADMIN, "admin": True},
]
# bob may manage team-chat, but is no admin.
SEED = [{"name": "team-chat", "served_entities": [{"provider": "mock", "model": "echo"}],
         "permissions": [{"principal": "bob@example.com", "level": "CAN_MANAGE"},
                         {"principal": "alice@example.com"}]}]
PUT = "/api/2.0/serving-endpoints/team-chat/ai-gateway"


async def call(gw, method: str, path: str, token: str = ADMIN, json: dict | None = None):  # type: ignore[no-untyped-def, type-arg]
    async with aiohttp.ClientSession() as s:
        async with s.request(method, gw.url(path), json=json, headers={"Authorization": f"Bearer {token}"}) as r:
            return r.status, await r.json()


async def echo(gw, text: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    status, body = await call(gw, "POST", "/v1/chat/completions", TOKEN,
                              {"model": "team-chat", "messages": [{"role": "user", "content": text}]})
    return status, body["choices"][0]["message"]["content"] if status == 200 else body["error"]["message"]


@pytest.fixture
async def workers(make_gateway):  # type: ignore[no-untyped-def]
    quiet = {"store_refresh_s": 3600}
    return [await make_gateway({"mock": {"kind": "mock"}}, SEED, tokens=TOKENS, server=quiet) for _ in range(2)]


async def test_guardrails_round_trip_through_the_databricks_sdk(workers):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import (
        AiGatewayGuardrailParameters, AiGatewayGuardrailPiiBehavior, AiGatewayGuardrailPiiBehaviorBehavior,
        AiGatewayGuardrails,
    )

    first, second = workers
    wanted = AiGatewayGuardrails(
        input=AiGatewayGuardrailParameters(
            pii=AiGatewayGuardrailPiiBehavior(behavior=AiGatewayGuardrailPiiBehaviorBehavior.MASK),
            invalid_keywords=["falcon"]),
        output=AiGatewayGuardrailParameters(
            pii=AiGatewayGuardrailPiiBehavior(behavior=AiGatewayGuardrailPiiBehaviorBehavior.BLOCK)),
    )

    def put_and_get():  # type: ignore[no-untyped-def]
        w = WorkspaceClient(host=first.url(""), token=ADMIN, auth_type="pat")
        w.serving_endpoints.put_ai_gateway(name="team-chat", guardrails=wanted)
        return w.serving_endpoints.get("team-chat").ai_gateway.guardrails

    assert await asyncio.to_thread(put_and_get) == wanted
    assert await echo(first, "mail jane@example.com") == (200, "Echo: mail [EMAIL_ADDRESS]")
    assert await echo(first, "the Falcon plan") == (400, "Request blocked by input guardrail 'invalid_keywords'")
    # The other worker has it from the store at its next reload.
    assert (await echo(second, "mail jane@example.com"))[1] == "Echo: mail jane@example.com"
    await second.app[STORE_REFRESHER].load()
    assert (await echo(second, "mail jane@example.com"))[1] == "Echo: mail [EMAIL_ADDRESS]"
    _, described = await call(second, "GET", "/api/2.0/serving-endpoints/team-chat")
    assert described["ai_gateway"]["guardrails"] == {
        "input": {"pii": {"behavior": "MASK"}, "invalid_keywords": ["falcon"]},
        "output": {"pii": {"behavior": "BLOCK"}},
    }


async def test_other_ai_gateway_settings_keep_the_guardrails_and_an_empty_body_removes_them(workers):
    first, _ = workers
    guardrails = {"input": {"pii": {"behavior": "BLOCK"}}}
    assert (await call(first, "PUT", PUT, json={"guardrails": guardrails}))[0] == 200
    status, described = await call(first, "PUT", PUT, json={"rate_limits": [{"calls": 100}]})
    assert status == 200 and described["ai_gateway"]["guardrails"] == guardrails
    assert (await echo(first, "call 415-555-2671"))[0] == 400
    status, described = await call(first, "PUT", PUT, json={"guardrails": {}})
    assert status == 200 and "guardrails" not in described["ai_gateway"]
    assert await echo(first, "call 415-555-2671") == (200, "Echo: call 415-555-2671")


@pytest.mark.parametrize("guardrails,message", [
    ({"input": {"pii": {"behavior": "MAYBE"}}}, "guardrails.input.pii.behavior: Invalid enum value 'MAYBE'"),
    ({"input": {"safty": True}}, "guardrails.input: Object contains unknown field `safty`"),
    ({"input": {"safety": True}}, "guardrails.input.safety: needs a judge endpoint; set guardrail_judge.endpoint"),
    ({"output": {"invalid_keywords": [" "]}}, "guardrails.output.invalid_keywords[0]: must not be empty"),
    ({"input": {"patterns": [{"name": "x", "pattern": "(("}]}},
     "guardrails.input.patterns[0].pattern: not a valid regular expression"),
])
async def test_a_bad_guardrails_body_is_refused_naming_the_field(workers, guardrails, message):
    status, err = await call(workers[0], "PUT", PUT, json={"guardrails": guardrails})
    assert status == 400 and err["error_code"] == "INVALID_PARAMETER_VALUE" and message in err["message"]


async def test_only_admins_change_patterns(workers):
    first, _ = workers
    body = {"guardrails": {"input": {"patterns": [{"name": "ticket", "pattern": r"TCK-\d{4}", "behavior": "MASK"}]}}}
    status, err = await call(first, "PUT", PUT, OTHER_TOKEN, json=body)
    assert status == 403 and err["message"] == "Only admins may change guardrail patterns"
    assert (await call(first, "PUT", PUT, ADMIN, json=body))[0] == 200
    assert await echo(first, "see TCK-1234") == (200, "Echo: see [ticket]")
    # A manager may change the rest as long as the patterns stay as they are.
    keep = {"guardrails": {"input": {**body["guardrails"]["input"], "pii": {"behavior": "MASK"}}}}
    assert (await call(first, "PUT", PUT, OTHER_TOKEN, json=keep))[0] == 200
    assert (await call(first, "PUT", PUT, TOKEN, json=keep))[0] == 403  # alice may only query


BASE = {"providers": {"m": {"kind": "mock"}}}


def endpoints(*extra: dict, guardrails: dict | None = None, task: str = "chat") -> dict:  # type: ignore[type-arg]
    first = {"name": "a", "task": task, "served_entities": [{"provider": "m", "model": "echo"}]}
    if guardrails is not None:
        first["guardrails"] = guardrails
    return {**BASE, "endpoints": [first, *extra]}


JUDGE = {"name": "judge", "served_entities": [{"provider": "m", "model": "echo"}]}


@pytest.mark.parametrize("raw,message", [
    (endpoints(guardrails={"input": {"valid_topics": ["billing"]}}),
     "endpoints[0].guardrails.input.valid_topics: needs a judge endpoint; set guardrail_judge.endpoint"),
    ({**endpoints(JUDGE, guardrails={"output": {"valid_topics": ["billing"]}}),
      "guardrail_judge": {"endpoint": "judge"}},
     "endpoints[0].guardrails.output.valid_topics: topics are checked on input only"),
    ({**endpoints(), "guardrail_judge": {"endpoint": "nobody"}}, "guardrail_judge.endpoint: unknown endpoint 'nobody'"),
    (endpoints(guardrails={"input": {"pii": {"behavior": "BLOCK"}}}, task="embeddings"),
     "endpoints[0].guardrails: guardrails apply to chat endpoints only"),
    (endpoints(guardrails={"input": {"patterns": [{"name": "pii", "pattern": "x"}]}}),
     "endpoints[0].guardrails.input.patterns[0].name: 'pii' must be unique"),
    (endpoints(guardrails={"input": {"patterns": [{"name": "e", "pattern": "x*"}]}}),
     "endpoints[0].guardrails.input.patterns[0].pattern: matches the empty string"),
    (endpoints(guardrails={"output": {"pii": {"behavior": "mask"}}}),
     "endpoints[0].guardrails.output.pii.behavior: Invalid enum value 'mask'"),
    ({**endpoints(), "guardrail_judge": {"timeout_s": 0}}, "guardrail_judge.timeout_s: Expected `float` > 0.0"),
])
def test_config_errors_name_the_guardrail_field(raw, message):
    with pytest.raises(ConfigError) as err:
        parse_config(raw, env={})
    assert message in str(err.value)


def test_a_judged_configuration_loads():
    raw = {**endpoints(JUDGE, guardrails={"input": {"safety": True, "valid_topics": ["billing"]},
                                          "output": {"safety": True, "pii": {"behavior": "MASK"}}}),
           "guardrail_judge": {"endpoint": "judge", "fail_open": True}}
    cfg = parse_config(raw, env={})
    assert cfg.guardrail_judge.fail_open and cfg.endpoints[0].guardrails.output.pii.behavior == "MASK"
