"""Every Prometheus metric the gateway exports, and nowhere else.

With ``--workers N`` the CLI sets PROMETHEUS_MULTIPROC_DIR before any worker starts, and
``/metrics`` then aggregates all workers' files.

The per-request series (requests, latency, time to first byte, tokens, in flight) are
tallied as plain numbers by ``observe_request`` and folded into their metrics when
``/metrics`` is rendered: a prometheus_client update takes a lock and, for a histogram, a
Python loop over the buckets (~1 µs each, nine of them per request), a tally a dict lookup
and a few additions. With several workers the updates go to the shared files at once, as
a scrape reads every worker's files but could fold only its own worker's tally.
"""

from __future__ import annotations

import bisect
import functools
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

REQUESTS = Counter(
    "gateway_requests_total", "Requests served, by endpoint, API and HTTP status.",
    ["endpoint", "api", "status"],
)
LATENCY = Histogram(
    "gateway_request_duration_seconds", "Time from request to the last byte of the response.",
    ["endpoint", "api"], buckets=_LATENCY_BUCKETS,
)
TTFB = Histogram(
    "gateway_time_to_first_byte_seconds", "Time from request to the first response byte.",
    ["endpoint", "api"], buckets=_LATENCY_BUCKETS,
)
INPUT_TOKENS = Counter("gateway_input_tokens_total", "Prompt tokens, by endpoint.", ["endpoint"])
OUTPUT_TOKENS = Counter("gateway_output_tokens_total", "Completion tokens, by endpoint.", ["endpoint"])
UPSTREAM_ERRORS = Counter(
    "gateway_upstream_errors_total", "Failed upstream attempts, by provider and error code.",
    ["provider", "code"],
)
FALLBACKS = Counter(
    "gateway_fallbacks_total", "Attempts moved to the next served entity, by endpoint and reason.",
    ["endpoint", "reason"],
)
RETRIES = Counter(
    "gateway_retries_total", "Attempts repeated on the same entity, by endpoint and reason.", ["endpoint", "reason"],
)
CIRCUIT_STATE = Gauge(
    "gateway_circuit_state", "Circuit breaker state per entity: 0 closed, 1 open, 2 half-open.",
    ["endpoint", "entity"], multiprocess_mode="livemax",
)
RATE_LIMITED = Counter(
    "gateway_rate_limited_total", "Requests refused by a rate limit, by endpoint, scope and limit (qpm, tpm).",
    ["endpoint", "scope", "limit"],
)
RATE_LIMIT_BACKEND_ERRORS = Counter(
    "gateway_rate_limit_backend_errors_total",
    "Requests decided without the shared limiter backend (Redis down), by outcome (allowed, denied).", ["outcome"],
)
GUARDRAIL_VERDICTS = Counter(
    "gateway_guardrail_verdicts_total",
    "Guardrail checks run, by endpoint, check, stage (input, output) and verdict (pass, flag, mask, block, error).",
    ["endpoint", "guardrail", "stage", "verdict"],
)
GUARDRAIL_JUDGE_FAILURES = Counter(
    "gateway_guardrail_judge_failures_total",
    "Judged guardrail checks whose judge failed, by endpoint, check, stage and outcome (blocked, allowed).",
    ["endpoint", "guardrail", "stage", "outcome"],
)
IN_FLIGHT = Gauge("gateway_requests_in_flight", "Requests being served now.", multiprocess_mode="livesum")
USAGE_WRITTEN = Counter("gateway_usage_records_written_total", "Usage records written to the sink.")
USAGE_SPILLED = Counter(
    "gateway_usage_records_spilled_total", "Usage records put in the spill file because the sink or queue was full.",
)
INFERENCE_WRITTEN = Counter("gateway_inference_records_written_total", "Payload records written to the inference table.")
INFERENCE_SPILLED = Counter(
    "gateway_inference_records_spilled_total", "Payload records put in the spill file because the sink or queue was full.",
)
INFERENCE_REJECTED = Counter(
    "gateway_inference_spill_lines_rejected_total",
    "Inference spill-file lines that were not a record (kept aside in inference-rejected-*.jsonl).",
)
USAGE_REJECTED = Counter(
    "gateway_usage_spill_lines_rejected_total",
    "Spill-file lines that were not a usage record (kept aside in usage-rejected-*.jsonl).",
)


