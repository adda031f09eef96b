"""Fake providers for tests: OpenAI, Anthropic and Gemini wire formats on a real socket.

Each records what the gateway sent (path, headers, JSON body). The provider model name
picks the behaviour: ``ok`` (text), ``tool`` (one call), ``parallel`` (two calls),
``fail-<status>``, ``garbage`` (invalid JSON), ``hang`` (never answers), ``cut`` (stream
breaks off), ``no-usage`` (reports no usage), ``slow-stream`` (OpenAI: 400 chunks, 20 ms apart),
``agent-<Tool>`` (a coding agent's turn: see tests/agent_scenario.py), ``say-<words>`` (replies
those words, ``_`` for spaces), ``judge`` (OpenAI: a guardrail judge answering BLOCK when the
text it is shown says "forbidden", else ALLOW).
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from tests import agent_scenario
from tests.agent_scenario import plan, tool_wanted

UPSTREAM_KEY = "sk-upstream-secret"


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.cancelled = asyncio.Event()

    @property
    def last(self) -> dict:
        return self.requests[-1]


def _record(rec: Recorder, request: web.Request, body: dict) -> None:
    rec.requests.append({
        "path": request.path, "query": dict(request.query), "headers": dict(request.headers), "body": body,
    })


async def _failure(model: str, rec: Recorder) -> web.Response | None:
    if model.startswith("fail-"):
        status = int(model[5:])
        headers = {"retry-after": "3"} if status == 429 else {}
        return web.json_response({"error": {"message": f"upstream says {status}", "type": "x"}}, status=status,
                                 headers=headers)
    if model == "garbage":
        return web.Response(body=b"{not json", content_type="application/json")
    if model == "hang":
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            rec.cancelled.set()
            raise
    return None


def _reply_text(model: str, default: str) -> str:
    return model[4:].replace("_", " ") if model.startswith("say-") else default


def _judge_answer(body: dict) -> str:
    shown = json.dumps([m.get("content") for m in body["messages"] if m["role"] == "user"])
    return "BLOCK" if "forbidden" in shown else "ALLOW"


def _sse(obj: dict | str, event: str | None = None) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj)
    return (f"event: {event}\n" if event else "").encode() + f"data: {data}\n\n".encode()


async def _stream(request: web.Request, rec: Recorder, events: list[bytes], cut: bool,
                  pace: float = 0.0) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await resp.prepare(request)
    try:
        for i, ev in enumerate(events):
            if cut and i == len(events) // 2:
                request.transport.close()  # type: ignore[union-attr]
                return resp
            if pace and i:
                await asyncio.sleep(pace)
            await resp.write(ev)
        await resp.write_eof()
    except (asyncio.CancelledError, ConnectionResetError):
        rec.cancelled.set()  # the gateway dropped us: what a dropped client must cause
        raise
    return resp


# ---- OpenAI -------------------------------------------------------------------------------

def openai_app(rec: Recorder, *, key: str = UPSTREAM_KEY) -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        _record(rec, request, body)
        if request.headers.get("authorization") != f"Bearer {key}":
            return web.json_response({"error": {"message": "bad key sk-up***"}}, status=401)
        model = body["model"]
        if (fail := await _failure(model, rec)) is not None:
            return fail
        usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
                 "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 2}}
        reply_text = _judge_answer(body) if model == "judge" else _reply_text(model, "Hello from OpenAI")
        if tool_wanted(model):
            kind, payload = plan(agent_scenario.openai_chat, body, model)
            if kind == "call":
                message = {"role": "assistant", "content": None, "tool_calls": [{"id": "call_agent", "type": "function",
                           "function": {"name": tool_wanted(model), "arguments": json.dumps(payload)}}]}
                finish = "tool_calls"
            else:
                reply_text = str(payload)
                message, finish = {"role": "assistant", "content": reply_text}, "stop"
        elif model == "tool":
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": reply_text}
            finish = "stop"
        if not body.get("stream"):
            out = {"id": "chatcmpl-up", "object": "chat.completion", "created": 1, "model": model,
                   "choices": [{"index": 0, "message": message, "finish_reason": finish}]}
            if model != "no-usage":
                out["usage"] = usage
            return web.json_response(out)
        base = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": model}
        events = [_sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
        if message.get("tool_calls"):
            for i, call in enumerate(message["tool_calls"]):
                args = call["function"]["arguments"]
                events.append(_sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": i, "id": call["id"],
                                    "type": "function", "function": {"name": call["function"]["name"], "arguments": args[:5]}}]}}]}))
                events.append(_sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": i,
                                    "function": {"arguments": args[5:]}}]}}]}))
        else:
            words = reply_text.split(" ") if model != "slow-stream" else [f"w{i}" for i in range(400)]
            events += [_sse({**base, "choices": [{"index": 0, "delta": {"content": (" " if i else "") + w}}]})
                       for i, w in enumerate(words)]
        events.append(_sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}))
        if (body.get("stream_options") or {}).get("include_usage") and model != "no-usage":
            events.append(_sse({**base, "choices": [], "usage": usage}))
        events.append(b"data: [DONE]\n\n")
        return await _stream(request, rec, events, cut=model == "cut", pace=0.02 if model == "slow-stream" else 0.0)

    async def embeddings(request: web.Request) -> web.Response:
        body = await request.json()
        _record(rec, request, body)
        if (fail := await _failure(body["model"], rec)) is not None:
            return fail
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.json_response({"object": "list", "model": body["model"],
                                  "data": [{"object": "embedding", "index": i, "embedding": [0.5, -0.5]} for i in range(len(inputs))],
                                  "usage": {"prompt_tokens": 5, "total_tokens": 5}})

    async def responses(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        _record(rec, request, body)
        model = body["model"]
        if (fail := await _failure(model, rec)) is not None:
            return fail
        usage = {"input_tokens": 12, "input_tokens_details": {"cached_tokens": 2}, "output_tokens": 6,
                 "output_tokens_details": {"reasoning_tokens": 1}, "total_tokens": 18}
        reply_text, call_item = _reply_text(model, "Hello from OpenAI"), None
        if tool_wanted(model):
            kind, payload = plan(agent_scenario.responses, body, model)
            if kind == "call":
                call_item = {"id": "fc_agent", "type": "function_call", "call_id": "call_agent", "status": "completed",
                             "name": tool_wanted(model), "arguments": json.dumps(payload)}
            else:
                reply_text = str(payload)
        message = {"id": "msg_up", "type": "message", "role": "assistant", "status": "completed",
                   "content": [{"type": "output_text", "text": reply_text, "annotations": []}]}
        response = {"id": "resp_up", "object": "response", "created_at": 1, "model": model, "status": "completed",
                    "output": [call_item or message], "usage": usage, "parallel_tool_calls": True, "tool_choice": "auto",
                    "tools": [], "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
                    "temperature": 1.0, "top_p": 1.0, "text": {"format": {"type": "text"}}}
        if not body.get("stream"):
            return web.json_response(response)
        seq = iter(range(100))
        events = [_sse({"type": "response.created", "sequence_number": next(seq),
                        "response": {**response, "status": "in_progress", "output": [], "usage": None}}, "response.created")]
        if call_item is not None:
            events.append(_sse({"type": "response.output_item.added", "sequence_number": next(seq), "output_index": 0,
                                "item": {**call_item, "status": "in_progress", "arguments": ""}}, "response.output_item.added"))
            events.append(_sse({"type": "response.function_call_arguments.delta", "sequence_number": next(seq),
                                "item_id": "fc_agent", "output_index": 0, "delta": call_item["arguments"]},
                               "response.function_call_arguments.delta"))
            events.append(_sse({"type": "response.function_call_arguments.done", "sequence_number": next(seq),
                                "item_id": "fc_agent", "output_index": 0, "arguments": call_item["arguments"],
                                "name": call_item["name"]}, "response.function_call_arguments.done"))
            events.append(_sse({"type": "response.output_item.done", "sequence_number": next(seq), "output_index": 0,
                                "item": call_item}, "response.output_item.done"))
            events.append(_sse({"type": "response.completed", "sequence_number": next(seq), "response": response}, "response.completed"))
            return await _stream(request, rec, events, cut=False)
        events.append(_sse({"type": "response.output_item.added", "sequence_number": next(seq), "output_index": 0,
                            "item": {**message, "status": "in_progress", "content": []}}, "response.output_item.added"))
        events.append(_sse({"type": "response.content_part.added", "sequence_number": next(seq), "item_id": "msg_up",
                            "output_index": 0, "content_index": 0,
                            "part": {"type": "output_text", "text": "", "annotations": []}}, "response.content_part.added"))
        for i, word in enumerate(reply_text.split(" ")):
            word = (" " if i else "") + word
            events.append(_sse({"type": "response.output_text.delta", "sequence_number": next(seq), "item_id": "msg_up",
                                "output_index": 0, "content_index": 0, "delta": word, "logprobs": []}, "response.output_text.delta"))
        events.append(_sse({"type": "response.completed", "sequence_number": next(seq), "response": response}, "response.completed"))
        return await _stream(request, rec, events, cut=False)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/v1/responses", responses)
    return app


# ---- Anthropic ----------------------------------------------------------------------------

def anthropic_app(rec: Recorder) -> web.Application:
    async def messages(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        _record(rec, request, body)
        model = body["model"]
        if (fail := await _failure(model, rec)) is not None:
            return fail
        usage = {"input_tokens": 20, "output_tokens": 9, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 1}
        if tool_wanted(model):
            kind, payload = plan(agent_scenario.anthropic, body, model)
            if kind == "call":
                content = [{"type": "tool_use", "id": "toolu_agent", "name": tool_wanted(model), "input": payload}]
                stop = "tool_use"
            else:
                content, stop = [{"type": "text", "text": str(payload)}], "end_turn"
        elif model in ("tool", "parallel"):
            calls = [("toolu_1", "get_weather", {"city": "Paris"})]
            if model == "parallel":
                calls.append(("toolu_2", "get_time", {"zone": "CET"}))
            content = [{"type": "text", "text": "Let me check."}] + [
                {"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in calls]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": _reply_text(model, "Hello from Claude")}]
            stop = "max_tokens" if body.get("max_tokens") == 3 else "end_turn"
        if not body.get("stream"):
            return web.json_response({"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                                      "content": content, "stop_reason": stop, "usage": usage})
        events = [_sse({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                                              "model": model, "content": [], "usage": {**usage, "output_tokens": 1}}}, "message_start")]
        for i, block in enumerate(content):
            if block["type"] == "text":
                events.append(_sse({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}, "content_block_start"))
                for word in block["text"].split(" "):
                    events.append(_sse({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": word + " "}}, "content_block_delta"))
            else:
                events.append(_sse({"type": "content_block_start", "index": i, "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}, "content_block_start"))
                args = json.dumps(block["input"])
                for piece in (args[: len(args) // 2], args[len(args) // 2:]):
                    events.append(_sse({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": piece}}, "content_block_delta"))
            events.append(_sse({"type": "content_block_stop", "index": i}, "content_block_stop"))
        events.append(_sse({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 9}}, "message_delta"))
        events.append(_sse({"type": "message_stop"}, "message_stop"))
        return await _stream(request, rec, events, cut=model == "cut")

    async def count_tokens(request: web.Request) -> web.Response:
        body = await request.json()
        _record(rec, request, body)
        return web.json_response({"input_tokens": 42})

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    return app


# ---- Gemini -------------------------------------------------------------------------------

def gemini_app(rec: Recorder) -> web.Application:
    async def generate(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        _record(rec, request, body)
        model, _, method = request.match_info["call"].partition(":")
        if (fail := await _failure(model, rec)) is not None:
            return fail
        usage = {"promptTokenCount": 15, "candidatesTokenCount": 6, "thoughtsTokenCount": 2,
                 "cachedContentTokenCount": 5, "totalTokenCount": 23}
        if method == "countTokens":
            return web.json_response({"totalTokens": 42})
        if method == "batchEmbedContents":
            return web.json_response({"embeddings": [{"values": [0.25, 0.75]} for _ in body["requests"]]})
        calls = False
        if tool_wanted(model):
            kind, payload = plan(agent_scenario.gemini, body, model)
            calls = kind == "call"
            parts = [{"functionCall": {"name": tool_wanted(model), "args": payload}}] if calls else [{"text": str(payload)}]
        elif model in ("tool", "parallel"):
            calls = True
            parts = [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnLTE="}]
            if model == "parallel":
                parts.append({"functionCall": {"name": "get_time", "args": {"zone": "CET"}}})
        else:
            parts = [{"text": _reply_text(model, "Hello from Gemini")}]
        finish = "MAX_TOKENS" if body.get("generationConfig", {}).get("maxOutputTokens") == 3 else "STOP"
        if method == "generateContent":
            return web.json_response({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish}],
                                      "usageMetadata": usage, "responseId": "resp-1", "modelVersion": model})
        chunks = []
        if calls:
            chunks.append({"candidates": [{"content": {"role": "model", "parts": parts}}]})
        else:
            words = parts[0]["text"].split(" ")
            chunks += [{"candidates": [{"content": {"role": "model", "parts": [{"text": (" " if i else "") + w}]}}]}
                       for i, w in enumerate(words)]
        chunks.append({"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": finish}], "usageMetadata": usage})
        return await _stream(request, rec, [_sse(c) for c in chunks], cut=model == "cut")

    app = web.Application()
    app.router.add_post("/v1beta/models/{call}", generate)
    return app
