"""Before/after rounds of two gateway checkouts, each as a ratio to the aiohttp floor.

    git worktree add /tmp/before <commit>
    python -m bench run ab --before /tmp/before [--after /tmp/after] [--ab-rounds 5] [--ab-name lean-client]
                           [--ab-target governed]

The after side is this checkout unless ``--after`` names another (a worktree keeps
uncommitted edits out of the figures).

Each round runs passthrough (or ``--ab-target``, e.g. ``governed``, on the gateways) at 128
connections (zero-delay upstream) on the before gateway, the after gateway and ``aiohttp-proxy``, alternating the order (B A P, then P A B) so that
neither side always runs first. Each gateway figure is divided by the proxy's figure of the
same round; the tables give each round and the medians of the per-round ratios.
"""

from __future__ import annotations

from typing import Any

from bench.report import Report, fmt, fmt_ratio
from bench.session import Session
from bench.stats import median, ratio

CONCURRENCY = 128
FLOOR = "aiohttp-proxy"


def _figures(res: dict[str, Any] | None) -> dict[str, float | None]:
    if res is None:
        return {"rps": None, "cpu": None}
    return {"rps": res["rps"], "cpu": res.get("cpu_us_per_req")}


def run(session: Session, report: Report) -> None:
    extra = session.options.extra
    after_name = "gateway-after" if extra.get("after") else "gateway"
    before, after, floor = (session.system(n) for n in ("gateway-before", after_name, FLOOR))
    if before is None or after is None or floor is None:
        raise RuntimeError(f"ab needs the before gateway, the after gateway and {FLOOR}: {session.unavailable}")
    after_tree = extra.get("after") or "this checkout"
    rounds = int(extra.get("ab_rounds") or 5)
    target = extra.get("ab_target") or "passthrough"
    warmup, duration = (1.0, 3.0) if session.options.quick else (2.0, 6.0)
    drivers = ["raw"] + (["wrk"] if session.wrk is not None else [])
    per_round: dict[str, list[dict[str, float | None]]] = {d: [] for d in drivers}
    order = [before, after, floor]
    for r in range(rounds):
        for driver in drivers:
            got: dict[str, dict[str, float | None]] = {}
            for system in (order if r % 2 == 0 else order[::-1]):
                res = session.measure(system, "passthrough" if system is floor else target, session.fast_mode, CONCURRENCY,
                                      warmup=warmup, duration=duration, driver=driver)
                if res is not None:
                    res["ab_round"] = r
                    report.measurements.append(res)
                got[system.name] = _figures(res)
                session.log(f"ab round {r + 1}/{rounds} {driver:<4} {system.name:<15} {fmt(got[system.name]['rps'])} rps  "
                            f"cpu {fmt(got[system.name]['cpu'])} µs/req  errors {res['errors'] if res else '-'}")
            p = got[FLOOR]
            per_round[driver].append({
                "before_rps": ratio(got["gateway-before"]["rps"], p["rps"]),
                "after_rps": ratio(got[after_name]["rps"], p["rps"]),
                "before_cpu": ratio(got["gateway-before"]["cpu"], p["cpu"]),
                "after_cpu": ratio(got[after_name]["cpu"], p["cpu"]),
                "after_over_before_rps": ratio(got[after_name]["rps"], got["gateway-before"]["rps"]),
                "rps": {k: v["rps"] for k, v in got.items()},
                "cpu": {k: v["cpu"] for k, v in got.items()},
            })
    keys = ("before_rps", "after_rps", "before_cpu", "after_cpu", "after_over_before_rps")
    for driver in drivers:
        rows = [[i + 1, fmt(x["rps"]["gateway-before"]), fmt(x["rps"][after_name]), fmt(x["rps"][FLOOR]),
                 fmt(x["cpu"]["gateway-before"]), fmt(x["cpu"][after_name]), fmt(x["cpu"][FLOOR]),
                 *(fmt_ratio(x[k]) for k in keys)] for i, x in enumerate(per_round[driver])]
        medians = {k: median([x[k] for x in per_round[driver] if x[k] is not None]) for k in keys}
        rows.append(["median", "", "", "", "", "", "", *(fmt_ratio(medians[k]) for k in keys)])
        report.add_table(
            f"Gateways {target}, {FLOOR} passthrough, at c={CONCURRENCY}, {driver} driver: RPS and CPU µs/request per round, and ratios to {FLOOR} "
            f"of the same round (RPS: higher is better; CPU: lower is better)",
            ["round", "RPS before", "RPS after", f"RPS {FLOOR}", "CPU before", "CPU after", f"CPU {FLOOR}",
             "RPS before ÷ floor", "RPS after ÷ floor", "CPU before ÷ floor", "CPU after ÷ floor", "RPS after ÷ before"],
            rows,
        )
        report.summary[driver] = medians
    report.notes.append(f"before: the gateway package of {extra['before']}; after: {after_tree}. Each round alternates "
                        f"the order (before, after, {FLOOR}; then reversed); {warmup:g} s warm-up, {duration:g} s window.")
    report.notes.append("CPU µs/request: the system's whole process tree (user + system) over the window, divided by "
                        "the requests completed in it; the upstream and the load generator are not counted.")


def pooled(specs: list[str]) -> dict[str, dict[str, float | None]]:
    """Medians of per-round ratios to the floor, pooled over ab result files
    (``python -m bench pool <results.json>:<system>[,<system>...] ...``).

    Each spec is ``<results.json>:<system>[,<system>...]``: the gateway lines to pool from
    that run (e.g. both sides of a run that compared two commits with the same code path).
    """
    import json

    rps: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for spec in specs:
        path, _, systems = spec.rpartition(":")
        rounds: dict[tuple[int, str], dict[str, dict[str, Any]]] = {}
        for m in json.loads(open(path).read())["measurements"]:
            rounds.setdefault((m["ab_round"], m["driver"]), {})[m["system"]] = m
        for (_, driver), got in rounds.items():
            floor = got.get(FLOOR)
            for name in systems.split(","):
                line = got.get(name)
                if floor is None or line is None:
                    continue
                if (r := ratio(line["rps"], floor["rps"])) is not None:
                    rps.setdefault(driver, []).append(r)
                if (c := ratio(line.get("cpu_us_per_req"), floor.get("cpu_us_per_req"))) is not None:
                    cpu.setdefault(driver, []).append(c)
    return {driver: {"rounds": len(rps[driver]), "rps_over_floor": median(rps[driver]),
                     "cpu_over_floor": median(cpu.get(driver, []))} for driver in rps}

