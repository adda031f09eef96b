"""The per-request series are tallied and folded at render: the exposition must be what
prometheus_client itself writes for the same observations."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from gateway import metrics

# Inside, on and past the bucket bounds, +Inf included.
SECONDS = [0.0001, 0.005, 0.0051, 0.3, 2.5, 299.0, 300.0, 301.0, 1e6]


def _samples(text: str, endpoint: str) -> dict[str, float]:
    """``name{labels}`` -> value for the lines of one endpoint, created-time lines left out."""
    out = {}
    for line in text.splitlines():
        if f'endpoint="{endpoint}"' in line and not line.startswith("#") and "_created" not in line:
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def _expected(endpoint: str) -> dict[str, float]:
    registry = CollectorRegistry()
    requests = Counter("gateway_requests_total", "", ["endpoint", "api", "status"], registry=registry)
    latency = Histogram("gateway_request_duration_seconds", "", ["endpoint", "api"],
                        buckets=metrics._LATENCY_BUCKETS, registry=registry)  # noqa: SLF001
    ttfb = Histogram("gateway_time_to_first_byte_seconds", "", ["endpoint", "api"],
                     buckets=metrics._LATENCY_BUCKETS, registry=registry)  # noqa: SLF001
    tokens_in = Counter("gateway_input_tokens_total", "", ["endpoint"], registry=registry)
    tokens_out = Counter("gateway_output_tokens_total", "", ["endpoint"], registry=registry)
    for i, s in enumerate(SECONDS):
        requests.labels(endpoint, "v1/chat/completions", "200" if i % 3 else "429").inc()
        latency.labels(endpoint, "v1/chat/completions").observe(s)
        ttfb.labels(endpoint, "v1/chat/completions").observe(s / 2)
        tokens_in.labels(endpoint).inc(i)
        tokens_out.labels(endpoint).inc(2 * i)
    return _samples(generate_latest(registry).decode(), endpoint)


def _observe(endpoint: str) -> None:
    for i, s in enumerate(SECONDS):
        metrics.observe_request(endpoint, "v1/chat/completions", 200 if i % 3 else 429, s, s / 2, i, 2 * i)


def test_folded_tallies_read_as_prometheus_clients_own_observations() -> None:
    _observe("tally-a")
    got = _samples(metrics.render().decode(), "tally-a")
    assert got == _expected("tally-a")
    assert got['gateway_request_duration_seconds_bucket{api="v1/chat/completions",endpoint="tally-a",le="+Inf"}'] == 9


def test_tallies_fold_once_and_keep_adding_after() -> None:
    _observe("tally-b")
    first = _samples(metrics.render().decode(), "tally-b")
    assert _samples(metrics.render().decode(), "tally-b") == first  # a second render adds nothing
    _observe("tally-b")
    twice = _samples(metrics.render().decode(), "tally-b")
    assert twice == {k: 2 * v for k, v in first.items()}


def test_in_flight_is_read_at_render() -> None:
    def in_flight() -> float:
        line = next(x for x in metrics.render().decode().splitlines() if x.startswith("gateway_requests_in_flight "))
        return float(line.split()[1])

    before = in_flight()
    metrics.request_started()
    metrics.request_started()
    assert in_flight() == before + 2
    metrics.request_ended()
    metrics.request_ended()
    assert in_flight() == before
