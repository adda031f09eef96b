"""Throughput: the highest RPS with p99 under 10 ms, found by stepping concurrency up.

Each line (gateway passthrough, governed, translated; each baseline) climbs a ladder of
concurrencies and stops at the first step whose p99 reaches 10 ms; its figure is the best
RPS among the steps under the bar. One more step at 128 connections gives the saturated
RPS (the figure the issue's reference numbers are quoted at). Zero-delay upstream: nginx's
canned replies when nginx is installed (``--upstream``).
"""

from __future__ import annotations

from typing import Any

from bench.report import Report, fmt, fmt_ratio
from bench.scenarios.common import add_before_table, add_ratio_table, lines, names, systems_status
from bench.session import Session, label
from bench.stats import median, ratio

P99_BAR_US = 10_000
TARGETS = ("passthrough", "governed", "chat->anthropic", "messages->openai", "gemini->openai")
QUICK_TARGETS = ("passthrough", "governed", "chat->anthropic")
SATURATED = 128


def climb(session: Session, system, target: str, ladder: list[int], warmup: float, duration: float,  # type: ignore[no-untyped-def]
          report: Report, mode: str | None = None, driver: str | None = None) -> dict[str, Any]:
    """Step up ``ladder`` until p99 reaches the bar, then one step at SATURATED connections."""
    mode = mode or session.fast_mode
    steps: list[dict[str, Any]] = []
    for i, c in enumerate(ladder):
        res = session.measure(system, target, mode, c, warmup=warmup if i == 0 else 0.0, duration=duration,
                              driver=driver)
        if res is None:
            break
        report.measurements.append(res)
        steps.append(res)
        p99 = res["latency"]["p99_us"]
        session.log(f"throughput {label(system, target):<28} c={c:<4} {fmt(res['rps'])} rps  p99 {fmt(p99)} µs  "
                    f"cpu {fmt(res.get('cpu_us_per_req'))} µs/req  errors {res['errors']}  SYN drops {res['listen_drops']}")
        if p99 is None or p99 >= P99_BAR_US or res["errors"]:
            break
    under = [s for s in steps if s["latency"]["p99_us"] is not None and s["latency"]["p99_us"] < P99_BAR_US and not s["errors"]]
    best = max(under, key=lambda s: s["rps"], default=None)
    sat = session.measure(system, target, mode, SATURATED, warmup=0.0, duration=duration, driver=driver)
    if sat is not None:
        report.measurements.append(sat)
        session.log(f"throughput {label(system, target):<28} c={SATURATED:<4} {fmt(sat['rps'])} rps  "
                    f"p99 {fmt(sat['latency']['p99_us'])} µs  cpu {fmt(sat.get('cpu_us_per_req'))} µs/req  errors {sat['errors']}  "
                    f"SYN drops {sat['listen_drops']}")
    return {"best": best, "saturated": sat}


