"""Agent apps (``model="apps/<name>"``) through the gateway over real HTTP, with the openai
SDK and the MLflow deployments client, against fake agents that record what they got."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import openai
import pytest

from tests.agent_upstreams import AGENT_KEY, TRACE, chat_agent_app, responses_agent_app, sse_data
from tests.conftest import OTHER_TOKEN, TOKEN
from tests.upstreams import Recorder

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def start_agent(aiohttp_server):  # type: ignore[no-untyped-def]
    async def start(app_factory=responses_agent_app):  # type: ignore[no-untyped-def]
        rec = Recorder()
        server = await aiohttp_server(app_factory(rec))
        return rec, str(server.make_url("")).rstrip("/")
    return start


@pytest.fixture
async def agents(make_gateway, start_agent):  # type: ignore[no-untyped-def]
    """A gateway with a Responses agent ``apps/support`` and a Chat agent ``apps/chatty``."""
    responses_rec, responses_url = await start_agent()
    chat_rec, chat_url = await start_agent(chat_agent_app)
    gw = await make_gateway(
        {"support-app": {"kind": "agent_app", "base_url": responses_url, "api_key": AGENT_KEY},
         "chatty-app": {"kind": "agent_app", "base_url": chat_url, "api": "chat_completions",
                        "headers": {"x-agent-key": AGENT_KEY}}},
        [],
        apps=[{"name": "support", "provider": "support-app"},
              {"name": "chatty", "provider": "chatty-app"},
              {"name": "limited", "provider": "chatty-app", "permissions": [{"principal": "alice@example.com"}],
               "rate_limits": [{"key": "user", "qpm": 2}]}],
    )
    return gw, responses_rec, chat_rec


def client(gw, token: str = TOKEN, path: str = "/mlflow/v1") -> openai.AsyncOpenAI:  # type: ignore[no-untyped-def]
    return openai.AsyncOpenAI(base_url=gw.url(path), api_key=token, max_retries=0)


def assert_app_credentials_only(request: dict, header: str = "authorization", value: str = f"Bearer {AGENT_KEY}") -> None:
    """The app saw its own credentials from the configuration, and nothing of the caller's token."""
    assert headers_of(request)[header] == value
    assert TOKEN not in json.dumps(request)


def headers_of(request: dict) -> dict[str, str]:
    return {k.lower(): v for k, v in request["headers"].items()}


async def test_responses_caller_is_relayed_with_its_agent_fields_and_gets_the_apps_own_back(agents):
    gw, rec, _ = agents
    reply = await client(gw).responses.create(
        model="apps/support", input=HI,
        extra_body={"custom_inputs": {"user_tier": "gold"}, "databricks_options": {"return_trace": True},
                    "context": {"conversation_id": "c-1", "user_id": "u-1"}})
    sent = rec.last
    assert sent["path"] == "/responses"
    assert sent["body"] == {"model": "apps/support", "input": HI, "custom_inputs": {"user_tier": "gold"},
                            "databricks_options": {"return_trace": True},
                            "context": {"conversation_id": "c-1", "user_id": "u-1"}}
    assert_app_credentials_only(sent)
    assert reply.output_text == "Agent heard: hi"
    extra = reply.model_extra or {}
    assert extra["custom_outputs"] == {"echo": {"user_tier": "gold"}, "thread": "t-7"}
    assert extra["databricks_output"]["trace"] == TRACE
    assert reply.id == "resp_agent"  # the app's own body, not one the gateway made


