"""System calls per request, counted by ``strace -c -f``: the kernel work and thread wake-ups
that an instruction count does not see.

    python -m bench run syscalls [--before TREE] [--instr-requests 1000]

Each system (the gateway's passthrough and governed targets, the ``--before`` checkout's
gateway when given, the aiohttp proxy) takes a warm-up, then ``strace -c -f`` is attached
for exactly ``--instr-requests`` requests at concurrency 8. A futex call is a thread
waking another or waiting for the GIL; on the one core a worker is pinned to, each is a
context switch the event loop pays for.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

from bench.report import Report, fmt
from bench.scenarios.instructions import WARMUP, requests_at_concurrency
from bench.session import Session, label
from bench.systems import System

TARGETS = ("passthrough", "governed")
SHOWN = ("futex", "write", "read", "epoll_pwait", "getrandom", "pwrite64")


def _counts(path: Path) -> dict[str, int]:
    """syscall -> calls, from ``strace -c`` output."""
    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            calls = parts[3]
            if calls.isdigit():
                out[parts[-1]] = int(calls)
    return out


def _count(session: Session, system: System, target: str, n: int, workdir: Path) -> dict[str, float] | None:
    shape = system.shape(target, session.fast_mode)
    if shape is None or system.child is None:
        return None
    asyncio.run(requests_at_concurrency(shape, WARMUP))
    out = workdir / f"strace-{system.name}-{target}.txt"
    tracer = subprocess.Popen(["strace", "-c", "-f", "-p", str(system.child.pid), "-o", str(out)],
                              stderr=subprocess.PIPE, text=True)
    try:
        assert tracer.stderr is not None
        # "Process N attached with K threads": every thread is traced from here on.
        if "attached" not in tracer.stderr.readline():
            raise RuntimeError(f"strace could not attach to {system.name}")
        failed = asyncio.run(requests_at_concurrency(shape, n))
    finally:
        tracer.terminate()
        tracer.wait(30)
    counts = _counts(out)
    per = {name: calls / n for name, calls in counts.items()}
    per["total"] = sum(counts.values()) / n
    per["errors"] = failed
    return per


def run(session: Session, report: Report) -> None:
    if shutil.which("strace") is None:
        raise RuntimeError("strace is not installed (apt-get install -y strace)")
    extra = session.options.extra
    n = int(extra.get("instr_requests") or (300 if session.options.quick else 1000))
    names = (["gateway-before"] if extra.get("before") else []) + ["gateway", "aiohttp-proxy"]
    rows, figures = [], {}
    for name in names:
        system = session.system(name)
        if system is None:
            continue
        for target in TARGETS if system.role == "sut" else ("passthrough",):
            per = _count(session, system, target, n, session.workdir)
            if per is None:
                continue
            line = label(system, target)
            figures[line] = per
            report.measurements.append({"system": system.name, "target": target, "requests": n, "per_request": per})
            rows.append([line, *(fmt(per.get(s, 0.0), 2) for s in SHOWN), fmt(per["total"], 2), int(per["errors"])])
            session.log(f"syscalls {line:<28} futex {per.get('futex', 0):.2f}/req  total {per['total']:.2f}/req")
    report.add_table(
        f"System calls per request (strace -c -f, every thread), {n} requests at concurrency 8 (lower is better)",
        ["line", *SHOWN, "all", "errors"], rows)
    report.summary["per_request"] = figures
    report.notes.append("strace slows every system call down, so the time columns of strace itself are not used; "
                        "the counts are what the process asked the kernel for")
