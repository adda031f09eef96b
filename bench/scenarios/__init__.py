"""The scenarios, by the name the command line uses. Each is ``run(session, report)``."""

from __future__ import annotations

from collections.abc import Callable

from bench.report import Report
from bench.scenarios import (
    ab, instructions, latency, memory, profile, streaming, sustained, syscalls, throughput, usage_writer, workers,
)
from bench.session import Session

Scenario = Callable[[Session, Report], None]

SCENARIOS: dict[str, Scenario] = {
    "latency": latency.run,
    "throughput": throughput.run,
    "sustained": sustained.run,
    "streaming": streaming.run,
    "memory": memory.run,
    "usage-writer": usage_writer.run,
    "workers": workers.run,
    "profile": profile.run,
    "ab": ab.run,
    "instructions": instructions.run,
    "syscalls": syscalls.run,
}
#: What ``python -m bench run`` does with no scenario named (profile, ab, instructions and syscalls are asked for by name).
DEFAULT = ("latency", "throughput", "sustained", "streaming", "memory", "usage-writer", "workers")
