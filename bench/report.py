"""Results: ``bench/results/<date>-<scenario>.json`` and a markdown table beside it (also printed).

Every scenario builds a ``Report``: what ran (machine, layout, systems and why some were
skipped), raw measurements, and tables in which each gateway figure stands next to its
ratio to every baseline measured in the same run.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.stats import ratio

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def ratio_rows(
    figures: dict[str, float | None], sut_rows: Sequence[str], baselines: Sequence[str]
) -> list[list[str]]:
    """One row per gateway line: its figure divided by each baseline's."""
    return [[name, *(fmt_ratio(ratio(figures.get(name), figures.get(b))) for b in baselines)] for name in sut_rows]


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                                cwd=RESULTS_DIR.parent, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit = ""
    import os
    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "aiohttp": aiohttp.__version__,
        "kernel": platform.release(), "commit": commit,
    }


@dataclass
class Report:
    scenario: str
    quick: bool
    layout: str
    measurements: list[dict[str, Any]] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)  # (title, markdown)
    notes: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    systems: dict[str, str] = field(default_factory=dict)  # name -> "ran" | why not
    command: str = ""
    started: float = field(default_factory=time.time)

    def add_table(self, title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.sections.append((title, table(headers, rows)))

    def markdown(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started))
        m = machine()
        lines = [
            f"## bench: {self.scenario}{' (quick)' if self.quick else ''}", "",
            f"`{self.command}` at {when}; {m['cores']} cores ({m['cpu']}), Python {m['python']}, "
            f"aiohttp {m['aiohttp']}, gateway {m['commit'] or '?'}; cores: {self.layout}.", "",
        ]
        for title, body in self.sections:
            lines += [f"### {title}", "", body, ""]
        skipped = {k: v for k, v in self.systems.items() if v != "ran"}
        if skipped:
            lines += ["Skipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()), ""]
        if self.notes:
            lines += [*(f"- {n}" for n in self.notes), ""]
        return "\n".join(lines)

    def write(self, results_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
        results_dir.mkdir(parents=True, exist_ok=True)
        stem = time.strftime("%Y-%m-%d", time.localtime(self.started)) + f"-{self.scenario}" + ("-quick" if self.quick else "")
        json_path = results_dir / f"{stem}.json"
        md_path = results_dir / f"{stem}.md"
        doc = {
            "scenario": self.scenario, "quick": self.quick, "command": self.command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "machine": machine(), "layout": self.layout, "systems": self.systems, "summary": self.summary,
            "notes": self.notes, "measurements": self.measurements,
        }
        json_path.write_text(json.dumps(doc, indent=2) + "\n")
        md_path.write_text(self.markdown())
        return json_path, md_path
