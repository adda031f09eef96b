"""The shipped deployment assets stay true to the code: the example configuration loads,
and the Grafana dashboard asks only for metrics and labels the gateway exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

from gateway import metrics
from gateway.config import load_config

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = json.loads((ROOT / "grafana" / "gateway-dashboard.json").read_text())
EXPRESSIONS = [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]]

#: name as queried (counters end in _total, histograms in _bucket) -> label names
EXPORTED: dict[str, set[str]] = {}
#: metric -> the names it is queried by
QUERIED_AS: dict[str, list[str]] = {}
for metric in vars(metrics).values():
    if isinstance(metric, MetricWrapperBase):
        name, labels = metric._name, set(metric._labelnames)  # noqa: SLF001 - what the metric was declared with
        kind = metric._type  # noqa: SLF001
        QUERIED_AS[name] = {"counter": [f"{name}_total"], "histogram": [f"{name}_bucket", f"{name}_sum", f"{name}_count"],
                            "gauge": [name]}[kind]
        for queried in QUERIED_AS[name]:
            EXPORTED[queried] = labels | ({"le"} if queried.endswith("_bucket") else set())


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_every_dashboard_query_names_exported_metrics_and_labels(expr: str) -> None:
    used = re.findall(r"\b(gateway_[a-z_]+)", expr)
    assert used, expr
    for name in used:
        assert name in EXPORTED, f"{name} is not a metric the gateway exports"
    # Every label grouped by or matched on must exist on the metrics of that query.
    labels = set().union(*(set(re.findall(r"\w+", g)) for g in re.findall(r"by \(([^)]*)\)", expr)))
    labels |= set(re.findall(r"(\w+)=~?\"", expr))
    for name in used:
        assert labels <= EXPORTED[name] | {"le"}, f"{expr}: {labels - EXPORTED[name]} not on {name}"


def test_the_dashboard_shows_every_metric_the_gateway_exports() -> None:
    queried = set(re.findall(r"\b(gateway_[a-z_]+)", " ".join(EXPRESSIONS)))
    for name, names in QUERIED_AS.items():
        assert queried & set(names), f"no dashboard panel shows {name}"


def test_the_example_deployment_configuration_loads() -> None:
    env = {"GATEWAY_DATABASE_URL": "postgresql://gateway@db/gateway", "GATEWAY_REDIS_URL": "redis://redis:6379/0",
           "OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test", "GATEWAY_ADMIN_TOKEN": "admin-secret"}
    config = load_config(ROOT / "deploy" / "gateway.yaml", env=env)
    assert config.storage.kind == "postgres" and config.limiter.backend == "redis"
    assert [e.name for e in config.endpoints] == ["system.ai.gpt-4-1-mini", "system.ai.claude-sonnet-4-5"]
