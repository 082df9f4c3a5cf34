"""The status page's values, read from the state store and the config: pure reads, no rendering.

Only public-safe values leave this module: public monitor names, status words, numbers, times, and
incident summaries made from the stored error *kind* and HTTP status (``summary``); never a URL,
host, header, channel or error text. Days are UTC days; uptime leaves out the hours of maintenance
windows (a day with maintenance and no other downtime shows as maintenance).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from alerting.config import Config
from alerting.models import MaintenanceWindow
from alerting.policy import active_window
from alerting.status_page.spec import StatusPageSpec
from alerting.store import Store

DAYS = 90
TREND_HOURS = 24
MAX_WINDOW_OCCURRENCES = 5000  # a recurring window firing more often than this in 90 days is cut short
STATUS_TEXT = {
    "up": "Operational",
    "degraded": "Degraded performance",
    "down": "Down",
    "maintenance": "Under maintenance",
    "unknown": "No data yet",
}
OVERALL_TEXT = {
    "operational": "All systems operational",
    "degraded": "Degraded performance",
    "partial": "Partial outage",
    "major": "Major outage",
}
# error kind (alerting.models.ErrorKind values) -> words a customer may read; anything else: "outage"
ERROR_WORDS = {
    "timeout": "timeout",
    "refused": "connection refused",
    "dns": "DNS failure",
    "tls": "TLS error",
    "connection": "connection error",
    "too_many_redirects": "too many redirects",
    "unexpected_status": "unexpected response",
    "keyword_missing": "unexpected content",
    "keyword_present": "error content",
    "invalid_response": "invalid response",
    "redirect_elsewhere": "unexpected redirect",
    "check_error": "check error",
}


def summary(error: str | None, status: int | None) -> str:
    """Public words for an incident's first error: ``HTTP 503``, ``timeout``; never free text."""
    if error == "unexpected_status" and isinstance(status, int) and 100 <= status <= 599:
        return f"HTTP {status}"
    return ERROR_WORDS.get(error or "", "outage")


def slug(name: str) -> str:
    """A file-name-safe id for a public name (``Public API`` -> ``public-api``)."""
    return re.sub(r"[^a-z0-9_.]+", "-", name.lower()).strip("-.") or "monitor"


@dataclass(slots=True)
class Day:
    """One UTC day of one monitor. ``kind``: up (100 %), minor (95-100 %), major (< 95 %),
    maintenance (a window and no other downtime), none (no checks)."""

    day: date
    checks: int = 0
    ups: int = 0
    maintenance: bool = False
    incidents: int = 0
    uptime: float | None = None
    kind: str = "none"

    def __post_init__(self) -> None:
        self.uptime = up = 100.0 * self.ups / self.checks if self.checks > 0 else None
        if up is None:
            self.kind = "maintenance" if self.maintenance else "none"
        elif up >= 100.0 and not self.incidents:
            self.kind = "maintenance" if self.maintenance else "up"
        else:
            self.kind = "minor" if up >= 95.0 else "major"


@dataclass(frozen=True)
class Incident:
    monitor_id: str
    name: str
    started: datetime
    ended: datetime | None
    summary: str
    maintenance: bool  # it began inside a maintenance window

    def duration(self, now: datetime) -> timedelta:
        return max((self.ended or now) - self.started, timedelta(0))


@dataclass(frozen=True)
class Monitor:
    id: str
    name: str
    status: str
    last_check: datetime | None
    since: datetime | None
    days: list[Day]
    latency: list[float | None]  # median ms per hour, oldest first, TREND_HOURS of them

    @property
    def status_text(self) -> str:
        return STATUS_TEXT[self.status]

    @property
    def uptime(self) -> float | None:
        checks = sum(d.checks for d in self.days)
        return 100.0 * sum(d.ups for d in self.days) / checks if checks else None


@dataclass(frozen=True)
class Page:
    title: str
    description: str | None
    now: datetime
    monitors: list[Monitor]
    incidents: list[Incident]
    unknown: list[tuple[int, str]] = field(default_factory=list)  # status_page.monitors[i] naming no monitor

    @property
    def overall(self) -> str:
        """major: more than half of the monitors with a status are down; partial: some are down;
        degraded: none down, some degraded; else operational (maintenance and no data count for neither)."""
        seen = [m.status for m in self.monitors if m.status in ("up", "degraded", "down")]
        down = seen.count("down")
        if down and down * 2 > len(seen):
            return "major"
        if down:
            return "partial"
        return "degraded" if "degraded" in seen else "operational"

    @property
    def overall_text(self) -> str:
        return OVERALL_TEXT[self.overall]

    @property
    def last_check(self) -> datetime | None:
        return max((m.last_check for m in self.monitors if m.last_check), default=None)


def _status(raw: str | None, in_maintenance: bool) -> str:
    if in_maintenance:
        return "maintenance"
    value = (raw or "").lower()
    return value if value in ("up", "down", "degraded") else "unknown"


