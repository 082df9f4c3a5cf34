"""Scripted timelines through the pure policy: an injected clock, no I/O, no waits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from alerting.config import ConfigError, parse_config
from alerting.models import CheckResult, ErrorKind, MaintenanceWindow, MonitorSpec
from alerting.policy import AlertKind, Hold, MonitorState, Status, hold_for, step
from alerting.record import plan_alerts

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


def spec(**kw) -> MonitorSpec:
    kw.setdefault("failure_threshold", 2)
    return MonitorSpec(name=kw.pop("name", "api"), url="http://127.0.0.1:9/", channels=kw.pop("channels", ["ops"]), **kw)


def result(ok: bool, at: datetime, name: str = "api", error: str = "HTTP 503 Service Unavailable") -> CheckResult:
    return CheckResult(
        monitor=name, url="http://127.0.0.1:9/", ok=ok, status_code=200 if ok else 503,
        error=None if ok else ErrorKind.UNEXPECTED_STATUS, message="" if ok else error, checked_at=at,
    )


def play(s: MonitorSpec, script: str, windows: Sequence[MaintenanceWindow] = (), state: MonitorState | None = None,
         start: int = 0):
    """``script``: one char per minute from minute ``start``, ``.`` up, ``x`` down.
    Returns [(minute, event)] and the last state."""
    state = state or MonitorState(s.name)
    events = []
    for minute, char in enumerate(script, start):
        now = T0 + minute * MIN
        state, evs = step(state, result(char == ".", now, s.name), s, now, hold_for(state, s, list(windows), now))
        events += [(minute, e) for e in evs]
    return events, state


def kinds(events) -> list[tuple[int, str]]:
    return [(minute, e.kind.value) for minute, e in events]


def test_a_blip_sends_nothing():
    events, state = play(spec(), "...x....")
    assert events == []
    assert state.status is Status.UP


def test_failure_threshold_one_alerts_at_once():
    events, _ = play(spec(failure_threshold=1), "..x")
    assert kinds(events) == [(2, "DOWN")]


def test_outage_one_down_reminders_at_interval_one_resolved_with_duration():
    s = spec(failure_threshold=2, renotify_every="10m")
    events, state = play(s, "." + "x" * 25 + "..")
    # down from minute 1 (first failing check), confirmed at 2; reminders every 10 min after the DOWN
    assert kinds(events) == [(2, "DOWN"), (12, "REMINDER"), (22, "REMINDER"), (26, "RESOLVED")]
    resolved = events[-1][1]
    assert resolved.down_since == T0 + 1 * MIN and resolved.up_since == T0 + 26 * MIN
    assert resolved.downtime == timedelta(minutes=25)
    assert resolved.first_error and resolved.last_error
    assert state.status is Status.UP and not state.notified_down


def test_first_and_last_error_of_the_episode():
    s = spec(failure_threshold=1)
    state = MonitorState("api")
    state, _ = step(state, result(False, T0, error="connection refused"), s, T0)
    state, _ = step(state, result(False, T0 + MIN, error="no answer within 10s"), s, T0 + MIN)
    state, events = step(state, result(True, T0 + 2 * MIN), s, T0 + 2 * MIN)
    (ev,) = events
    assert (ev.kind, ev.first_error, ev.last_error) == (AlertKind.RESOLVED, "connection refused", "no answer within 10s")


def test_renotify_never_sends_no_reminders():
    events, _ = play(spec(renotify_every="never"), "x" * 200)
    assert kinds(events) == [(1, "DOWN")]


def test_success_threshold_needs_consecutive_passes():
    events, _ = play(spec(failure_threshold=1, success_threshold=3), "xx..x...")
    assert kinds(events) == [(0, "DOWN"), (7, "RESOLVED")]


def test_by_default_one_failed_run_alerts_because_the_run_already_retried():
    plain = MonitorSpec(name="api", url="http://127.0.0.1:9/", channels=["ops"])  # no threshold configured
    events, state = play(plain, "..x")
    assert kinds(events) == [(2, "DOWN")] and state.notified_down


def test_unknown_to_up_is_silent():
    assert play(spec(), "....")[0] == []


def test_maintenance_holds_alerts_and_a_window_ending_while_down_sends_one_down():
    window = MaintenanceWindow(start=T0 + 2 * MIN, end=T0 + 10 * MIN)
    events, _ = play(spec(maintenance=[window]), ".." + "x" * 12)
    assert kinds(events) == [(10, "DOWN")]
    assert "held" in events[0][1].detail


def test_outage_inside_maintenance_sends_nothing():
    window = MaintenanceWindow(start=T0, end=T0 + 20 * MIN)
    events, _ = play(spec(), "..xxxxx.....", windows=[window])
    assert events == []


def test_resolved_after_a_down_sent_before_maintenance_comes_when_the_window_ends():
    window = MaintenanceWindow(start=T0 + 5 * MIN, end=T0 + 10 * MIN)
    events, _ = play(spec(), "xxxxxx.........", windows=[window])
    assert kinds(events) == [(1, "DOWN"), (10, "RESOLVED")]


def test_recurring_maintenance_window():
    window = MaintenanceWindow(cron="0 2 * * *", duration="30m")
    night = datetime(2026, 3, 1, 2, 10, tzinfo=timezone.utc)
    assert window.active_until(night) == datetime(2026, 3, 1, 2, 30, tzinfo=timezone.utc)
    assert window.active_until(datetime(2026, 3, 1, 2, 30, tzinfo=timezone.utc)) is None
    assert window.active_until(datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)) is not None
    s = spec(maintenance=[window])
    assert hold_for(MonitorState("api"), s, [], night).maintenance


def test_silence_holds_alerts_until_it_expires():
    state = MonitorState("api", silenced_until=T0 + 5 * MIN, silence_reason="deploy")
    events, state = play(spec(), "x" * 8, state=state)
    assert kinds(events) == [(5, "DOWN")]
    assert state.silenced_until is None


def test_flapping_sends_one_flapping_alert_not_a_stream():
    s = spec(failure_threshold=1, flap_threshold=4, flap_window="30m")
    events, state = play(s, "x.x.x.x.x.x.x.")
    # the first change (UNKNOWN -> DOWN) is not a flap; the 4th UP<->DOWN change is
    assert kinds(events) == [(0, "DOWN"), (1, "RESOLVED"), (2, "DOWN"), (3, "RESOLVED"), (4, "FLAPPING")]
    assert state.flapping
    # stable for a whole window: flapping ends and people hear the settled status once
    later, state = play(s, "." * 40, state=state, start=14)
    assert [(m, e.kind) for m, e in later] == [(43, AlertKind.RESOLVED)]
    assert not state.flapping
    settled_down, _ = play(s, "x" * 40, state=play(s, "x.x.x.x.x.x.x.")[1], start=14)
    assert [e.kind for _, e in settled_down] == [AlertKind.DOWN]


def test_storm_one_message_per_channel():
    specs = {f"svc{i}": spec(name=f"svc{i}", failure_threshold=1, channels=["ops", "pager"]) for i in range(6)}
    events = []
    for name, s in specs.items():
        _, evs = step(MonitorState(name), result(False, T0, name), s, T0)
        events += evs
    rows = plan_alerts(events, specs, storm_threshold=5)
    assert sorted(r.channel for r in rows) == ["ops", "pager"]
    assert all(r.title.startswith("DOWN: 6 services") for r in rows)
    assert all(all(f"svc{i}" in r.body for i in range(6)) for r in rows)
    # below the threshold: one message per monitor and channel
    assert len(plan_alerts(events[:4], specs, storm_threshold=5)) == 8


def test_config_keys_validate_with_clear_errors():
    text = """