async def test_a_relayed_stream_reaches_the_caller_byte_for_byte(agents):
    gw, rec, _ = agents
    body = {"model": "apps/support", "input": HI, "stream": True, "custom_inputs": {"k": 1},
            "databricks_options": {"return_trace": True}}
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url("/serving-endpoints/responses"), json=body,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200 and r.headers["content-type"].startswith("text/event-stream")
            raw = await r.read()
    events = sse_data(raw)
    assert [e["delta"] for e in events if isinstance(e, dict) and e.get("type") == "response.output_text.delta"] == \
        ["Agent", " heard:", " hi"]
    assert events[-3]["custom_outputs"] == {"echo": {"k": 1}, "thread": "t-7"}
    assert events[-2] == {"databricks_output": {"trace": TRACE, "databricks_request_id": "req-1"}}
    assert events[-1] == "[DONE]"
    assert rec.last["body"] == body
    assert_app_credentials_only(rec.last)
    rows = await gw.usage_rows(1)
    assert rows[-1]["endpoint"] == "apps/support" and rows[-1]["streaming"] == 1 and rows[-1]["status_code"] == 200
    assert rows[-1]["output_tokens"] > 0 and rows[-1]["tokens_estimated"] == 1


async def test_chat_caller_of_a_responses_app_is_translated_with_its_fields_both_ways(agents):
    gw, rec, _ = agents
    reply = await client(gw, path="/v1").chat.completions.create(
        model="apps/support", messages=[{"role": "system", "content": "be brief"}, *HI],
        extra_body={"custom_inputs": {"user_tier": "gold"}, "databricks_options": {"return_trace": True}})
    sent = rec.last["body"]
    assert sent["model"] == "apps/support" and sent["instructions"] == "be brief"
    assert sent["input"] == [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    assert sent["custom_inputs"] == {"user_tier": "gold"} and sent["databricks_options"] == {"return_trace": True}
    assert_app_credentials_only(rec.last)
    assert reply.choices[0].message.content == "Agent heard: hi"
    assert reply.model == "apps/support"
    extra = reply.model_extra or {}
    assert extra["custom_outputs"]["echo"] == {"user_tier": "gold"}
    assert extra["databricks_output"]["trace"] == TRACE


async def test_chat_stream_of_a_responses_app_carries_custom_outputs_on_the_finish_chunk(agents):
    gw, rec, _ = agents
    stream = await client(gw).chat.completions.create(model="apps/support", messages=HI, stream=True,
                                                      extra_body={"custom_inputs": {"k": 2}})
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Agent heard: hi"
    finish = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    assert finish.choices[0].finish_reason == "stop"
    assert (finish.model_extra or {})["custom_outputs"] == {"echo": {"k": 2}, "thread": "t-7"}
    assert rec.last["body"]["stream"] is True


async def test_the_agents_own_tool_steps_are_not_handed_to_a_chat_caller(agents):
    gw, _, _ = agents
    oai = client(gw)
    done = await oai.chat.completions.create(model="apps/support", messages=HI,
                                             extra_body={"custom_inputs": {"mode": "tool-step"}})
    assert done.choices[0].message.content == "Agent heard: hi"
    assert done.choices[0].message.tool_calls is None and done.choices[0].finish_reason == "stop"
    streamed = [c async for c in await oai.chat.completions.create(
        model="apps/support", messages=HI, stream=True, extra_body={"custom_inputs": {"mode": "tool-step"}})]
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in streamed)
    # A call without an output is the caller's to run.
    for stream in (False, True):
        reply = await oai.chat.completions.create(model="apps/support", messages=HI, stream=stream,
                                                  extra_body={"custom_inputs": {"mode": "client-tool"}})
        if stream:
            chunks = [c async for c in reply]
            calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()]
            assert calls[0].function.name == "get_weather" and calls[0].id == "call_user"
            assert next(c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason) \
                == "tool_calls"
        else:
            assert reply.choices[0].message.tool_calls[0].function.arguments == '{"city": "Paris"}'
            assert reply.choices[0].finish_reason == "tool_calls"


