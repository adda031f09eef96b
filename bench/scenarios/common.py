"""What the scenarios share: which lines (system x target) run, and ratio tables."""

from __future__ import annotations

from collections.abc import Sequence

from bench.report import Report, fmt_ratio
from bench.session import Session, label
from bench.stats import ratio
from bench.systems import System

Line = tuple[System, str]  # (system, target)


def lines(session: Session, targets: Sequence[str], baselines: bool = True) -> list[Line]:
    """The gateway's ``targets`` that it can serve (and the ``--before`` checkout's gateway's,
    when given), then each available baseline's passthrough."""
    out: list[Line] = []
    gateway = session.system("gateway")
    if gateway is None:
        raise RuntimeError(f"the gateway did not start: {session.unavailable.get('gateway')}")
    out += [(gateway, t) for t in targets if gateway.shape(t, "zero") is not None]
    if session.options.extra.get("before") and (before := session.system("gateway-before")) is not None:
        out += [(before, t) for t in targets if before.shape(t, "zero") is not None]
    if baselines:
        out += [(b, "passthrough") for b in session.baselines()]
    return out


def names(ls: Sequence[Line]) -> tuple[list[str], list[str]]:
    """Labels of the gateway lines and of the baseline lines."""
    sut = [label(s, t) for s, t in ls if s.role == "sut"]
    base = [label(s, t) for s, t in ls if s.role != "sut"]
    return sut, base


def add_ratio_table(
    report: Report, title: str, figures: dict[str, float | None], sut: Sequence[str], baselines: Sequence[str],
    better: str,
) -> None:
    """``figures[gateway line] / figures[baseline]`` for each pair; ``better`` says which way is good."""
    if not baselines or not sut:
        return
    def r(n: str, b: str) -> float | None:
        # A ratio to a baseline figure at or below zero (an "added" figure lost in noise) means nothing.
        base = figures.get(b)
        return ratio(figures.get(n), base) if base is not None and base > 0 else None

    rows = [[n, *(fmt_ratio(r(n, b)) for b in baselines)] for n in sut]
    report.add_table(f"{title} ({better} is better)", ["", *(f"÷ {b}" for b in baselines)], rows)
    report.summary.setdefault("ratios", {})[title] = {
        n: {b: r(n, b) for b in baselines} for n in sut
    }


def systems_status(session: Session, used: Sequence[str]) -> dict[str, str]:
    status = {name: "ran" for name in used}
    status.update(session.unavailable)
    return status


def add_before_table(report: Report, title: str, figures: dict[str, dict[str, float | None]], sut: Sequence[str]) -> None:
    """This checkout's gateway ÷ the ``--before`` checkout's, per line and figure (``figures``:
    column title -> line -> value; ``title`` says which way is better); nothing when no
    ``--before`` lines ran."""
    pairs = [(n, "gateway-before " + n.removeprefix("gateway ")) for n in sut if n.startswith("gateway ")]
    pairs = [(n, b) for n, b in pairs if b in sut]
    if not pairs:
        return
    rows = [[n.removeprefix("gateway "), *(fmt_ratio(ratio(col.get(n), col.get(b))) for col in figures.values())]
            for n, b in pairs]
    report.add_table(title, ["target", *figures], rows)
