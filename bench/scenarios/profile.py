"""A py-spy profile of the gateway under passthrough load (not in the default set).

    python -m bench run profile [--profile-target passthrough] [--profile-seconds 20]

Samples the one-worker gateway (idle loop time excluded) while wrk (or the bench client)
drives the target at 32 connections; writes a flame graph (``-profile-<target>.svg``),
the collapsed stacks (``.txt``), and tables of the top functions by own time and by
inclusive time, and of own time by area (aiohttp server, aiohttp client, gateway, ...).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

from bench.report import RESULTS_DIR, Report, fmt
from bench.session import Session

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# Own-time areas, by the frame's file path (first match wins). The upstream client is its
# own area; aiohttp's parser, streams and helpers, yarl and multidict serve both its server
# and its client, so they are counted apart rather than charged to either.
AREAS = (
    ("upstream client (gateway)", ("gateway/providers/upstream_client", "gateway/providers/http.py", "httptools",
                                   "aiohappyeyeballs")),
    ("aiohttp client", ("aiohttp/client", "aiohttp/connector", "aiohttp/tracing", "aiohttp/cookiejar")),
    ("aiohttp server", ("aiohttp/web", "aiohttp/base_protocol", "aiohttp/abc")),
    ("aiohttp shared (parser, writer, streams, helpers), yarl, multidict",
     ("aiohttp/", "yarl/", "multidict/")),
    ("logging", ("logging/",)),
    ("prometheus", ("prometheus_client",)),
    ("gateway", ("gateway/",)),
    ("asyncio/uvloop", ("asyncio/", "uvloop")),
)


#: Own time of these frames is the C event loop under them (uvloop: epoll, socket reads and writes, callbacks).
LOOP_FRAMES = ("run_app", "run_forever", "run_until_complete", "_run_once", "run")
LOOP = "event loop + socket I/O (uvloop, C)"


def _area(func: str, file: str) -> str:
    if func in LOOP_FRAMES and ("aiohttp/web.py" in file or "asyncio/" in file or "uvloop" in file):
        return LOOP
    for area, needles in AREAS:
        if any(n in file for n in needles):
            return area
    return "other: " + file.rsplit("/", 1)[-1]


def analyse(collapsed: Path, top: int = 25) -> dict[str, object]:
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    by_gateway: Counter[str] = Counter()
    total = 0
    for raw in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = raw.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f]
        names = []
        for f in frames:
            m = _FRAME.match(f)
            file = m.group("file") if m else ""
            names.append((f"{m.group('func')} ({_short(file)})" if m else f, file, m.group("func") if m else f))
        if names:
            name, file, func = names[-1]
            area = _area(func, file)
            own[LOOP if area == LOOP else name] += n
            areas[area] += n
            # Which gateway code the time is spent for: the innermost gateway frame (with what it calls).
            mine = [x[0] for x in names if "gateway/" in x[1]]
            by_gateway[mine[-1] if mine else ("(" + area + ", no gateway frame)")] += n
        for name in {x[0] for x in names}:
            incl[name] += n
    return {"total": total, "own": own.most_common(top), "inclusive": incl.most_common(top), "areas": areas.most_common(),
            "by_gateway_frame": by_gateway.most_common(top)}


def _short(file: str) -> str:
    for marker in ("site-packages/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return file


def run(session: Session, report: Report) -> None:
    target = session.options.extra.get("profile_target", "passthrough")
    seconds = float(session.options.extra.get("profile_seconds", 10.0 if session.options.quick else 20.0))
    pyspy = shutil.which("py-spy")
    if pyspy is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    gateway = session.system("gateway")
    if gateway is None or gateway.child is None:
        raise RuntimeError(f"the gateway did not start: {session.unavailable.get('gateway')}")
    report.scenario = f"profile-{target.replace('->', '-to-')}"  # one result file per target
    stem = time.strftime("%Y-%m-%d") + f"-{report.scenario}"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    svg, txt = RESULTS_DIR / f"{stem}.svg", RESULTS_DIR / f"{stem}.txt"
    # Warm the process first, so start-up work is not in the profile.
    session.measure(gateway, target, session.fast_mode, 32, warmup=0.0, duration=2.0)
    session.log(f"profile: py-spy on gateway pid {gateway.child.pid} for {seconds:g} s under {target} load at c=32")
    procs = []
    for fmt_, out in (("raw", txt), ("flamegraph", svg)):
        procs.append(session.sup.start(
            f"py-spy-{fmt_}", [pyspy, "record", "--pid", str(gateway.child.pid), "--duration", str(int(seconds)),
                               "--rate", "250", "--format", fmt_, "-o", str(out), "--nonblocking"],
            cores=session.layout.load))
    time.sleep(1.0)
    res = session.measure(gateway, target, session.fast_mode, 32, warmup=0.0, duration=seconds + 1)
    for p in procs:
        try:
            p.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        session.sup.stop(p)
    if res is not None:
        report.measurements.append(res)
        session.log(f"profile load: {fmt(res['rps'])} rps, cpu {fmt(res.get('cpu_us_per_req'))} µs/req (sampling slows it)")
    if not txt.exists():
        raise RuntimeError(f"py-spy wrote nothing:\n{procs[0].log_tail()}")
    a = analyse(txt)
    total = a["total"] or 1
    pct = lambda n: f"{100 * n / total:.1f}%"  # noqa: E731
    report.add_table(f"Own time by area ({a['total']:,} samples, idle excluded)", ["area", "share"],
                     [[k, pct(v)] for k, v in a["areas"]])
    report.add_table("Top functions by own time", ["function", "share"], [[k, pct(v)] for k, v in a["own"]])
    report.add_table("Time by the innermost gateway frame on the stack (that function plus the library code it calls)",
                     ["gateway function", "share"], [[k, pct(v)] for k, v in a["by_gateway_frame"]])
    report.add_table("Top functions by inclusive time (a coroutine resumed by the C loop starts its own stack, so "
                     "callers above an await are not included)", ["function", "share"], [[k, pct(v)] for k, v in a["inclusive"]])
    report.summary.update({"profile": a, "svg": str(svg), "collapsed": str(txt)})
    report.systems = {"gateway": "ran"}
    report.notes += [f"Flame graph: {svg}", f"Collapsed stacks: {txt}",
                     "--nonblocking sampling: stacks may be slightly torn, but the process is not paused."]
