"""CPU instructions per request, counted by valgrind's callgrind: a figure that noise cannot move.

    python -m bench run instructions [--before TREE] [--instr-requests 1000] [--instr-stream]

Time-based figures on a shared 2-vCPU VM move by ±20% between runs; an instruction count
moves by well under 1%, whatever else the machine is doing. Each system (the gateway's
targets; the gateway of ``--before``'s checkout when given; the aiohttp proxy) runs under
``valgrind --tool=callgrind`` with instrumentation off, takes a warm-up, then has
instrumentation switched on for exactly ``--instr-requests`` requests at concurrency 8
(the client waits while it is switched), and off again. Every thread of the process counts
(the usage writer's and the log writer's included).

``--instr-stream`` counts streams instead: 64 deltas paced 20 ms apart (so each arrives in
a read of its own, as from a model), ``--instr-requests`` streams (default 48) at
concurrency 4 (``--instr-concurrency``; low, so that valgrind's slow-down does not let
deltas queue up and coalesce into fewer reads), and gives instructions per delta: the
stream's count over 64, its request's own share included. Paced streams take wall time,
so what a process does when idle (timers, the store reload every 2 s, the writers' wake-ups)
would weigh on the count: each system is also counted for ``IDLE_S`` idle seconds, and
that rate over the loaded window is taken off.

What it does not see: the kernel's side of system calls (not counted), and cache misses
or branch mispredictions (an instruction is an instruction). Background work paced by the
clock (the usage writer's flush every 200 ms, the store reload every 2 s) spreads over
fewer requests under valgrind's ~50x slow-down, so per-batch costs are slightly
overcounted on both sides of a comparison. Use it for before/after comparisons of the
same code path and for ratios between systems in the same run; speed itself is still
measured by the time-based scenarios.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.drivers import Shape
from bench.report import Report, fmt, fmt_ratio
from bench.session import Session, label
from bench.stats import ratio
from bench.systems import STREAM_DELTAS, TARGETS, AiohttpProxy, Gateway, System, Unavailable

CONCURRENCY = 8
WARMUP = 300
STREAM_MODE = "s64x20"
STREAM_CONCURRENCY = 4
STREAM_WARMUP = 8
IDLE_S = 10.0


def _valgrind(out: Path) -> tuple[str, ...]:
    return ("valgrind", "--tool=callgrind", "--instr-atstart=no", "-q", f"--callgrind-out-file={out}")


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True, timeout=120)


def _totals(out: Path) -> int:
    """The instruction count of the newest dump of ``out``."""
    dumps = sorted(out.parent.glob(out.name + ".*"), key=lambda p: int(p.suffix[1:]))
    for line in dumps[-1].read_text().splitlines():
        if line.startswith(("totals:", "summary:")) and int(line.split()[1]):
            return int(line.split()[1])
    raise RuntimeError(f"no instruction totals in {dumps[-1]}")


async def requests_at_concurrency(shape: Shape, n: int, concurrency: int = CONCURRENCY) -> int:
    """Send ``n`` requests, ``concurrency`` at a time; the number that failed."""
    left, failed = [n], [0]
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async def worker() -> None:
            while left[0] > 0:
                left[0] -= 1
                async with http.post(shape.url, data=shape.body, headers=shape.headers) as resp:
                    await resp.read()
                    failed[0] += resp.status != 200
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failed[0]


def _count(system: System, out: Path, shape: Shape, n: int, concurrency: int, warmup: int,
           idle_s: float = 0.0) -> dict[str, Any]:
    """Instructions over ``n`` requests; with ``idle_s``, also over that many idle seconds,
    and the count less the idle rate over the loaded window."""
    assert system.child is not None
    pid = system.child.pid
    failed = asyncio.run(requests_at_concurrency(shape, warmup, concurrency))
    _control(pid, "-z")
    _control(pid, "-i", "on")
    t0 = time.monotonic()
    failed += asyncio.run(requests_at_concurrency(shape, n, concurrency))
    window = time.monotonic() - t0
    _control(pid, "-i", "off")
    _control(pid, "-d")
    total = _totals(out)
    res: dict[str, Any] = {"requests": n, "errors": failed, "instructions": total, "per_request": round(total / n),
                           "window_s": round(window, 2)}
    if idle_s:
        _control(pid, "-z")
        _control(pid, "-i", "on")
        time.sleep(idle_s)
        _control(pid, "-i", "off")
        _control(pid, "-d")
        rate = _totals(out) / idle_s
        res["idle_per_s"] = round(rate)
        res["busy_per_request"] = round(max(0.0, total - rate * window) / n)
    return res


def _start(session: Session, system: System, out: Path) -> System | None:
    system.wrap = _valgrind(out)
    try:
        system.start(session.start_upstream())
    except (Unavailable, RuntimeError) as exc:
        session.unavailable[system.name] = str(exc).splitlines()[0]
        session.log(f"{system.name} skipped: {session.unavailable[system.name]}")
        return None
    session.systems[system.name] = system  # stopped with the session
    return system


def run(session: Session, report: Report) -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise RuntimeError("valgrind is not installed (apt-get install -y valgrind)")
    extra = session.options.extra
    stream = bool(extra.get("instr_stream"))
    quick = session.options.quick
    if stream:
        n = int(extra.get("instr_requests") or (16 if quick else 48))
        concurrency = int(extra.get("instr_concurrency") or STREAM_CONCURRENCY)
        mode, warmup, per, unit = STREAM_MODE, STREAM_WARMUP, STREAM_DELTAS[STREAM_MODE], "delta"
    else:
        n = int(extra.get("instr_requests") or (300 if quick else 1000))
        concurrency = int(extra.get("instr_concurrency") or CONCURRENCY)
        mode, warmup, per, unit = session.fast_mode, WARMUP, 1, "request"
    d = session.workdir / "callgrind"
    d.mkdir(exist_ok=True)
    systems: list[tuple[System, list[str]]] = []
    for system, targets in (
        (Gateway(tree=Path(extra["before"]).resolve(), name="gateway-before") if extra.get("before") else None, TARGETS),
        (Gateway(name="gateway-callgrind"), TARGETS),
        (AiohttpProxy(), ["passthrough"]),
    ):
        if system is None:
            continue
        out = d / f"{system.name}.out"
        started = _start(session, system, out)
        if started is None:
            continue
        systems.append((started, list(targets)))
        session.log(f"{system.name} ready under callgrind")
    figures: dict[str, float | None] = {}
    rows = []
    for system, targets in systems:
        out = d / f"{system.name}.out"
        for target in targets:
            shape = system.shape(target, mode, stream)
            if shape is None:
                continue
            res = _count(system, out, shape, n, concurrency, warmup, IDLE_S if stream else 0.0)
            if stream:
                res["per_delta"] = round(res["busy_per_request"] / per)
            res.update(system=system.name, target=target, mode=mode, stream=stream)
            report.measurements.append(res)
            name = label(system, target).replace("gateway-callgrind", "gateway")
            figures[name] = res["per_delta"] if stream else res["per_request"]
            rows.append([name, fmt(figures[name]), res["requests"], res["errors"]]
                        + ([fmt(res["idle_per_s"]), fmt(round(res["per_request"] / per))] if stream else []))
            session.log(f"instructions {name:<30} {fmt(figures[name])} per {unit}  errors {res['errors']}")
        session.stop(system.name)
    floor = figures.get("aiohttp-proxy")
    passthrough = figures.get("gateway passthrough")
    for row in rows:
        row += [fmt_ratio(ratio(figures[row[0]], floor)), fmt_ratio(ratio(figures[row[0]], passthrough))]
    what = f"{n} streams of {per} paced deltas" if stream else f"{n} requests"
    report.add_table(
        f"Instructions per {unit} (callgrind, every thread, user space), {what} at concurrency {concurrency} "
        "after a warm-up (lower is better)",
        ["line", f"instructions / {unit}", "streams" if stream else "requests", "errors"]
        + (["idle instructions / s", "per delta, idle not taken off"] if stream else [])
        + ["÷ aiohttp-proxy", "÷ gateway passthrough"], rows)
    before = {k.removeprefix("gateway-before "): v for k, v in figures.items() if k.startswith("gateway-before ")}
    if before:
        ratios = [[t, fmt(before[t]), fmt(figures.get(f"gateway {t}")), fmt_ratio(ratio(figures.get(f"gateway {t}"), before[t]))]
                  for t in before]
        report.add_table(f"This checkout ÷ --before, instructions per {unit} (lower is better)",
                         ["target", "before", "after", "after ÷ before"], ratios)
    report.summary["per_delta" if stream else "per_request"] = figures
    report.notes.append(f"upstream mode: {mode}; the client (this process) and the upstream are not counted")
