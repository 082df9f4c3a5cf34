"""When each monitor is checked next: its own interval, its own phase (pure; times are monotonic seconds).

Slots stay exact: a monitor checked at ``t`` is next due at ``t + interval`` (not at the end of its
check plus interval), so one monitor's checks are ``interval`` apart however long a check takes.
A slot that passes while the monitor's previous check is still running, or while the process was
behind, is *missed*: counted, not made up with a burst of catch-up checks.

Monitors never checked before get their first slots spread over ``SPREAD`` of their interval (5,000
monitors at 30 s: 208 a second, the last one 24 s after the start), never slower than ``MIN_PACE`` a
second (20 monitors: all at once), in groups every ``GROUP_EVERY`` seconds. Their later slots keep
that phase, so the checks come at an even rate: a burst (every check in the first seconds of each
interval) would hold the serving process's CPU for seconds at a time, and every alert decided
meanwhile would wait for it. Groups, not single slots: a check run alone costs about twice the CPU
of one run among others (measured at 1,000 monitors: 2.3 ms against 1.4 ms per check), and a group
of 25-100 checks holds the CPU for a tenth of a second at most. A pool that pays per group instead
(the distributed mode: a Prefect task run per location and round, ~0.2 s of CPU in all) asks for
groups a share of the interval apart (``group_share``).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

SPREAD = 0.8  # new monitors' first slots cover this share of their (smallest) interval
MIN_PACE = 50.0  # first slots per second, at least
GROUP_EVERY = 0.5  # seconds: first slots come in groups this far apart (25 at a time at 50 a second)


def first_slot_pace(count: int, interval: float) -> float:
    """First slots per second for ``count`` new monitors at ``interval``: spread, but never slow."""
    return max(MIN_PACE, count / (SPREAD * interval)) if interval > 0 else math.inf


@dataclass
class Timetable:
    intervals: dict[str, float] = field(default_factory=dict)
    missed: int = 0
    _due: dict[str, float] = field(default_factory=dict)
    _heap: list[tuple[float, str]] = field(default_factory=list)

    def set_monitors(self, intervals: dict[str, float], now: float, ages: dict[str, float] | None = None,
                     pace: float | None = None, group_share: float | None = None) -> None:
        """Track exactly these monitors. A new one is due now (the next ones ``1 / pace`` s apart;
        by default ``first_slot_pace``, in groups ``GROUP_EVERY`` seconds apart, or ``group_share`` of
        the interval apart), or, when ``ages`` says it was checked ``age`` seconds ago (by an earlier
        process), one interval after that check. A monitor whose interval changed is due at the
        sooner of its old slot and one new interval from now."""
        ages = ages or {}
        group = 1  # first slots given together
        if pace is None:
            new = [interval for name, interval in intervals.items() if name not in self._due and name not in ages]
            pace = first_slot_pace(len(new), min(new)) if new else math.inf
            if math.isfinite(pace):
                every = group_share * min(new) if group_share else GROUP_EVERY
                group = max(1, math.ceil(pace * every))
                pace /= group  # groups per second
        fresh = 0
        for name in list(self._due):
            if name not in intervals:
                del self._due[name]  # its heap entries are skipped when they come up
        for name, interval in intervals.items():
            old = self.intervals.get(name)
            if name not in self._due:
                age = ages.get(name)
                if age is None:
                    due = now + (fresh // group) / pace
                    fresh += 1
                else:
                    due = now + max(0.0, interval - age)
            elif old != interval:
                due = min(self._due[name], now + interval)
            else:
                continue
            self._schedule(name, due)
        self.intervals = dict(intervals)

    def _schedule(self, name: str, due: float) -> None:
        self._due[name] = due
        heapq.heappush(self._heap, (due, name))

    def next_due(self) -> float | None:
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # a removed monitor, or a slot moved by set_monitors
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[tuple[str, float]]:
        """(monitor, its slot) for every slot that has come; each monitor's next slot is scheduled."""
        out = []
        while (due := self.next_due()) is not None and due <= now:
            _, name = heapq.heappop(self._heap)
            interval = self.intervals[name]
            behind = math.floor((now - due) / interval)  # whole slots that passed unchecked
            self.missed += behind
            out.append((name, due + behind * interval))
            self._schedule(name, due + (behind + 1) * interval)
        return out

    def due_now(self, name: str, now: float) -> None:
        """Check ``name`` at once (its slot passed while nobody could check it); later slots follow
        one interval after this one."""
        if name in self._due and self._due[name] > now:
            self._schedule(name, now)

    def skip(self, count: int = 1) -> None:
        """A slot came while that monitor's previous check was still running."""
        self.missed += count
