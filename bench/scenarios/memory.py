"""Memory: RSS idle, under load, and its slope over a soak.

A fresh gateway is started and left idle; then a soak of back-to-back 5 s load steps
rotates through passthrough, translated and streamed requests at 64 connections, reading
the gateway's RSS after each step; the slope is a least-squares fit over the steps after
the first minute's warm-up (all steps on short soaks). Then idle again. Each baseline is
restarted too, and gets idle and one passthrough load step, for scale.
"""

from __future__ import annotations

import time

from bench.report import Report, fmt
from bench.scenarios.common import add_ratio_table, systems_status
from bench.session import Session, label
from bench.stats import slope

STEP_S = 5.0
CONCURRENCY = 64
ROTATION = (("passthrough", False), ("chat->anthropic", False), ("messages->openai", False),
            ("gemini->openai", False), ("passthrough", True))


def _mb(system) -> float:  # type: ignore[no-untyped-def]
    return round(system.child.rss_bytes() / 2**20, 1) if system.child else 0.0


def run(session: Session, report: Report) -> None:
    soak = session.options.soak_seconds if not session.options.quick else min(session.options.soak_seconds, 15.0)
    gateway = session.restart("gateway")
    if gateway is None:
        raise RuntimeError(f"the gateway did not start: {session.unavailable.get('gateway')}")
    time.sleep(2.0)
    idle = _mb(gateway)
    session.log(f"memory gateway idle RSS {idle} MB; soaking {soak:g} s at c={CONCURRENCY}")
    points: list[tuple[float, float]] = []
    t0 = time.monotonic()
    deadline = t0 + soak
    i = 0
    rotation = [(t, s) for t, s in ROTATION if gateway.shape(t, "zero") is not None]
    while time.monotonic() < deadline and i < 100_000:
        target, stream = rotation[i % len(rotation)]
        res = session.measure(gateway, target, "zero", CONCURRENCY, warmup=0.0, duration=STEP_S, stream=stream)
        i += 1
        if res is None:
            continue
        res["part"] = "soak"
        report.measurements.append(res)
        rss = _mb(gateway)
        points.append((time.monotonic() - t0, rss))
        session.log(f"memory soak {time.monotonic() - t0:5.0f}/{soak:g} s  {target}{' stream' if stream else ''}  "
                    f"{fmt(res['rps'])} rps  RSS {rss} MB  errors {res['errors']}")
    time.sleep(3.0)
    after = _mb(gateway)
    fit = [p for p in points if p[0] >= 60.0] if soak >= 180 else points
    per_min = slope([(t / 60, mb) for t, mb in fit])
    peak = max((mb for _, mb in points), default=None)
    rows = [[label(gateway, "(rotation)"), idle, fmt(peak, 1), fmt(points[-1][1] if points else None, 1), after,
             fmt(per_min, 2), f"{soak:g} s"]]

    for name in session.options.baselines:
        if name == "direct":
            continue
        base = session.restart(name)  # fresh, so "idle" means never loaded
        if base is None:
            continue
        time.sleep(2.0)
        b_idle = _mb(base)
        res = session.measure(base, "passthrough", "zero", CONCURRENCY, warmup=0.0, duration=STEP_S)
        if res is not None:
            report.measurements.append({**res, "part": "baseline"})
        rows.append([base.name, b_idle, fmt(_mb(base), 1), "-", "-", "-", f"{STEP_S:g} s"])
        session.log(f"memory {base.name}: idle {b_idle} MB, under load {_mb(base)} MB")
    idle_by, load_by = {label(gateway, "(rotation)"): idle}, {label(gateway, "(rotation)"): peak}
    for row in rows[1:]:
        idle_by[row[0]], load_by[row[0]] = row[1], float(row[2].replace(",", "")) if row[2] != "-" else None
    report.add_table(
        "Resident memory (MB, whole process tree)",
        ["line", "idle", "under load (peak)", "end of soak", "idle after", "slope MB/min", "load"], rows,
    )
    base_names = [r[0] for r in rows[1:]]
    add_ratio_table(report, "idle RSS as a ratio", idle_by, [rows[0][0]], base_names, "lower")
    add_ratio_table(report, "RSS under load as a ratio", load_by, [rows[0][0]], base_names, "lower")
    report.summary.update({"idle_mb": idle, "peak_mb": peak, "after_mb": after, "slope_mb_per_min": per_min, "points": points})
    report.systems = systems_status(session, ["gateway"] + [n for n in session.options.baselines if n in session.systems])
    report.notes += [
        f"Soak: back-to-back {STEP_S:g} s steps rotating {', '.join(t + (' (stream)' if s else '') for t, s in rotation)}; "
        "RSS read after each step. Slope: least squares over the steps after the first minute (all steps if the soak is under 3 min).",
        "Targets (issue 4): idle <= 60 MB, under load <= 150 MB, flat over the soak (ten minutes by default; --soak-seconds for another length).",
    ]