def run(session: Session, report: Report) -> None:
    quick = session.options.quick
    ladder, warmup, duration = ([4, 8, 16, 32], 1.0, 2.0) if quick else ([1, 2, 4, 8, 16, 32, 64], 2.0, 5.0)
    rounds = 1 if quick else 3
    ls = lines(session, QUICK_TARGETS if quick else TARGETS)
    found: dict[str, dict[str, Any]] = {}
    sat_runs: dict[str, list[dict[str, Any]]] = {}
    for system, target in ls:
        name = label(system, target)
        found[name] = climb(session, system, target, ladder, warmup, duration, report)
        sat_runs[name] = [found[name]["saturated"]] if found[name]["saturated"] else []
    # More rounds of the saturated step, interleaved (A B C, C B A): its figures are medians.
    for r in range(1, rounds):
        for system, target in (ls if r % 2 == 0 else list(reversed(ls))):
            res = session.measure(system, target, session.fast_mode, SATURATED, warmup=0.0, duration=duration)
            if res is None:
                continue
            res["round"] = r
            report.measurements.append(res)
            sat_runs[label(system, target)].append(res)
            session.log(f"throughput round {r + 1}/{rounds} {label(system, target):<28} c={SATURATED:<4} {fmt(res['rps'])} rps  "
                        f"cpu {fmt(res.get('cpu_us_per_req'))} µs/req  errors {res['errors']}")

    # Cross-check of the saturated figure with wrk (C, new connections inside its window).
    wrk_runs: dict[str, dict[str, Any]] = {}
    if session.wrk is not None and session.options.driver != "wrk":
        for system, target in ls:
            res = session.measure(system, target, session.fast_mode, SATURATED, warmup=1.0, duration=duration, driver="wrk")
            if res is None:
                continue
            res["part"] = "wrk cross-check"
            report.measurements.append(res)
            wrk_runs[label(system, target)] = res
            session.log(f"throughput wrk {label(system, target):<28} c={SATURATED:<4} {fmt(res['rps'])} rps  "
                        f"cpu {fmt(res.get('cpu_us_per_req'))} µs/req  errors {res['errors']}  SYN drops {res['listen_drops']}")

    sut, base = names(ls)
    figs: dict[str, dict[str, float | None]] = {"best": {}, "sat": {}, "cpu": {}, "cpu_sat": {}, "sat_wrk": {}}
    rows = []
    for name in sut + base:
        best, sats = found[name]["best"], sat_runs[name]
        figs["best"][name] = best["rps"] if best else None
        figs["sat"][name] = median(x["rps"] for x in sats)
        figs["cpu"][name] = best.get("cpu_us_per_req") if best else None
        figs["cpu_sat"][name] = median(x.get("cpu_us_per_req") for x in sats)
        figs["sat_wrk"][name] = wrk_runs[name]["rps"] if name in wrk_runs else None
        rows.append([
            name, fmt(figs["best"][name]), best["concurrency"] if best else "-", fmt(best["latency"]["p99_us"]) if best else "-",
            fmt(figs["cpu"][name]), fmt(figs["sat"][name]), fmt(median(x["latency"]["p99_us"] for x in sats)),
            fmt(figs["cpu_sat"][name]), fmt(max((x.get("rss_mb") or 0 for x in sats), default=None), 1),
            sum(x["errors"] for x in sats), sats[0]["driver"] if sats else "-", fmt(figs["sat_wrk"][name]),
            wrk_runs[name]["listen_drops"] if name in wrk_runs else "-",
        ])
    report.add_table(
        f"Zero-delay upstream: best RPS with p99 < 10 ms ({duration:g} s steps), and saturated at {SATURATED} connections "
        f"(medians of {rounds} interleaved round(s))",
        ["line", "RPS p99<10ms", "at c", "p99 µs", "CPU µs/req", f"RPS c={SATURATED}", "p99 µs", "CPU µs/req",
         "RSS MB", "errors", "driver", f"RPS c={SATURATED} wrk", "SYN drops (wrk)"], rows,
    )
    add_before_table(report, "This checkout ÷ --before (RPS: higher is better; CPU: lower is better)", {
        "RPS (p99 < 10 ms)": figs["best"], f"RPS at c={SATURATED}": figs["sat"],
        f"CPU per request at c={SATURATED}": figs["cpu_sat"]}, sut)
    add_ratio_table(report, "RPS (p99 < 10 ms) as a ratio", figs["best"], sut, base, "higher")
    add_ratio_table(report, f"RPS at c={SATURATED} as a ratio", figs["sat"], sut, base, "higher")
    add_ratio_table(report, f"CPU per request at c={SATURATED} as a ratio", figs["cpu_sat"], sut, base, "lower")
    if wrk_runs:
        add_ratio_table(report, f"RPS at c={SATURATED} driven by wrk as a ratio", figs["sat_wrk"], sut, base, "higher")
    _targets(report, figs, sut)
    report.summary["figures"] = figs
    report.systems = systems_status(session, [s.name for s, _ in ls])
    report.notes += [
        "Closed loop: each connection sends its next request when the last answer ends. The ladder and the saturated "
        "rounds use the bench's lean protocol client (raw: keep-alive connections opened in the warm-up, ~45 µs of "
        "client CPU per request); wrk (one thread) cross-checks the saturated step.",
        "For direct, CPU µs/req is the fake upstream's own; for every other line it excludes the upstream.",
        "wrk opens its connections inside its measured window, so its runs include connection set-up; SYN drops "
        "counts connections the kernel refused at a full accept queue (each costs its client a 1 s SYN retry).",
    ]


def _targets(report: Report, figs: dict[str, dict[str, float | None]], sut: list[str]) -> None:
    """The issue's targets that this run can check, each with its measured ratio."""
    sat, cpu = figs["sat"], figs["cpu_sat"]
    passthrough = next((n for n in sut if n.endswith(" passthrough")), None)
    if passthrough is None:
        return
    checks: list[tuple[str, float | None, float, bool]] = [
        ("passthrough RPS ÷ aiohttp-proxy (c=128)", ratio(sat.get(passthrough), sat.get("aiohttp-proxy")), 0.9, True),
        ("passthrough CPU/req ÷ aiohttp-proxy (c=128)", ratio(cpu.get(passthrough), cpu.get("aiohttp-proxy")), 1.1, False),
        ("passthrough RPS ÷ litellm (c=128)", ratio(sat.get(passthrough), sat.get("litellm")), 20.0, True),
        ("passthrough RPS ÷ portkey (c=128)", ratio(sat.get(passthrough), sat.get("portkey")), 5.0, True),
    ]
    for name in sut:
        if name == passthrough:
            continue
        bar = 0.85 if name.endswith("governed") else 0.7
        checks.append((f"{name.split(' ', 1)[1]} RPS ÷ passthrough (c=128)", ratio(sat.get(name), sat.get(passthrough)), bar, True))
    rows = []
    for what, value, bar, higher in checks:
        if value is None:
            continue
        ok = value >= bar if higher else value <= bar
        rows.append([what, fmt_ratio(value), f"{'>=' if higher else '<='} {bar:g}x", "met" if ok else "NOT met"])
    if rows:
        report.add_table("Issue 4 targets checked in this run", ["target", "measured", "wanted", ""], rows)
