"""Which monitors a cycle checks, and in what order: pure functions, no I/O.

Each monitor has its own ``interval``: the served flow runs every cycle (the smallest interval by
default) and checks only the monitors that are due, so a monitor at 5m is not checked every 30 s.
Checks are ordered round-robin across hosts so that a per-host limit never idles the pool.
"""

from __future__ import annotations

import math
from datetime import datetime
from itertools import zip_longest
from urllib.parse import urlsplit

from alerting.models import MonitorSpec


def due_monitors(
    specs: list[MonitorSpec], last_checked: dict[str, datetime], now: datetime, cycle_seconds: float | None
) -> list[MonitorSpec]:
    """Monitors whose interval has passed since their last check.

    ``cycle_seconds`` is how often the flow runs; a monitor is due when less than half a cycle is
    left of its interval (the next run would be late), so schedule jitter never skips a beat. With
    no cycle (a one-off ``alerting run``) every monitor is due.
    """
    if not cycle_seconds:
        return list(specs)
    due = []
    for spec in specs:
        last = last_checked.get(spec.name)
        interval = effective_interval(spec, cycle_seconds)
        slack = min(cycle_seconds / 2, interval / 2)
        if last is None or (now - last).total_seconds() >= interval - slack:
            due.append(spec)
    return due


def slots_in_window(
    specs: list[MonitorSpec], last_checked: dict[str, datetime], start: float, cycle_seconds: float,
    now: float, grace: float = 10.0,
) -> dict[str, float | None]:
    """For a scheduled run whose window is ``[start, start + cycle_seconds)`` (epoch seconds): each
    monitor to check in it, with its slot (whole intervals after its last check, the first in or
    after the window's start), or None to check it at once: never checked, or a slot before the
    window that passed more than ``grace`` seconds ago unchecked (the run that owned it failed or
    never started).

    The windows of consecutive runs tile time, so each slot belongs to exactly one run: however
    early or late Prefect's runner starts the runs (up to 10 s early), and even when two overlap,
    each monitor is checked once per slot and its checks stay ``interval`` apart.

    A run that starts after its whole window has passed (a backlog of late runs, on a machine too
    busy for the schedule) has no slot left to honour: it checks what is due now, as a run without
    a schedule does (``due_monitors``). Otherwise such runs would each find their window before the
    last check and check nothing, for as long as the backlog lasts.
    """
    end = start + cycle_seconds
    late = now >= end
    out: dict[str, float | None] = {}
    for spec in specs:
        last = last_checked.get(spec.name)
        if last is None:
            out[spec.name] = None
            continue
        interval = effective_interval(spec, cycle_seconds)
        at = last.timestamp()
        if late:
            if now - at >= interval - min(cycle_seconds / 2, interval / 2):
                out[spec.name] = None
            continue
        k = max(1, math.ceil((start - at) / interval))
        if k >= 2 and at + (k - 1) * interval < now - grace:
            out[spec.name] = None  # a slot missed by an earlier run: not made to wait another interval
        elif at + k * interval < end:
            out[spec.name] = at + k * interval
    return out


def effective_interval(spec: MonitorSpec, cycle_seconds: float) -> float:
    """The monitor's own ``interval`` when the config sets one (per monitor or in ``defaults``),
    else the serve interval: ``alerting serve --interval 10s`` checks unconfigured monitors every 10 s."""
    return spec.interval if "interval" in spec.model_fields_set else cycle_seconds


def host_of(spec: MonitorSpec) -> str:
    parts = urlsplit(spec.url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def interleave_by_host(specs: list[MonitorSpec], hosts: dict[str, str] | None = None) -> list[MonitorSpec]:
    """Round-robin across hosts: a1 b1 c1 a2 b2 ..., so the per-host limit rarely blocks a worker.
    ``hosts`` (monitor name -> host) saves parsing each URL again."""
    groups: dict[str, list[MonitorSpec]] = {}
    for spec in specs:
        groups.setdefault(hosts[spec.name] if hosts else host_of(spec), []).append(spec)
    return [spec for batch in zip_longest(*groups.values()) for spec in batch if spec is not None]


def smallest_interval(specs: list[MonitorSpec], default: float = 30.0) -> float:
    """The serve interval when none is given: the smallest interval a monitor asks for."""
    return min((s.interval for s in specs if "interval" in s.model_fields_set), default=default)


def parse_shard(value: str) -> tuple[int, int]:
    """``"2/3"`` -> (2, 3): this worker takes the second of three shards."""
    try:
        index, count = (int(part) for part in value.split("/"))
    except ValueError:
        raise ValueError(f"expected a shard as I/N such as 1/2, got {value!r}") from None
    if not 1 <= index <= count:
        raise ValueError(f"shard {value!r}: I must be between 1 and N")
    return index, count


def in_shard(spec: MonitorSpec, shard: tuple[int, int]) -> bool:
    """A stable split of monitors by name (the same on every worker, across restarts)."""
    import zlib

    index, count = shard
    return zlib.crc32(spec.name.encode()) % count == index - 1
