"""The scalar function behind one ai_query call site, vectorised over Arrow arrays.

DuckDB hands the function a whole vector of requests (up to 2,048 rows) at once; all of
them are sent concurrently (within the client's bound) and the answers come back in the
rows' order, whatever order they finish in. A NULL request gives a NULL result without a
call. Each request is tagged ``batch_id``, ``batch_call`` (which ai_query of the SQL) and
``batch_row`` (that call's row number), so its usage rows can be found afterwards.

With ``failOnError`` (the default) the first failed row stops the statement: the rows still
in flight are cancelled and the error names the row. Without it, each row gets
``{result, errorMessage}``: the value and NULL, or NULL and what went wrong.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Literal

import msgspec
import orjson

from gateway.batch.client import BackgroundLoop, GatewayClient, Outcome

ResultKind = Literal["text", "json", "typed", "embedding"]


class CallSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What one ai_query call site asks for, read from its constant arguments."""

    index: int  # 1-based, in the order the call sites appear
    endpoint: str
    task: Literal["chat", "embeddings"]
    kind: ResultKind
    result_type: str  # DuckDB type of the result (before the failOnError wrapping)
    fail_on_error: bool = True
    model_parameters: dict[str, Any] = {}
    response_format: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"ai_query #{self.index} ({self.endpoint!r})"


class RowFailed(Exception):
    """A row failed with failOnError: the message names the call site, the row and why."""


def _strip_fence(text: str) -> str:
    # Models asked for JSON often wrap it in a Markdown code fence.
    text = text.strip()
    if text.startswith("```") and text.endswith("```"):
        text = text[3:-3]
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return text.strip()


class AiQueryFunction:
    """Called by DuckDB with an Arrow array of requests; returns an Arrow array of results."""

    def __init__(self, spec: CallSpec, client: GatewayClient, loop: BackgroundLoop, arrow_type: Any,
                 batch_id: str) -> None:
        import pyarrow

        self.spec = spec
        self.invocations = 0  # how many vectors DuckDB handed over
        self.failed_rows = 0
        self.failure: str | None = None  # why the statement stopped, when a row failed it
        self._pa = pyarrow
        self._client, self._loop, self._batch_id = client, loop, batch_id
        self._arrow_type = arrow_type  # of the whole result (the failOnError struct, when false)
        self._value_type = arrow_type.field("result").type if not spec.fail_on_error else arrow_type
        self._rows_seen = 0
        self._lock = threading.Lock()  # DuckDB may call from several threads

    def __call__(self, requests: Any) -> Any:
        prompts = requests.to_pylist()
        with self._lock:
            first_row = self._rows_seen + 1
            self._rows_seen += len(prompts)
            self.invocations += 1
        try:
            results = self._loop.run(self._run_rows(prompts, first_row))
        except RowFailed as exc:
            self.failure = str(exc)  # DuckDB re-raises it wrapped in its own words
            raise
        return self._pa.array(results, type=self._arrow_type)

    async def _run_rows(self, prompts: list[str | None], first_row: int) -> list[Any]:
        tasks = {asyncio.ensure_future(self._row(p, first_row + i)): i
                 for i, p in enumerate(prompts) if p is not None}
        results: list[Any] = [None] * len(prompts)
        try:
            for done in asyncio.as_completed(list(tasks)):
                results_at, value = await done
                results[results_at - first_row] = value
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return results

    async def _row(self, prompt: str, row: int) -> tuple[int, Any]:
        spec = self.spec
        tags = {"batch_id": self._batch_id, "batch_call": str(spec.index), "batch_row": str(row)}
        if spec.task == "embeddings":
            outcome = await self._client.post("/mlflow/v1/embeddings",
                                              {"model": spec.endpoint, "input": prompt, **spec.model_parameters}, tags)
        else:
            body: dict[str, Any] = {"model": spec.endpoint, "messages": [{"role": "user", "content": prompt}],
                                    **spec.model_parameters}
            if spec.response_format is not None:
                body["response_format"] = spec.response_format
            outcome = await self._client.post("/mlflow/v1/chat/completions", body, tags)
        try:
            value = self._value(outcome)
        except ValueError as exc:
            self.failed_rows += 1
            where = f"row {row}" + (f", request id {outcome.request_id}" if outcome.request_id else "")
            if spec.fail_on_error:
                raise RowFailed(f"{spec.label} failed on {where}: {exc}") from None
            return row, {"result": None, "errorMessage": str(exc)}
        return row, value if spec.fail_on_error else {"result": value, "errorMessage": None}

    def _value(self, outcome: Outcome) -> Any:
        """The row's result as a Python value of the result type; ValueError says why not."""
        if outcome.error is not None:
            raise ValueError(outcome.error)
        body = outcome.body
        try:
            if self.spec.task == "embeddings":
                value = body["data"][0]["embedding"]
            else:
                message = body["choices"][0]["message"]
                value = message.get("content")
                if value is None:
                    raise ValueError(f"the response has no text (finish_reason "
                                     f"{body['choices'][0].get('finish_reason')!r})")
        except (KeyError, IndexError, TypeError):
            raise ValueError("the gateway's response has an unexpected shape") from None
        kind = self.spec.kind
        if kind == "text":
            return value
        if kind == "json":
            text = _strip_fence(value)
            try:
                orjson.loads(text)
            except orjson.JSONDecodeError:
                raise ValueError(f"the response is not JSON: {value[:100]!r}") from None
            return text
        if kind == "typed" and self.spec.result_type != "VARCHAR":
            try:
                value = orjson.loads(_strip_fence(value))
            except orjson.JSONDecodeError:
                raise ValueError(f"the response is not JSON that fits {self.spec.result_type}: "
                                 f"{value[:100]!r}") from None
        if self.spec.result_type == "VARCHAR":
            return value if isinstance(value, str) else orjson.dumps(value).decode()
        try:
            self._pa.array([value], type=self._value_type)
        except (self._pa.ArrowInvalid, self._pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            shown = orjson.dumps(value).decode()[:100]
            raise ValueError(f"the response does not fit {self.spec.result_type}: {shown}") from None
        return value
