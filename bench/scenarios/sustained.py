"""Sustained RPS against a 20 ms upstream at 256 connections.

With 20 ms per answer, 256 connections could carry 12,800 RPS; what a line gets below
that is what its CPU (and its connection handling) costs at a realistic in-flight count.
"""

from __future__ import annotations

from bench.report import Report, fmt
from bench.scenarios.common import add_before_table, add_ratio_table, lines, names, systems_status
from bench.session import Session, label

CONCURRENCY = 256
TARGETS = ("passthrough", "governed", "chat->anthropic")


def run(session: Session, report: Report) -> None:
    quick = session.options.quick
    warmup, duration = (1.0, 3.0) if quick else (3.0, 15.0)
    ls = lines(session, ("passthrough",) if quick else TARGETS)
    figs: dict[str, dict[str, float | None]] = {"rps": {}, "cpu": {}, "p99": {}}
    rows = []
    for system, target in ls:
        res = session.measure(system, target, "d20", CONCURRENCY, warmup=warmup, duration=duration)
        if res is None:
            continue
        report.measurements.append(res)
        name = label(system, target)
        lat = res["latency"]
        session.log(f"sustained {name:<28} {fmt(res['rps'])} rps  p50 {fmt(lat['p50_us'])} µs  p99 {fmt(lat['p99_us'])} µs  "
                    f"cpu {fmt(res.get('cpu_us_per_req'))} µs/req  errors {res['errors']}  SYN drops {res['listen_drops']}")
        figs["rps"][name], figs["cpu"][name], figs["p99"][name] = res["rps"], res.get("cpu_us_per_req"), lat["p99_us"]
        rows.append([name, fmt(res["rps"]), fmt(lat["p50_us"]), fmt(lat["p99_us"]), fmt(res.get("cpu_us_per_req")),
                     fmt(res.get("sut_cpu_share"), 2), fmt(res.get("rss_mb"), 1), res["errors"], res["listen_drops"], res["driver"]])
    report.add_table(
        f"20 ms upstream, {CONCURRENCY} connections, {duration:g} s (ceiling {CONCURRENCY * 50:,} RPS)",
        ["line", "RPS", "p50 µs", "p99 µs", "CPU µs/req", "CPU share", "RSS MB", "errors", "SYN drops", "driver"], rows,
    )
    sut, base = names(ls)
    add_before_table(report, "This checkout ÷ --before (RPS: higher is better; CPU and p99: lower is better)", {
        "RPS": figs["rps"], "CPU per request": figs["cpu"], "p99": figs["p99"]}, sut)
    add_ratio_table(report, "sustained RPS as a ratio", figs["rps"], sut, base, "higher")
    add_ratio_table(report, "CPU per request as a ratio", figs["cpu"], sut, base, "lower")
    report.summary["figures"] = figs
    report.systems = systems_status(session, [s.name for s, _ in ls])
    report.notes += [
        "CPU share: the system's CPU seconds per second of the window (1.00 = one core busy).",
        "Driven by the lean protocol client (connections opened in the warm-up). SYN drops: connections the kernel "
        "refused at a full accept queue (each costs its client a 1 s SYN retry).",
    ]
