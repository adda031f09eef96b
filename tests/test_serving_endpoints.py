"""/serving-endpoints/{endpoint}/invocations through the MLflow deployments client and the
Databricks SDK, plus the endpoint listing."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.conftest import TOKEN, Gateway

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_databricks_sdk_queries_chat_and_embeddings(mock_gateway: Gateway):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

    def run():  # type: ignore[no-untyped-def]
        w = WorkspaceClient(host=mock_gateway.url(""), token=TOKEN, auth_type="pat")
        chat = w.serving_endpoints.query(name="mock-chat", max_tokens=50,
                                         messages=[ChatMessage(role=ChatMessageRole.USER, content="hello")])
        emb = w.serving_endpoints.query(name="mock-embeddings", input=["a", "b"])
        listed = [e.name for e in w.serving_endpoints.list()]
        return chat, emb, listed

    chat, emb, listed = await asyncio.to_thread(run)
    assert chat.choices[0].message.content == "Echo: hello"
    assert chat.usage.total_tokens > 0
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 8
    assert listed == ["mock-chat", "mock-tools", "mock-parallel", "mock-embeddings"]


async def test_mlflow_deployments_client_predicts(mock_gateway: Gateway, monkeypatch):
    from mlflow.deployments import get_deploy_client

    monkeypatch.setenv("DATABRICKS_HOST", mock_gateway.url(""))
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)

    def run():  # type: ignore[no-untyped-def]
        client = get_deploy_client("databricks")
        chat = client.predict(endpoint="mock-chat", inputs={
            "messages": [{"role": "user", "content": "hello"}], "client_request_id": "req-7",
            "usage_context": {"team": "search"}})
        completion = client.predict(endpoint="mock-chat", inputs={"prompt": "one two", "max_tokens": 10})
        chunks = list(client.predict_stream(endpoint="mock-chat", inputs={"messages": [{"role": "user", "content": "s"}]}))
        return chat, completion, chunks

    chat, completion, chunks = await asyncio.to_thread(run)
    assert chat["choices"][0]["message"]["content"] == "Echo: hello"
    assert completion["object"] == "text_completion" and completion["choices"][0]["text"] == "Echo: one two"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")) == "Echo: s"
    rows = await mock_gateway.usage_rows(3)
    assert json.loads(rows[0]["request_tags"]) == {"client_request_id": "req-7", "team": "search"}
    assert rows[0]["api_type"] == "serving-endpoints/{endpoint}/invocations"


async def test_streamed_completion_and_errors_in_databricks_shape(mock_gateway: Gateway):
    async with aiohttp.ClientSession() as s:
        url = mock_gateway.url("/serving-endpoints/mock-chat/invocations")
        async with s.post(url, headers=AUTH, json={"prompt": "a b", "stream": True}) as r:
            events = [json.loads(line[6:]) for line in (await r.text()).splitlines() if line.startswith("data: {")]
        assert "".join(c["choices"][0]["text"] for c in events if c["choices"]) == "Echo: a b"
        assert events[-1]["usage"]["completion_tokens"] > 0
        async with s.post(mock_gateway.url("/serving-endpoints/nope/invocations"), headers=AUTH,
                          json={"messages": [{"role": "user", "content": "x"}]}) as r:
            assert r.status == 404 and (await r.json())["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        async with s.post(url, headers=AUTH, json={"something": 1}) as r:
            body = await r.json()
            assert r.status == 400 and body["error_code"] == "INVALID_PARAMETER_VALUE" and "messages" in body["message"]
        async with s.post(url, headers=AUTH, data=b"{nope") as r:
            assert r.status == 400 and (await r.json())["error_code"] == "INVALID_PARAMETER_VALUE"
        async with s.get(mock_gateway.url("/api/2.0/serving-endpoints/mock-chat"), headers=AUTH) as r:
            assert (await r.json())["task"] == "llm/v1/chat"
        async with s.get(mock_gateway.url("/api/2.0/serving-endpoints/nope"), headers=AUTH) as r:
            assert r.status == 404 and (await r.json())["error_code"] == "RESOURCE_DOES_NOT_EXIST"