async def test_responses_caller_of_a_chat_app_is_translated_and_chat_callers_are_relayed(agents):
    gw, _, chat_rec = agents
    oai = client(gw)
    reply = await oai.responses.create(model="apps/chatty", input="hello", extra_body={"custom_inputs": {"a": 1}})
    sent = chat_rec.last
    assert sent["path"] == "/chat/completions" and headers_of(sent)["x-agent-key"] == AGENT_KEY
    assert "authorization" not in headers_of(sent) and TOKEN not in json.dumps(sent)
    assert sent["body"]["messages"] == [{"role": "user", "content": "hello"}]
    assert sent["body"]["custom_inputs"] == {"a": 1}
    assert reply.output_text == "Chat agent heard: hello"
    assert (reply.model_extra or {})["custom_outputs"]["echo"] == {"a": 1}
    # Streamed, the Response the stream completes with carries the app's fields.
    events = [e async for e in await oai.responses.create(model="apps/chatty", input="hello", stream=True,
                                                          extra_body={"custom_inputs": {"a": 2}})]
    assert events[-1].type == "response.completed"
    assert (events[-1].response.model_extra or {})["custom_outputs"]["echo"] == {"a": 2}
    # A Chat Completions caller goes as it came: nothing added (no stream_options).
    chunks = [c async for c in await oai.chat.completions.create(
        model="apps/chatty", messages=HI, stream=True, extra_body={"custom_inputs": {"b": 3}})]
    assert chat_rec.last["body"] == {"model": "apps/chatty", "messages": HI, "stream": True, "custom_inputs": {"b": 3}}
    assert (chunks[-1].model_extra or {})["custom_outputs"]["echo"] == {"b": 3}


