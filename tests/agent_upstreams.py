"""Fake agent apps and a fake Azure OpenAI, on real sockets, recording what they got.

The Responses agent behaves like MLflow's agent server: its stream is bare ``data:`` events
(text deltas, then each item whole in ``response.output_item.done``, ``custom_outputs`` on
an event of its own, ``data: [DONE]``) and an error mid-stream is ``{"error": "..."}``.
``custom_inputs.mode`` picks the behaviour: ``ok``, ``fail-<status>``, ``hang``,
``tool-step`` (the agent ran a tool itself: call, output, answer), ``client-tool`` (a call
for the caller to run), ``break`` (an error event after some text).

The Azure fake serves the deployments URLs (``api-version`` required) and the v1 API; the
deployment name picks the behaviour: ``ok``, ``filtered`` (content-filter 400), ``fail-<status>``.
"""

from __future__ import annotations

import json

from aiohttp import web

from tests.upstreams import Recorder, _failure, _record, _sse, _stream

AGENT_KEY = "agent-app-secret"
AZURE_KEY = "azure-key-0123"
TRACE = {"info": {"trace_id": "tr-agent-1", "state": "OK"}, "data": {"spans": [{"name": "agent"}]}}


def _last_user_text(body: dict) -> str:
    if "messages" in body:
        return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
    content = next(i["content"] for i in reversed(items) if i.get("role") == "user")
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def _agent_outputs(body: dict) -> dict:
    """What every reply carries: the caller's custom_inputs echoed, and a trace when asked for."""
    out: dict = {"custom_outputs": {"echo": body.get("custom_inputs"), "thread": "t-7"}}
    if (body.get("databricks_options") or {}).get("return_trace"):
        out["databricks_output"] = {"trace": TRACE, "databricks_request_id": "req-1"}
    return out


def _message(item_id: str, text: str) -> dict:
    return {"type": "message", "id": item_id, "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def responses_agent_app(rec: Recorder, *, key: str = AGENT_KEY) -> web.Application:
    async def responses(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        _record(rec, request, body)
        if request.headers.get("authorization") != f"Bearer {key}":
            return web.json_response({"error": "unauthorized"}, status=401)
        mode = (body.get("custom_inputs") or {}).get("mode", "ok")
        if (fail := await _failure(mode, rec)) is not None:
            return fail
        answer = f"Agent heard: {_last_user_text(body)}"
        output: list[dict] = []
        if mode == "tool-step":
            output += [{"type": "function_call", "id": "fc_1", "call_id": "call_lookup", "name": "lookup",
                        "arguments": '{"q": "x"}'},
                       {"type": "function_call_output", "call_id": "call_lookup", "output": "42"}]
        if mode == "client-tool":
            output.append({"type": "function_call", "id": "fc_2", "call_id": "call_user", "name": "get_weather",
                           "arguments": '{"city": "Paris"}'})
        else:
            output.append(_message("msg_1", answer))
        if not body.get("stream"):
            return web.json_response({"id": "resp_agent", "object": "response", "status": "completed",
                                      "output": output, **_agent_outputs(body)})
        extra = _agent_outputs(body)
        events = []
        for n, item in enumerate(output):
            if item["type"] == "message":
                events += [_sse({"type": "response.output_text.delta", "item_id": item["id"],
                                 "delta": (" " if i else "") + w}) for i, w in enumerate(answer.split(" "))]
                if mode == "break":
                    events.append(_sse({"error": "the agent's tool crashed"}))
                    break
            done = {"type": "response.output_item.done", "item": item}
            if n == len(output) - 1:
                done["custom_outputs"] = extra["custom_outputs"]
            events.append(_sse(done))
        else:
            if "databricks_output" in extra:
                events.append(_sse({"databricks_output": extra["databricks_output"]}))
        events.append(b"data: [DONE]\n\n")
        return await _stream(request, rec, events, cut=False)

    app = web.Application()
    app.router.add_post("/responses", responses)
    return app


def chat_agent_app(rec: Recorder, *, header: str = "x-agent-key", key: str = AGENT_KEY) -> web.Application:
    """An agent that serves Chat Completions and authenticates with a header of its own."""

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        _record(rec, request, body)
        if request.headers.get(header) != key:
            return web.json_response({"error": {"message": "unauthorized"}}, status=401)
        answer = f"Chat agent heard: {_last_user_text(body)}"
        extra = _agent_outputs(body)
        if not body.get("stream"):
            return web.json_response({"id": "chatcmpl-agent", "object": "chat.completion", "created": 1,
                                      "model": body["model"], "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": answer}}], **extra})
        base = {"id": "chatcmpl-agent", "object": "chat.completion.chunk", "created": 1, "model": body["model"]}
        events = [_sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": w + " "}}]})
                  for w in answer.split(" ")]
        events.append(_sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], **extra}))
        events.append(b"data: [DONE]\n\n")
        return await _stream(request, rec, events, cut=False)

    app = web.Application()
    app.router.add_post("/chat/completions", chat)
    return app


