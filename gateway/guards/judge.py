"""The judge: a gateway endpoint asked, in process, whether a text passes a judged check.

``safety`` and ``valid_topics`` are decided by the endpoint ``guardrail_judge.endpoint``
names. The judge is called through the gateway's own router (traffic split, fallbacks,
retries and circuit breakers of that endpoint apply; no HTTP, no token), never through the
guardrail stage, so the judge's own call cannot recurse into guardrails, and it is not
rate-limited. Each judgement leaves a usage row of its own (api ``guardrails/judge``, the
judge endpoint, the caller as requester, request id ``<request id>.judge.<stage>.<check>``
and tags naming the guarded endpoint and check), so its tokens are accounted for.

The judge is told to answer ``ALLOW`` or ``BLOCK``; the last of those words in its reply
decides. No answer in time (``guardrail_judge.timeout_s``), an error, or a reply with
neither word raises JudgeFailed: the guardrail stage then refuses the request, or lets it
through when ``fail_open`` is set.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from gateway import metrics
from gateway.config import EndpointConfig, GuardrailJudgeConfig
from gateway.errors import GatewayError, error_label
from gateway.ir import ChatRequest, Message, TextPart
from gateway.pipeline.call import Call, RequestContext
from gateway.pipeline.dispatch import translate
from gateway.pipeline.replies import ResultReply
from gateway.server.responding import record_usage

if TYPE_CHECKING:
    from gateway.guards.verdict import CheckContext
    from gateway.pipeline.routing import Router
    from gateway.sinks.writer import BatchWriter

JUDGE_API = "guardrails/judge"
_ANSWER = re.compile(r"\b(ALLOW|BLOCK)\b")


class JudgeFailed(Exception):
    """The judge gave no usable answer; the message says why and holds none of the text."""


class Judge:
    def __init__(self, config: GuardrailJudgeConfig, endpoints: Mapping[str, EndpointConfig], router: Router,
                 writer: BatchWriter) -> None:
        self.config = config
        self._endpoints = endpoints
        self._router = router
        self._writer = writer

    async def allows(self, check: str, instruction: str, texts: Sequence[str], ctx: CheckContext) -> bool:
        """Whether the judge lets ``texts`` pass ``instruction``; raises JudgeFailed."""
        name = self.config.endpoint
        endpoint = self._endpoints.get(name) if name else None
        if endpoint is None:
            raise JudgeFailed(f"the judge endpoint {name!r} does not exist")
        text = "\n\n".join(t for t in texts if t)[-self.config.max_chars:]
        request = ChatRequest(
            model=endpoint.name, system=(instruction,), temperature=0.0,
            messages=(Message("user", (TextPart(f"<text>\n{text}\n</text>"),)),),
        )
        parent = ctx.request
        jctx = RequestContext(f"{parent.request_id}.judge.{ctx.stage}.{check}", JUDGE_API, None, parent.deadline)
        jctx.principal = parent.principal
        record = jctx.record
        record.endpoint = endpoint.name
        record.requester = parent.record.requester
        record.request_tags = {"guarded_endpoint": ctx.endpoint, "guardrail": f"{ctx.stage}.{check}"}
        call = Call(jctx, endpoint, b"", stream=False, include_usage=False, decode=lambda _body: request)
        try:
            async with asyncio.timeout(self.config.timeout_s):
                reply = await self._router.route(call, translate)
            assert isinstance(reply, ResultReply)
            result = reply.result
            record.status_code = 200
            record_usage(jctx, result.usage, request.prompt_chars, result.output_chars())
        except TimeoutError:
            record.status_code, record.error_code = 504, "guardrail_judge_timeout"
            raise JudgeFailed(f"no answer within {self.config.timeout_s:g}s") from None
        except GatewayError as err:
            record.status_code, record.error_code = err.http_status, error_label(err)
            raise JudgeFailed(f"the judge endpoint failed ({error_label(err)})") from None
        finally:
            self._account(jctx)
        answers = _ANSWER.findall(" ".join(p.text for p in result.parts if isinstance(p, TextPart)))
        if not answers:
            raise JudgeFailed("the judge answered neither ALLOW nor BLOCK")
        return answers[-1] == "ALLOW"

    def _account(self, jctx: RequestContext) -> None:
        record = jctx.record
        elapsed = time.perf_counter() - jctx.started
        record.latency_ms = record.time_to_first_byte_ms = round(elapsed * 1000, 3)
        metrics.observe_request(record.endpoint or "", JUDGE_API, record.status_code, elapsed, elapsed,
                                record.input_tokens, record.output_tokens)
        self._writer.submit(record)