async def test_unknown_app_is_404_in_the_callers_shape(agents):
    gw, _, _ = agents
    with pytest.raises(openai.NotFoundError) as err:
        await client(gw).responses.create(model="apps/nope", input="hi")
    assert err.value.body["message"] == "App 'nope' does not exist"
    async with aiohttp.ClientSession() as s:
        async with s.post(gw.url("/serving-endpoints/apps/nope/invocations"), json={"input": HI},
                          headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 404
            assert (await r.json())["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # apps/ is a namespace of its own: an endpoint's name does not resolve under it, nor an app's bare name.
    with pytest.raises(openai.NotFoundError):
        await client(gw).chat.completions.create(model="support", messages=HI)


async def test_permissions_and_rate_limits_govern_an_app_as_an_endpoint(agents):
    gw, _, _ = agents
    with pytest.raises(openai.PermissionDeniedError):
        await client(gw, OTHER_TOKEN).chat.completions.create(model="apps/limited", messages=HI)
    oai = client(gw)
    for _ in range(2):
        await oai.chat.completions.create(model="apps/limited", messages=HI)
    with pytest.raises(openai.RateLimitError) as err:
        await oai.chat.completions.create(model="apps/limited", messages=HI)
    assert err.value.response.headers["retry-after"]
    rows = await gw.usage_rows(4)
    assert [(r["endpoint"], r["requester"], r["status_code"]) for r in rows] == [
        ("apps/limited", "bob@example.com", 403), ("apps/limited", "alice@example.com", 200),
        ("apps/limited", "alice@example.com", 200), ("apps/limited", "alice@example.com", 429)]
    assert rows[1]["provider"] == "chatty-app" and rows[1]["provider_model"] == "apps/limited"
    models = await oai.models.list()
    assert {"apps/support", "apps/chatty", "apps/limited"} <= {m.id for m in models.data}
    assert "apps/limited" not in {m.id for m in (await client(gw, OTHER_TOKEN).models.list()).data}


async def test_usage_rows_tags_and_metrics_name_the_app(agents):
    gw, _, _ = agents
    oai = openai.AsyncOpenAI(base_url=gw.url("/mlflow/v1"), api_key=TOKEN, max_retries=0,
                             default_headers={"Databricks-Ai-Gateway-Request-Tags": '{"team": "support"}'})
    await oai.responses.create(model="apps/support", input="hi")
    row = (await gw.usage_rows(1))[-1]
    assert row["endpoint"] == "apps/support" and row["api_type"] == "mlflow/v1/responses"
    assert json.loads(row["request_tags"]) == {"team": "support"}
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.url("/metrics")) as r:
            text = await r.text()
    # Counters are process-wide: other tests may have counted this series too.
    assert 'gateway_requests_total{api="mlflow/v1/responses",endpoint="apps/support",status="200"}' in text
    assert 'gateway_output_tokens_total{endpoint="apps/support"}' in text


@pytest.mark.parametrize("mode,status,code", [
    ("fail-500", 500, "upstream_500"), ("fail-404", 502, "upstream_error"), ("garbage", 502, "upstream_invalid_response"),
])
async def test_app_failures_are_gateway_errors_in_the_callers_shape(agents, mode, status, code):
    gw, _, _ = agents
    with pytest.raises(openai.APIStatusError) as err:
        await client(gw).chat.completions.create(model="apps/support", messages=HI,
                                                 extra_body={"custom_inputs": {"mode": mode}})
    assert err.value.status_code == status
    assert AGENT_KEY not in json.dumps(err.value.body)
    assert (await gw.usage_rows(1))[-1]["error_code"] == code


async def test_an_app_that_is_down_or_too_slow_is_502_or_504(make_gateway, start_agent, unused_tcp_port):
    _, url = await start_agent()
    gw = await make_gateway(
        {"down": {"kind": "agent_app", "base_url": f"http://127.0.0.1:{unused_tcp_port}"},
         "slow": {"kind": "agent_app", "base_url": url, "api_key": AGENT_KEY,
                  "timeouts": {"connect": 1, "first_byte": 0.3, "total": 1}}},
        [], apps=[{"name": "down", "provider": "down"}, {"name": "slow", "provider": "slow"}])
    with pytest.raises(openai.APIStatusError) as err:
        await client(gw).responses.create(model="apps/down", input="hi")
    assert err.value.status_code == 502
    with pytest.raises(openai.APIStatusError) as err:
        await client(gw).responses.create(model="apps/slow", input="hi", extra_body={"custom_inputs": {"mode": "hang"}})
    assert err.value.status_code == 504


async def test_an_error_inside_a_translated_stream_ends_it_with_an_error_event(agents):
    gw, _, _ = agents
    stream = await client(gw).chat.completions.create(model="apps/support", messages=HI, stream=True,
                                                      extra_body={"custom_inputs": {"mode": "break"}})
    with pytest.raises(openai.APIError, match="the agent's tool crashed"):
        async for _ in stream:
            pass


async def test_mlflow_deployments_client_queries_an_app_by_its_apps_name(agents, monkeypatch):
    from mlflow.deployments import get_deploy_client

    gw, rec, _ = agents
    monkeypatch.setenv("DATABRICKS_HOST", gw.url(""))
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    deploy = get_deploy_client("databricks")
    inputs = {"input": HI, "custom_inputs": {"from": "mlflow"}, "client_request_id": "cr-1"}
    reply = await asyncio.to_thread(deploy.predict, endpoint="apps/support", inputs=inputs)
    assert reply["custom_outputs"]["echo"] == {"from": "mlflow"}
    assert reply["output"][0]["content"][0]["text"] == "Agent heard: hi"
    assert rec.last["path"] == "/responses" and "client_request_id" not in rec.last["body"]
    chunks = await asyncio.to_thread(lambda: list(deploy.predict_stream(endpoint="apps/support", inputs=inputs)))
    assert chunks[-1]["custom_outputs"]["echo"] == {"from": "mlflow"}
    rows = await gw.usage_rows(2)
    assert rows[-1]["api_type"] == "serving-endpoints/apps/{app}/invocations" and rows[-1]["endpoint"] == "apps/support"
    assert json.loads(rows[-1]["request_tags"]) == {"client_request_id": "cr-1"}


async def test_an_anthropic_caller_reaches_a_responses_app_translated(agents):
    import anthropic

    gw, rec, _ = agents
    claude = anthropic.AsyncAnthropic(base_url=gw.url("/anthropic"), api_key=TOKEN, max_retries=0)
    reply = await claude.messages.create(model="apps/support", max_tokens=100, messages=HI)
    assert reply.content[0].text == "Agent heard: hi"
    assert rec.last["body"]["input"] == [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    assert "custom_inputs" not in rec.last["body"]  # Anthropic's API has no agent fields to carry


async def test_an_apps_inference_table_keeps_the_agent_fields_both_ways(make_gateway, start_agent):
    _, url = await start_agent()
    gw = await make_gateway({"a": {"kind": "agent_app", "base_url": url, "api_key": AGENT_KEY}}, [],
                            apps=[{"name": "audited", "provider": "a", "inference_table": {"enabled": True}}])
    await client(gw).responses.create(model="apps/audited", input="hi", extra_body={"custom_inputs": {"x": 1}})
    row = (await gw.inference_rows(1))[-1]
    assert row["endpoint"] == "apps/audited"
    assert json.loads(row["request"])["custom_inputs"] == {"x": 1}
    assert json.loads(row["response"])["custom_outputs"]["echo"] == {"x": 1}


@pytest.mark.parametrize("apps,providers,message", [
    ([{"name": "a/b", "provider": "ag"}], {}, r"apps\[0\]\.name: 'a/b' may only contain"),
    ([{"name": "a", "provider": "ag"}, {"name": "a", "provider": "ag"}], {}, r"apps\[1\]\.name: duplicate app 'a'"),
    ([{"name": "a", "provider": "nope"}], {}, r"apps\[0\]\.provider: unknown provider 'nope'"),
    ([{"name": "a", "provider": "m"}], {"m": {"kind": "mock"}}, r"apps\[0\]\.provider: 'm' is of kind 'mock'"),
    ([], {"m": {"kind": "mock", "api": "responses"}}, r"providers\.m\.api: only for kind 'agent_app'"),
    ([], {"x": {"kind": "agent_app"}}, r"providers\.x\.base_url: required for kind 'agent_app'"),
])
def test_app_configuration_is_checked(apps, providers, message):
    from gateway.config import ConfigError, parse_config

    raw = {"providers": {"ag": {"kind": "agent_app", "base_url": "http://a"}, **providers}, "apps": apps}
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, env={})


def test_agent_apps_wait_longer_than_models_unless_told_otherwise():
    from gateway.config import AGENT_TIMEOUTS, Timeouts, parse_config

    cfg = parse_config({"providers": {
        "slow": {"kind": "agent_app", "base_url": "http://a"},
        "set": {"kind": "agent_app", "base_url": "http://a", "timeouts": {"first_byte": 30}},
        "model": {"kind": "openai_compatible", "base_url": "http://m"}}}, env={})
    assert cfg.providers["slow"].timeouts == AGENT_TIMEOUTS and AGENT_TIMEOUTS.first_byte > Timeouts().first_byte
    assert cfg.providers["set"].timeouts == Timeouts(first_byte=30)
    assert cfg.providers["model"].timeouts == Timeouts()


async def test_databricks_sdk_queries_a_chat_app_by_its_apps_name(agents):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

    gw, _, chat_rec = agents

    def run():  # type: ignore[no-untyped-def]
        w = WorkspaceClient(host=gw.url(""), token=TOKEN, auth_type="pat")
        return w.serving_endpoints.query(name="apps/chatty", client_request_id="sdk-1",
                                         messages=[ChatMessage(role=ChatMessageRole.USER, content="hello")])

    reply = await asyncio.to_thread(run)
    assert reply.choices[0].message.content == "Chat agent heard: hello"
    assert chat_rec.last["path"] == "/chat/completions" and "client_request_id" not in chat_rec.last["body"]
    assert json.loads((await gw.usage_rows(1))[-1]["request_tags"]) == {"client_request_id": "sdk-1"}


async def test_an_embeddings_endpoint_served_by_an_app_is_refused_naming_it(make_gateway, start_agent):
    rec, url = await start_agent()
    gw = await make_gateway({"a": {"kind": "agent_app", "base_url": url}},
                            [{"name": "emb", "task": "embeddings", "served_entities": [{"provider": "a", "model": "x"}]}])
    with pytest.raises(openai.BadRequestError, match="is an agent app and does not compute embeddings"):
        await client(gw).embeddings.create(model="emb", input="hi")
    assert rec.requests == []