def _intervals(window: MaintenanceWindow, start: datetime, end: datetime) -> Iterable[tuple[datetime, datetime]]:
    """The times ``window`` was active between ``start`` and ``end``."""
    if window.start is not None and window.end is not None:
        if window.start < end and window.end > start:
            yield window.start, window.end
        return
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    zone = ZoneInfo(window.timezone) if window.timezone else timezone.utc
    length = timedelta(seconds=window.duration or 0)
    it = CronSim(window.cron or "", (start - length).astimezone(zone).replace(tzinfo=None))
    for _ in range(MAX_WINDOW_OCCURRENCES):
        try:
            began = next(it).replace(tzinfo=zone).astimezone(timezone.utc)
        except StopIteration:
            return
        if began >= end:
            return
        yield began, began + length


def maintenance_hours(windows: list[MaintenanceWindow], start: datetime, end: datetime) -> set[int]:
    """Epoch hours (``ts // 3600``) touched by any of ``windows`` between ``start`` and ``end``."""
    hours: set[int] = set()
    for window in windows:
        for a, b in _intervals(window, start, end):
            a, b = max(a, start), min(b, end)
            if a < b:
                hours.update(range(int(a.timestamp()) // 3600, (int(b.timestamp()) - 1) // 3600 + 1))
    return hours


def build_page(store: Store, config: Config, spec: StatusPageSpec, now: datetime, days: int = DAYS) -> Page:
    """The page's values for the public monitors of ``config`` at ``now``."""
    specs = {m.name: m for m in config.monitors}
    chosen = spec.chosen(list(specs), {n: list(m.tags) for n, m in specs.items()})
    known = set(specs)
    unknown = [(i, m.name) for i, m in enumerate(spec.monitors) if m.name not in known]
    names = [n for n, _ in chosen]
    today = now.date().toordinal() - date(1970, 1, 1).toordinal()  # epoch day
    first_day = today - days + 1
    start = datetime.fromtimestamp(first_day * 86400, timezone.utc)
    current_hour = int(now.timestamp()) // 3600

    states = store.raw_states(names)
    daily = store.daily_counts(first_day, now, names)
    trend = store.hourly_latency(current_hour - TREND_HOURS + 1, names)
    stored_incidents = store.incidents(start, names)

    # maintenance hours, once per distinct set of windows (usually: the global ones for everyone)
    hours_of: dict[tuple, tuple[set[int], bool]] = {}
    monitor_hours: dict[str, set[int]] = {}
    active_now: dict[str, bool] = {}
    for name in names:
        windows = tuple(specs[name].maintenance) + tuple(config.maintenance)
        if windows not in hours_of:
            hours_of[windows] = (maintenance_hours(list(windows), start, now),
                                 active_window(list(windows), now) is not None)
        monitor_hours[name], active_now[name] = hours_of[windows]
    all_hours = sorted(set().union(*monitor_hours.values())) if monitor_hours else []
    in_maint = store.hourly_counts(all_hours, [n for n in names if monitor_hours[n]])

    ids: dict[str, str] = {}
    taken: set[str] = set()
    for name, public in chosen:  # unique ids: a second "Public API" becomes public-api-2
        base = candidate = slug(public)
        n = 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate)
        ids[name] = candidate
    public_names = dict(chosen)

    incidents: list[Incident] = []
    per_day: dict[str, dict[int, int]] = {n: {} for n in names}
    for row in stored_incidents:
        name = row["monitor"]
        started, ended = row["started"], row["ended"]
        maint = int(started.timestamp()) // 3600 in monitor_hours[name]
        incidents.append(Incident(ids[name], public_names[name], started, ended,
                                  summary(row["error"], row["status"]), maint))
        if not maint:
            last = int((ended or now).timestamp()) // 86400
            for d in range(max(int(started.timestamp()) // 86400, first_day), min(last, today) + 1):
                per_day[name][d] = per_day[name].get(d, 0) + 1

    epoch = date(1970, 1, 1).toordinal()
    dates = [date.fromordinal(d + epoch) for d in range(first_day, today + 1)]
    monitors = []
    for name in names:
        counts = daily.get(name, {})
        hours = monitor_hours[name]
        taken_out: dict[int, list[int]] = {}
        for hour, (checks, ups) in in_maint.get(name, {}).items():
            out = taken_out.setdefault(hour // 24, [0, 0])
            out[0] += checks
            out[1] += ups
        maint_days = {h // 24 for h in hours}
        cells: list[Day] = []
        incident_days = per_day[name]
        for d, day in zip(range(first_day, today + 1), dates, strict=True):
            checks, ups = counts.get(d, (0, 0))
            if d in taken_out:
                checks, ups = checks - taken_out[d][0], ups - taken_out[d][1]
            cells.append(Day(day, checks, ups, d in maint_days, incident_days.get(d, 0)))
        raw, since, last_check = states.get(name, (None, None, None))
        hourly = trend.get(name, {})
        monitors.append(Monitor(
            ids[name], public_names[name], _status(raw, active_now[name]), last_check, since, cells,
            [hourly.get(h) for h in range(current_hour - TREND_HOURS + 1, current_hour + 1)],
        ))
    return Page(spec.title, spec.description, now, monitors, incidents[: spec.incidents], unknown)
