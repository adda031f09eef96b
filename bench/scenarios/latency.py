"""Added latency at concurrency 1 against a zero-delay upstream.

Each round runs every line once (A B C ..., the next round in reverse order), so drift and
the idle-core wake-up noise of this kind of VM fall on every line alike; each figure is
the median over rounds. "Added" is the line's percentile minus direct's in the same round
(a difference of percentiles, not a percentile of differences).
"""

from __future__ import annotations

from typing import Any

from bench.report import Report, fmt
from bench.scenarios.common import add_before_table, add_ratio_table, lines, names, systems_status
from bench.session import Session, label
from bench.stats import median

TARGETS = ("passthrough", "governed", "chat->anthropic", "messages->openai", "gemini->openai")
QUICK_TARGETS = ("passthrough", "chat->anthropic")


def run(session: Session, report: Report) -> None:
    quick = session.options.quick
    rounds, warmup, duration = (3, 0.3, 1.5) if quick else (5, 1.0, 4.0)
    ls = lines(session, QUICK_TARGETS if quick else TARGETS)
    direct = next((label(s, t) for s, t in ls if s.name == "direct"), None)
    per_round: list[dict[str, dict[str, Any]]] = []
    for r in range(rounds):
        order = ls if r % 2 == 0 else list(reversed(ls))
        got: dict[str, dict[str, Any]] = {}
        for system, target in order:
            res = session.measure(system, target, session.fast_mode, 1, warmup=warmup, duration=duration, driver="aiohttp")
            if res is None:
                continue
            res["round"] = r
            report.measurements.append(res)
            got[label(system, target)] = res
            lat = res["latency"]
            session.log(f"latency round {r + 1}/{rounds}: {label(system, target):<28} p50 {fmt(lat['p50_us'])} µs  "
                        f"p99 {fmt(lat['p99_us'])} µs  cpu {fmt(res.get('cpu_us_per_req'))} µs/req  errors {res['errors']}")
        per_round.append(got)

    sut, base = names(ls)
    rows, figures = [], {"p50": {}, "p99": {}, "added p50": {}, "added p99": {}, "cpu": {}}
    for name in sut + base:
        rs = [g[name] for g in per_round if name in g]
        p50 = median(x["latency"]["p50_us"] for x in rs)
        p99 = median(x["latency"]["p99_us"] for x in rs)
        cpu = median(x.get("cpu_us_per_req") for x in rs)
        add50 = add99 = None
        if direct and name != direct:
            add50 = median(g[name]["latency"]["p50_us"] - g[direct]["latency"]["p50_us"]
                           for g in per_round if name in g and direct in g)
            add99 = median(g[name]["latency"]["p99_us"] - g[direct]["latency"]["p99_us"]
                           for g in per_round if name in g and direct in g)
        errors = sum(x["errors"] for x in rs)
        for key, value in (("p50", p50), ("p99", p99), ("added p50", add50), ("added p99", add99), ("cpu", cpu)):
            figures[key][name] = value
        rows.append([name, fmt(p50), fmt(p99), fmt(add50), fmt(add99), fmt(cpu), errors])
    report.add_table(
        f"Concurrency 1, zero-delay upstream: medians of {rounds} interleaved rounds of {duration:g} s",
        ["line", "p50 µs", "p99 µs", "added p50 µs", "added p99 µs", "CPU µs/req", "errors"], rows,
    )
    relay = [b for b in base if b != direct]
    add_before_table(report, "This checkout ÷ --before, medians of the rounds (lower is better)", {
        "added p50": figures["added p50"], "added p99": figures["added p99"], "CPU per request": figures["cpu"]}, sut)
    add_ratio_table(report, "added p50 as a ratio", figures["added p50"], sut, relay, "lower")
    add_ratio_table(report, "added p99 as a ratio", figures["added p99"], sut, relay, "lower")
    add_ratio_table(report, "total p50 as a ratio", figures["p50"], sut, base, "lower")
    add_ratio_table(report, "CPU per request as a ratio", figures["cpu"], sut, base, "lower")
    report.summary["figures"] = figures
    report.systems = systems_status(session, [s.name for s, _ in ls])
    report.notes += [
        "CPU µs/req is the system's process-tree CPU time over the window divided by requests; for direct it is the fake upstream's own.",
        "Target (issue 4): gateway added latency <= 1.1x the aiohttp-proxy's.",
    ]
