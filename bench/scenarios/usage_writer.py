"""Usage writer throughput: rows per second of the gateway's BatchWriter, SQLite and PostgreSQL.

Runs ``python -m bench.writer_bench`` pinned to the system-under-test core, once per sink.
Its ``raw`` figure (the sink's own write calls, batch after batch, no queue) is this sink's
ceiling, so the writer's figure is also given as a ratio to it.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.report import Report, fmt, fmt_ratio
from bench.session import Session
from bench.stats import ratio


def run(session: Session, report: Report) -> None:
    rows_n = 50_000 if session.options.quick else 200_000
    rows = []
    for sink in ("sqlite", "postgres"):
        d = session.workdir / f"writer-{sink}"
        d.mkdir(exist_ok=True)
        argv = [sys.executable, "-m", "bench.writer_bench", "--sink", sink, "--rows", str(rows_n), "--dir", str(d),
                "--dsn", session.options.postgres_dsn]
        session.log(f"usage-writer {sink}: {rows_n:,} rows ...")
        child = session.sup.start(f"writer-{sink}", argv, cores=session.layout.sut, stdout=subprocess.PIPE)
        try:
            out, _ = child.proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            out = b""
        finally:
            session.sup.stop(child)
        line = next((x for x in reversed(out.decode(errors="replace").splitlines()) if x.startswith("{")), None)
        if line is None or child.proc.returncode:
            reason = (child.log_tail(3) or "no output").splitlines()[-1]
            session.log(f"usage-writer {sink} skipped: {reason}")
            report.systems[sink] = reason
            rows.append([sink, "-", "-", "-", "-", "-", reason[:80]])
            continue
        res = json.loads(line)
        report.measurements.append(res)
        report.systems[sink] = "ran"
        session.log(f"usage-writer {sink}: {fmt(res['rows_per_s'])} rows/s through BatchWriter, raw sink "
                    f"{fmt(res['raw_rows_per_s'])} rows/s, spilled {res['spilled']}")
        rows.append([sink, fmt(res["rows_per_s"]), fmt(res["raw_rows_per_s"]),
                     fmt_ratio(ratio(res["rows_per_s"], res["raw_rows_per_s"])),
                     fmt(res.get("cpu_s") and res["cpu_s"] / rows_n * 1e6, 1), res["spilled"], ""])
        report.summary[sink] = res
    report.add_table(
        f"BatchWriter, {rows_n:,} rows, batch 1000, queue 100,000 (one process on one core)",
        ["sink", "rows/s (writer)", "rows/s (sink alone)", "writer ÷ sink alone", "CPU µs/row", "spilled", "note"], rows,
    )
    report.notes += [
        "Target (issue 4): >= 50,000 rows/s to PostgreSQL.",
        "CPU µs/row is the writer process's CPU (the PostgreSQL server's own CPU is not counted).",
    ]
