"""A scripted OpenAI-format upstream for batch tests: it counts requests in flight.

The provider model name picks the behaviour: ``verbatim`` (reply with the prompt itself),
``ordered`` (the prompt is a number n: wait (20 - n) * 5 ms, so later rows finish first,
then reply ``row n``), ``slow`` (wait 30 ms, then as verbatim), ``flaky`` (the first
``flaky_failures`` requests get 429 with ``Retry-After: 2``, then verbatim).
"""

from __future__ import annotations

import asyncio

from aiohttp import web


class Script:
    def __init__(self, flaky_failures: int = 0) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict] = []
        self.flaky_failures = flaky_failures


def scripted_app(script: Script) -> web.Application:
    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        script.bodies.append(body)
        prompt = body["messages"][-1]["content"]
        script.in_flight += 1
        script.max_in_flight = max(script.max_in_flight, script.in_flight)
        try:
            model = body["model"]
            if model == "flaky" and script.flaky_failures > 0:
                script.flaky_failures -= 1
                return web.json_response({"error": {"message": "slow down", "type": "rate_limit"}}, status=429,
                                         headers={"retry-after": "2"})
            if model == "ordered":
                await asyncio.sleep((20 - int(prompt)) * 0.005)
                prompt = f"row {prompt}"
            elif model == "slow":
                await asyncio.sleep(0.03)
        finally:
            script.in_flight -= 1
        return web.json_response({
            "id": "chatcmpl-batch", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": prompt}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        })

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    return app
