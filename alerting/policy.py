"""The alert policy: a pure state machine from (stored state, check result, settings, now) to
(new state, alerts). No I/O and no clock of its own, so a test scripts whole timelines.

Two statuses live side by side:

- the *confirmed* status (UP / DOWN / UNKNOWN): DOWN after ``failure_threshold`` consecutive failing
  runs, UP after ``success_threshold`` consecutive passing runs;
- what people were *told* (``notified_down``): a DOWN alert was sent and no RESOLVED yet.

Alerts reconcile the two whenever alerts are not held: DOWN when confirmed DOWN and not yet told,
RESOLVED when confirmed UP and told DOWN, REMINDER every ``renotify_every`` while DOWN and told.
Alerts are *held* (not dropped) during a maintenance window, a silence, or while flapping, so when the
hold ends the next run catches up with one DOWN (still down) or one RESOLVED (came back after a DOWN
was sent). An outage that starts and ends inside a hold sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from alerting.models import (
    AlertEvent,
    AlertKind,
    CheckResult,
    ErrorKind,
    MaintenanceWindow,
    MonitorSpec,
    MonitorState,
    Status,
)


@dataclass(frozen=True)
class Hold:
    """Why alerts are held right now (maintenance window, silence, flapping); empty when not held."""

    maintenance: str | None = None
    silenced: bool = False

    def __bool__(self) -> bool:
        return bool(self.maintenance) or self.silenced


def active_window(windows: list[MaintenanceWindow], now: datetime) -> MaintenanceWindow | None:
    for window in windows:
        if window.active_until(now) is not None:
            return window
    return None


def hold_for(state: MonitorState, spec: MonitorSpec, global_windows: list[MaintenanceWindow], now: datetime) -> Hold:
    window = active_window(list(spec.maintenance) + list(global_windows), now)
    return Hold(maintenance=window.label() if window else None, silenced=state.silenced(now))


def _error_text(result: CheckResult) -> str:
    return result.message or result.summary()


def step(
    state: MonitorState,
    result: CheckResult,
    spec: MonitorSpec,
    now: datetime,
    hold: Hold = Hold(),
) -> tuple[MonitorState, list[AlertEvent]]:
    """Apply one check result; return the new state and the alerts to send (possibly none).

    A ``check_error`` result (our own code failed, the service was not really checked) leaves the
    state as it was: it is neither a failure nor a success of the service.
    """
    if result.error is ErrorKind.CHECK_ERROR:
        return state, []
    at = result.checked_at
    s = state
    was_down = state.status is Status.DOWN
    if s.silenced_until is not None and not s.silenced(now):
        s = replace(s, silenced_until=None, silence_reason=None)
    changed = False
    if result.ok:
        s = replace(s, consecutive_successes=s.consecutive_successes + 1, consecutive_failures=0)
        if s.consecutive_successes == 1 and s.episode_start is not None and s.episode_end is None:
            s = replace(s, episode_end=at)
        if s.status is not Status.UP and s.consecutive_successes >= spec.success_threshold:
            changed = s.status is Status.DOWN
            s = replace(s, status=Status.UP, since=s.episode_end if changed and s.episode_end else at)
    else:
        error = _error_text(result)
        if s.consecutive_failures == 0 and (s.status is not Status.DOWN or s.episode_start is None):
            # a new failure episode (a blip that recovered before DOWN simply starts over)
            s = replace(s, episode_start=at, episode_end=None, first_error=error)
        s = replace(
            s,
            consecutive_failures=s.consecutive_failures + 1,
            consecutive_successes=0,
            last_error=error,
            episode_end=None,
        )
        if s.status is not Status.DOWN and s.consecutive_failures >= spec.failure_threshold:
            changed = s.status is Status.UP
            s = replace(s, status=Status.DOWN, since=s.episode_start)

    s = _track_degraded(s, result, spec, at)
    events: list[AlertEvent] = []
    s = _track_flapping(s, spec, now, changed, events, hold, result)
    if hold or s.flapping:
        return s, events

    def event(kind: AlertKind, **extra) -> AlertEvent:
        return AlertEvent(
            kind, spec.name, now, down_since=s.episode_start, first_error=s.first_error,
            last_error=s.last_error, result=result, **extra,
        )

    if s.status is Status.DOWN and not s.notified_down:
        late = "sent late: alerts were held (maintenance, silence or flapping) when it went down" if was_down else ""
        events.append(event(AlertKind.DOWN, detail=late))
        s = replace(s, notified_down=True, last_alert_at=now)
    elif s.status is Status.DOWN and s.notified_down and spec.renotify_every:
        if s.last_alert_at is None or now - s.last_alert_at >= timedelta(seconds=spec.renotify_every):
            events.append(event(AlertKind.REMINDER))
            s = replace(s, last_alert_at=now)
    elif s.status is Status.UP and s.notified_down:
        events.append(event(AlertKind.RESOLVED, up_since=s.episode_end or at))
        s = replace(s, notified_down=False, last_alert_at=now)
    if s.status is not Status.DOWN and not s.notified_down:
        warned = AlertEvent(AlertKind.SLOW, spec.name, now, down_since=s.degraded_since, first_error=s.warning_text,
                            last_error=s.warning_text, result=result, level="warning")
        partial = s.warning_kind == ErrorKind.PARTIAL.value
        if s.degraded and not s.notified_degraded and (spec.partial_alert or not partial):
            kind = {ErrorKind.CERT_EXPIRING.value: AlertKind.CERT_EXPIRING,
                    ErrorKind.PARTIAL.value: AlertKind.PARTIAL}.get(s.warning_kind or "", AlertKind.SLOW)
            events.append(replace(warned, kind=kind))
            s = replace(s, notified_degraded=True)
        elif not s.degraded and s.notified_degraded:
            events.append(replace(warned, kind=AlertKind.RESOLVED, up_since=at))
            s = replace(s, notified_degraded=False)
    return s, events


def _track_degraded(s: MonitorState, result: CheckResult, spec: MonitorSpec, at: datetime) -> MonitorState:
    """The warning level: DEGRADED after ``degraded_threshold`` consecutive passing runs with a
    warning (slow, certificate expiring); the first passing run without one ends it. A failing run
    that is not (yet) DOWN changes nothing here; DOWN wins: it ends DEGRADED without a word (the DOWN
    alert says more, and its RESOLVED ends both)."""
    if s.status is Status.DOWN:
        if s.degraded or s.notified_degraded or s.consecutive_warnings:
            return replace(s, degraded=False, notified_degraded=False, consecutive_warnings=0, degraded_since=None)
        return s
    if not result.ok:
        return s
    if result.warning is not None:
        s = replace(s, consecutive_warnings=s.consecutive_warnings + 1, warning_kind=result.warning.value,
                    warning_text=result.warning_message or result.warning.value.replace("_", " "))
        if not s.degraded and s.consecutive_warnings >= spec.degraded_threshold:
            s = replace(s, degraded=True, degraded_since=at)
        return s
    if s.degraded or s.consecutive_warnings:
        s = replace(s, degraded=False, consecutive_warnings=0)
    return s


def _track_flapping(
    s: MonitorState,
    spec: MonitorSpec,
    now: datetime,
    changed: bool,
    events: list[AlertEvent],
    hold: Hold,
    result: CheckResult,
) -> MonitorState:
    if not spec.flap_threshold:
        return replace(s, changes=(), flapping=False) if (s.changes or s.flapping) else s
    window = timedelta(seconds=spec.flap_window)
    changes = tuple(t for t in s.changes if now - t < window) + ((now,) if changed else ())
    s = replace(s, changes=changes)
    if not s.flapping and len(changes) >= spec.flap_threshold:
        s = replace(s, flapping=True)
        if not hold:
            events.append(
                AlertEvent(
                    AlertKind.FLAPPING, spec.name, now, first_error=s.first_error, last_error=s.last_error,
                    result=result,
                    detail=f"changed state {len(changes)} times in the last {_span(spec.flap_window)}; "
                    f"alerts are paused until it is stable for {_span(spec.flap_window)}",
                )
            )
            s = replace(s, last_alert_at=now)
    elif s.flapping and not changes:
        # stable for a whole window: normal alerts resume, and people hear the settled status once
        # (a DOWN if it settled down, a RESOLVED if it settled up)
        s = replace(s, flapping=False, notified_down=s.status is not Status.DOWN)
    return s


def _span(seconds: float) -> str:
    from alerting.durations import format_duration

    return format_duration(seconds)


def storm_groups(events: list[AlertEvent], threshold: int) -> bool:
    """True when this run's DOWN alerts are a storm: at least ``threshold`` of them (0 = never)."""
    return threshold > 0 and sum(1 for e in events if e.kind is AlertKind.DOWN) >= threshold


__all__ = [
    "AlertEvent",
    "AlertKind",
    "Hold",
    "MonitorState",
    "Status",
    "active_window",
    "hold_for",
    "step",
    "storm_groups",
]
