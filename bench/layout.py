"""Which cores each bench process runs on.

The system under test gets a core of its own; the load generator and the fake upstream
share what is left (on a 2-core machine: the system under test on core 0, the rest on
core 1). With 4+ cores the upstream also gets its own, and a second gateway worker has a
free core; with 1 core everything shares it and the results say so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    sut: tuple[int, ...]  # one-worker system under test
    load: tuple[int, ...]  # load generator (and the orchestrator, which mostly waits)
    upstream: tuple[int, ...]
    sut_wide: tuple[int, ...]  # for --workers 2: two cores if any are free of load/upstream, else every core
    note: str

    def describe(self) -> str:
        return f"sut={list(self.sut)} load={list(self.load)} upstream={list(self.upstream)} workers2={list(self.sut_wide)} ({self.note})"


def plan() -> Layout:
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) == 1:
        c = (cores[0],)
        return Layout(c, c, c, c, "one core: everything shares it, ratios only")
    if len(cores) == 2:
        return Layout((cores[0],), (cores[1],), (cores[1],), tuple(cores),
                      "two cores: load generator and upstream share the second; --workers 2 shares it too")
    if len(cores) == 3:
        return Layout((cores[0],), (cores[1],), (cores[2],), (cores[0], cores[2]),
                      "three cores: --workers 2 shares the upstream's core")
    return Layout((cores[0],), (cores[2],), (cores[3],), (cores[0], cores[1]), f"{len(cores)} cores")