@functools.lru_cache(maxsize=8192)
def request_series(endpoint: str, api: str, status: str):  # type: ignore[no-untyped-def]
    """The per-request children (count, latency, TTFB), looked up once per label set:
    ``labels()`` validates and locks on every call."""
    return REQUESTS.labels(endpoint, api, status), LATENCY.labels(endpoint, api), TTFB.labels(endpoint, api)


@functools.lru_cache(maxsize=4096)
def token_series(endpoint: str):  # type: ignore[no-untyped-def]
    return INPUT_TOKENS.labels(endpoint), OUTPUT_TOKENS.labels(endpoint)


@functools.lru_cache(maxsize=4096)
def guardrail_verdict(endpoint: str, guardrail: str, stage: str, verdict: str):  # type: ignore[no-untyped-def]
    return GUARDRAIL_VERDICTS.labels(endpoint, guardrail, stage, verdict)


def multiprocess() -> bool:
    """Whether workers share metrics through files (``gateway serve --workers N``)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class _Tally:
    """One (endpoint, api, status)'s requests since the last fold: latency and TTFB as
    bucket counts (index ``bisect_left`` of the bounds, as Histogram.observe places a value;
    the last is +Inf) and sums, tokens as sums."""

    __slots__ = ("count", "latency", "latency_sum", "ttfb", "ttfb_sum", "input_tokens", "output_tokens")

    def __init__(self) -> None:
        self.count = 0
        self.latency = [0] * (len(_LATENCY_BUCKETS) + 1)
        self.ttfb = [0] * (len(_LATENCY_BUCKETS) + 1)
        self.latency_sum = self.ttfb_sum = 0.0
        self.input_tokens = self.output_tokens = 0


_tallies: dict[tuple[str, str, str], _Tally] = {}
_in_flight = 0


def request_started() -> None:
    global _in_flight
    if _SHARED_FILES:
        IN_FLIGHT.inc()
    else:
        _in_flight += 1


def request_ended() -> None:
    global _in_flight
    if _SHARED_FILES:
        IN_FLIGHT.dec()
    else:
        _in_flight -= 1


def observe_request(endpoint: str, api: str, status: int, seconds: float, ttfb_seconds: float,
                    input_tokens: int, output_tokens: int) -> None:
    """One finished API request in the per-request series."""
    key = (endpoint, api, str(status))
    if _SHARED_FILES:
        count, latency, ttfb = request_series(*key)
        count.inc()
        latency.observe(seconds)
        ttfb.observe(ttfb_seconds)
        if input_tokens or output_tokens:
            input_series, output_series = token_series(endpoint)
            input_series.inc(input_tokens)
            output_series.inc(output_tokens)
        return
    tally = _tallies.get(key)
    if tally is None:
        tally = _tallies[key] = _Tally()
    tally.count += 1
    tally.latency[bisect.bisect_left(_LATENCY_BUCKETS, seconds)] += 1
    tally.latency_sum += seconds
    tally.ttfb[bisect.bisect_left(_LATENCY_BUCKETS, ttfb_seconds)] += 1
    tally.ttfb_sum += ttfb_seconds
    tally.input_tokens += input_tokens
    tally.output_tokens += output_tokens


def fold_tallies() -> None:
    """Fold what ``observe_request`` tallied into the metrics (``render`` does, first)."""
    for key, tally in _tallies.items():
        if not tally.count:
            continue
        count, latency, ttfb = request_series(*key)
        count.inc(tally.count)
        # A histogram child has no bulk update: its bucket values and sum are added to
        # directly (tests/test_metrics.py checks the result against Histogram.observe's).
        for child, buckets, total in ((latency, tally.latency, tally.latency_sum), (ttfb, tally.ttfb, tally.ttfb_sum)):
            for value, n in zip(child._buckets, buckets):  # noqa: SLF001
                if n:
                    value.inc(n)
            child._sum.inc(total)  # noqa: SLF001
        if tally.input_tokens or tally.output_tokens:
            input_series, output_series = token_series(key[0])
            input_series.inc(tally.input_tokens)
            output_series.inc(tally.output_tokens)
        _tallies[key] = _Tally()
    if not _SHARED_FILES:
        IN_FLIGHT.set(_in_flight)


#: Read once: the CLI sets the directory before any worker imports this module.
_SHARED_FILES = multiprocess()


def render() -> bytes:
    """The exposition text: this process's metrics, or every worker's in multiprocess mode.

    Multiprocess mode reads every worker's files: call it off the event loop.
    """
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    fold_tallies()
    return generate_latest()
