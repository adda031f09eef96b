"""``--workers 2`` against one worker: the same passthrough ladder on each.

One worker is pinned to the system-under-test core; two workers get two cores. On a
2-core machine the second core also carries the load generator and the upstream, so the
ratio there understates what two free cores give (the report says so).
"""

from __future__ import annotations

from bench.report import Report, fmt, fmt_ratio
from bench.scenarios.throughput import SATURATED, climb
from bench.session import Session, label
from bench.stats import ratio


def run(session: Session, report: Report) -> None:
    quick = session.options.quick
    ladder, warmup, duration = ([4, 8, 16], 1.0, 2.0) if quick else ([2, 4, 8, 16, 32, 64], 2.0, 5.0)
    found, rows = {}, []
    names = ["gateway", "gateway-w2", "aiohttp-proxy"]
    for name in names:
        system = session.system(name)
        if system is None:
            continue
        found[name] = climb(session, system, "passthrough", ladder, warmup, duration, report)
        best, sat = found[name]["best"], found[name]["saturated"]
        rows.append([label(system, "passthrough"), fmt(best["rps"]) if best else "-", best["concurrency"] if best else "-",
                     fmt(sat["rps"]) if sat else "-", fmt(sat["latency"]["p99_us"]) if sat else "-",
                     fmt(sat.get("cpu_us_per_req")) if sat else "-", fmt(sat.get("sut_cpu_share"), 2) if sat else "-"])
    session.stop("gateway-w2")  # it holds both cores; later scenarios must not share them with it
    report.add_table("Passthrough, one worker vs two",
                     ["line", "RPS p99<10ms", "at c", f"RPS c={SATURATED}", "p99 µs", "CPU µs/req", "CPU share"], rows)

    def rps(name: str, key: str) -> float | None:
        r = found.get(name, {}).get(key)
        return r["rps"] if r else None

    ratios = [
        ["RPS p99<10ms", fmt_ratio(ratio(rps("gateway-w2", "best"), rps("gateway", "best")))],
        [f"RPS c={SATURATED}", fmt_ratio(ratio(rps("gateway-w2", "saturated"), rps("gateway", "saturated")))],
    ]
    report.add_table("two workers ÷ one worker (higher is better; target >= 1.7x where two cores are free)", ["", "ratio"], ratios)
    report.summary["w2_over_w1"] = {"best": ratio(rps("gateway-w2", "best"), rps("gateway", "best")),
                                    "saturated": ratio(rps("gateway-w2", "saturated"), rps("gateway", "saturated"))}
    report.systems = {n: "ran" for n in found} | session.unavailable
    report.notes.append(f"cores: {session.layout.describe()}")
