"""``--workers 2`` against one worker: passthrough at saturation, in interleaved rounds.

One worker is pinned to the system-under-test core; two workers get two cores. The load
is driven by wrk (C) when installed and answered by the canned nginx upstream when nginx
is, the two cheapest a harness can have, because on a 2-core machine they share the
second worker's core: the table gives the share of a core each of them took, so a reader
can see how much of that core was left to the second worker. CPU per request, two
workers over one, says whether the second worker adds cost of its own (contention on the
shared port, the usage table, the metrics files) or only takes what the core it gets
allows.
"""

from __future__ import annotations

from typing import Any

from bench.report import Report, fmt, fmt_ratio
from bench.scenarios.throughput import SATURATED, climb
from bench.session import Session, label
from bench.stats import median, ratio

NAMES = ("gateway", "gateway-w2", "aiohttp-proxy")


def run(session: Session, report: Report) -> None:
    quick = session.options.quick
    ladder, warmup, duration, rounds = ([8, 16, 32], 1.0, 2.0, 1) if quick else ([4, 8, 16, 32, 64], 2.0, 5.0, 3)
    driver = "wrk" if session.wrk is not None else None
    systems = [s for name in NAMES if (s := session.system(name)) is not None]
    best: dict[str, dict[str, Any] | None] = {}
    sat: dict[str, list[dict[str, Any]]] = {s.name: [] for s in systems}
    for system in systems:
        found = climb(session, system, "passthrough", ladder, warmup, duration, report, driver=driver)
        best[system.name] = found["best"]
        if found["saturated"]:
            sat[system.name].append(found["saturated"])
    for r in range(1, rounds):
        for system in (systems if r % 2 == 0 else systems[::-1]):
            res = session.measure(system, "passthrough", session.fast_mode, SATURATED, warmup=0.0, duration=duration,
                                  driver=driver)
            if res is None:
                continue
            res["round"] = r
            report.measurements.append(res)
            sat[system.name].append(res)
            session.log(f"workers round {r + 1}/{rounds} {label(system, 'passthrough'):<28} {fmt(res['rps'])} rps  "
                        f"cpu {fmt(res.get('cpu_us_per_req'))} µs/req  share {fmt(res.get('sut_cpu_share'), 2)}")
    session.stop("gateway-w2")  # it holds both cores; later scenarios must not share them with it

    def med(name: str, key: str) -> float | None:
        return median(x.get(key) for x in sat.get(name, []))

    rows = []
    for system in systems:
        b = best.get(system.name)
        rows.append([label(system, "passthrough"), fmt(b["rps"]) if b else "-", b["concurrency"] if b else "-",
                     fmt(med(system.name, "rps")), fmt(med(system.name, "cpu_us_per_req")),
                     fmt(med(system.name, "sut_cpu_share"), 2), fmt(med(system.name, "loadgen_cpu_share"), 2),
                     fmt(med(system.name, "upstream_cpu_share"), 2)])
    report.add_table(
        f"Passthrough, one worker vs two ({sat and next(iter(sat.values()), [{}])[0].get('driver', '-')} driver; "
        f"saturated at c={SATURATED}: medians of {rounds} interleaved round(s))",
        ["line", "RPS p99<10ms", "at c", f"RPS c={SATURATED}", "CPU µs/req", "cores used", "load generator cores",
         "upstream cores"], rows)

    def best_rps(name: str) -> float | None:
        b = best.get(name)
        return b["rps"] if b else None

    figures = {
        "best": ratio(best_rps("gateway-w2"), best_rps("gateway")),
        "saturated": ratio(med("gateway-w2", "rps"), med("gateway", "rps")),
        "cpu_per_request": ratio(med("gateway-w2", "cpu_us_per_req"), med("gateway", "cpu_us_per_req")),
    }
    report.add_table("two workers ÷ one worker", ["", "ratio"], [
        ["RPS p99<10ms (higher is better)", fmt_ratio(figures["best"])],
        [f"RPS c={SATURATED} (higher is better; target >= 1.7x where two cores are free)", fmt_ratio(figures["saturated"])],
        ["CPU µs per request (1.00x: the second worker adds no cost of its own)", fmt_ratio(figures["cpu_per_request"])],
    ])
    report.summary["w2_over_w1"] = figures
    report.systems = {s.name: "ran" for s in systems} | session.unavailable
    report.notes.append(f"cores: {session.layout.describe()}")
