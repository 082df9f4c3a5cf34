"""Latency histograms: fixed log-spaced buckets, so hourly rollups can be merged into p50/p95 over any
window without keeping every raw latency. Pure functions; ~12 % resolution (buckets grow by 1.25x)."""

from __future__ import annotations

import bisect
import math

GROWTH = 1.25
# upper edges in ms: 1, 1.25, 1.56, ... up to ~70 s; the last bucket takes everything above
EDGES = [GROWTH**i for i in range(0, 51)]


def bucket(ms: float) -> int:
    return min(bisect.bisect_left(EDGES, max(ms, 0.0)), len(EDGES) - 1)


def parse(text: str | None) -> dict[int, int]:
    """``"16:5,17:12"`` -> {16: 5, 17: 12}."""
    if not text:
        return {}
    out: dict[int, int] = {}
    for part in text.split(","):
        index, _, count = part.partition(":")
        out[int(index)] = out.get(int(index), 0) + int(count)
    return out


def dump(hist: dict[int, int]) -> str:
    return ",".join(f"{i}:{n}" for i, n in sorted(hist.items()) if n)


def add(hist: dict[int, int], other: dict[int, int]) -> dict[int, int]:
    merged = dict(hist)
    for index, count in other.items():
        merged[index] = merged.get(index, 0) + count
    return merged


def percentile(hist: dict[int, int], q: float) -> float | None:
    """The ``q``-th percentile (0-100), interpolated geometrically inside its bucket."""
    total = sum(hist.values())
    if not total:
        return None
    rank = q / 100 * total
    seen = 0
    for index in sorted(hist):
        count = hist[index]
        if seen + count >= rank:
            low = EDGES[index - 1] if index > 0 else 0.0
            high = EDGES[index]
            frac = (rank - seen) / count if count else 1.0
            if low <= 0:
                return high * frac
            return low * math.exp(math.log(high / low) * frac)
        seen += count
    return EDGES[max(hist)]


def median(text: str | None) -> float | None:
    """``percentile(parse(text), 50)`` in one pass over a stored histogram (the status page reads
    thousands of them per build)."""
    if not text:
        return None
    pairs = [(int(i), int(n)) for i, _, n in (part.partition(":") for part in text.split(","))]
    if any(a[0] >= b[0] for a, b in zip(pairs, pairs[1:], strict=False)):  # ``dump`` writes them in order
        pairs.sort()
    total = sum(n for _, n in pairs)
    if not total:
        return None
    rank, seen = total / 2, 0
    for index, count in pairs:
        if seen + count >= rank:
            low, high = (EDGES[index - 1] if index > 0 else 0.0), EDGES[index]
            frac = (rank - seen) / count if count else 1.0
            return high * frac if low <= 0 else low * math.exp(math.log(high / low) * frac)
        seen += count
    return EDGES[pairs[-1][0]]