channels: {ops: "json://127.0.0.1:9/x"}
defaults: {channels: [ops], failure_threshold: 3, renotify_every: 1h}
maintenance:
  - {cron: "0 3 * * SUN", duration: 2h}
storm_threshold: 4
fallback_channel: ops
monitors:
  - {name: a, url: "http://127.0.0.1:9/", renotify_every: never, success_threshold: 2}
  - {name: b, url: "http://127.0.0.1:9/", failure_threshold: 0}
  - {name: c, url: "http://127.0.0.1:9/", maintenance: [{start: "2026-01-02T00:00:00Z"}]}
  - {name: d, url: "http://127.0.0.1:9/", maintenance: [{cron: "not a cron", duration: 1h}]}
"""
    cfg = parse_config(text, "m.yaml", environ={})
    a = cfg.monitor("a")
    assert (a.failure_threshold, a.success_threshold, a.renotify_every) == (3, 2, None)
    assert cfg.storm_threshold == 4 and cfg.fallback_channel == "ops" and len(cfg.maintenance) == 1
    problems = {p.monitor: str(p) for p in cfg.problems}
    assert "field 'failure_threshold'" in problems["b"] and "m.yaml" in problems["b"]
    assert "needs both start and end" in problems["c"]
    assert "invalid cron" in problems["d"]
    with pytest.raises(ConfigError, match="fallback_channel.*undefined channel"):
        parse_config("channels: {}\nfallback_channel: nope\n", "m.yaml", environ={})
    with pytest.raises(ValidationError):
        MaintenanceWindow(start=T0, end=T0 - MIN)



def test_a_hold_is_empty_unless_a_window_or_a_silence_applies():
    s = spec(maintenance=[MaintenanceWindow(start=T0 + 5 * MIN, end=T0 + 10 * MIN)])
    assert not hold_for(MonitorState("api"), s, [], T0)  # nothing applies: alerts flow
    assert hold_for(MonitorState("api"), s, [], T0 + 6 * MIN).maintenance
    silenced = hold_for(MonitorState("api", silenced_until=T0 + MIN, silence_reason="deploy"), spec(), [], T0)
    assert silenced.silenced and silenced and not silenced.maintenance
    assert not Hold() and Hold(silenced=True) and Hold(maintenance="nightly")
