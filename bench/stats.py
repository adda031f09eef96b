"""Small statistics: percentiles, a log-bucket histogram, medians, a least-squares slope, ratios."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary_us(values_ns: Iterable[int]) -> dict[str, float | None]:
    """p50/p90/p99/p99.9/max/mean in microseconds of nanosecond samples."""
    v = sorted(values_ns)
    us = lambda x: None if x is None else round(x / 1000, 1)  # noqa: E731
    return {
        "n": len(v),
        "p50_us": us(percentile(v, 50)),
        "p90_us": us(percentile(v, 90)),
        "p99_us": us(percentile(v, 99)),
        "p999_us": us(percentile(v, 99.9)),
        "max_us": us(v[-1] if v else None),
        "mean_us": us(sum(v) / len(v) if v else None),
    }


def histogram_us(values_ns: Iterable[int], per_octave: int = 4) -> dict[str, int]:
    """Counts in log-spaced buckets (``per_octave`` per doubling), keyed by the bucket's upper edge in µs."""
    counts: dict[int, int] = {}
    for ns in values_ns:
        us = max(ns / 1000, 1.0)
        b = math.ceil(math.log2(us) * per_octave)
        counts[b] = counts.get(b, 0) + 1
    return {f"{2 ** (b / per_octave):.0f}": counts[b] for b in sorted(counts)}


def median(values: Iterable[float | None]) -> float | None:
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope dy/dx of (x, y) points."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b