FILTERED = {"error": {
    "code": "content_filter", "status": 400, "param": "prompt",
    "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
    "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
        "hate": {"filtered": True, "severity": "medium"}, "self_harm": {"filtered": False, "severity": "safe"},
        "sexual": {"filtered": False, "severity": "safe"}, "violence": {"filtered": False, "severity": "safe"}}},
}}


def azure_app(rec: Recorder) -> web.Application:
    def denied(request: web.Request, deployment: str | None) -> web.Response | None:
        if deployment is not None and "api-version" not in request.query:
            return web.json_response({"error": {"code": "404", "message": "Resource not found"}}, status=404)
        if request.headers.get("api-key") != AZURE_KEY and request.headers.get("authorization") != "Bearer entra-tok":
            return web.json_response({"error": {"code": "401", "message": "Access denied due to invalid subscription "
                                                 "key or wrong API endpoint."}}, status=401)
        return None

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        _record(rec, request, body)
        deployment = request.match_info.get("deployment")
        if (refused := denied(request, deployment)) is not None:
            return refused
        name = deployment or body["model"]
        if name == "filtered":
            return web.json_response(FILTERED, status=400)
        if (fail := await _failure(name, rec)) is not None:
            return fail
        usage = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
        if not body.get("stream"):
            return web.json_response({"id": "chatcmpl-az", "object": "chat.completion", "created": 1, "model": "gpt-4o",
                                      "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
                                      "choices": [{"index": 0, "finish_reason": "stop", "content_filter_results": {},
                                                   "message": {"role": "assistant", "content": "Hello from Azure"}}],
                                      "usage": usage})
        base = {"id": "chatcmpl-az", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
        events = [
            # Azure opens a stream with the prompt's filter results and no choices.
            _sse({"id": "", "object": "", "created": 0, "model": "", "choices": [],
                  "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}),
            _sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello"}}]}),
            _sse({**base, "choices": [{"index": 0, "delta": {"content": " from Azure"}}]}),
            _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        ]
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(_sse({**base, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")
        return await _stream(request, rec, events, cut=False)

    async def embeddings(request: web.Request) -> web.Response:
        body = await request.json()
        _record(rec, request, body)
        if (refused := denied(request, request.match_info.get("deployment"))) is not None:
            return refused
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.json_response({"object": "list", "model": "text-embedding-3-small",
                                  "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2]}
                                           for i in range(len(inputs))],
                                  "usage": {"prompt_tokens": 3, "total_tokens": 3}})

    async def responses(request: web.Request) -> web.Response:
        body = await request.json()
        _record(rec, request, body)
        if (refused := denied(request, None)) is not None:
            return refused
        return web.json_response({
            "id": "resp_az", "object": "response", "created_at": 1, "model": body["model"], "status": "completed",
            "output": [_message("msg_az", "Hello from Azure Responses")], "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [], "error": None, "incomplete_details": None, "instructions": None,
            "metadata": {}, "temperature": 1.0, "top_p": 1.0, "text": {"format": {"type": "text"}},
            "usage": {"input_tokens": 5, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 4,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 9},
        })

    app = web.Application()
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", chat)
    app.router.add_post("/openai/deployments/{deployment}/embeddings", embeddings)
    app.router.add_post("/openai/v1/chat/completions", chat)
    app.router.add_post("/openai/v1/embeddings", embeddings)
    app.router.add_post("/openai/v1/responses", responses)
    return app


def sse_data(raw: bytes) -> list[dict | str]:
    """The data of each SSE event in ``raw``, JSON-decoded where it is JSON."""
    out: list[dict | str] = []
    for block in raw.decode().split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                data = line[6:]
                out.append(data if data == "[DONE]" else json.loads(data))
    return out
