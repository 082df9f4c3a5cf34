"""The warning level through the pure policy: slow (and a certificate expiring) is DEGRADED, with its
own alert and its own RESOLVED; never DOWN; DOWN wins over it. Scripted timelines, an injected clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from alerting.models import AlertKind, CheckResult, ErrorKind, MonitorSpec, MonitorState, Status
from alerting.policy import Hold, hold_for, step
from alerting.record import plan_alerts
from alerting.render import cycle_message, render_event

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


def spec(**kw) -> MonitorSpec:
    kw.setdefault("failure_threshold", 2)
    kw.setdefault("degraded_after", "800ms")
    return MonitorSpec(name="api", url="http://127.0.0.1:9/", channels=["ops"], **kw)


def result(char: str, at: datetime) -> CheckResult:
    """``.`` fast, ``s`` slow (1,500 ms), ``c`` certificate expiring, ``x`` down."""
    if char == "x":
        return CheckResult(monitor="api", url="http://127.0.0.1:9/", ok=False, status_code=503,
                           error=ErrorKind.UNEXPECTED_STATUS, message="HTTP 503", checked_at=at)
    warning = {"s": ErrorKind.SLOW, "c": ErrorKind.CERT_EXPIRING}.get(char)
    text = {"s": "answered in 1,500 ms, slower than degraded_after (800 ms)",
            "c": "the certificate expires in 3 days (2026-03-04 12:00 UTC; warning at 14 days), issued by Test CA"}
    return CheckResult(monitor="api", url="http://127.0.0.1:9/", ok=True, status_code=200,
                       latency_ms=1500.0 if char == "s" else 20.0, checked_at=at, warning=warning,
                       warning_message=text.get(char, ""))


def play(s: MonitorSpec, script: str, hold_minutes: range = range(0)):
    state, events = MonitorState(s.name), []
    for minute, char in enumerate(script):
        now = T0 + minute * MIN
        hold = Hold(maintenance="window") if minute in hold_minutes else hold_for(state, s, [], now)
        state, evs = step(state, result(char, now), s, now, hold)
        events += [(minute, e) for e in evs]
    return events, state


def kinds(events) -> list[tuple[int, str, str]]:
    return [(minute, e.kind.value, e.level) for minute, e in events]


def test_slow_then_fast_is_slow_then_its_own_resolved_never_down():
    events, state = play(spec(), "..sss...")
    assert kinds(events) == [(2, "SLOW", "warning"), (5, "RESOLVED", "warning")]
    assert state.status is Status.UP and not state.degraded and not state.notified_degraded
    slow = events[0][1]
    assert slow.down_since == T0 + 2 * MIN and "1,500 ms" in (slow.last_error or "")


def test_degraded_threshold_needs_consecutive_slow_runs():
    events, _ = play(spec(degraded_threshold=3), ".ss.sss..")
    assert kinds(events) == [(6, "SLOW", "warning"), (7, "RESOLVED", "warning")]


def test_down_wins_over_degraded():
    events, state = play(spec(), "ssxx...")
    assert kinds(events) == [(0, "SLOW", "warning"), (3, "DOWN", "down"), (4, "RESOLVED", "down")]
    assert not state.degraded and not state.notified_degraded


def test_slow_while_failing_but_not_yet_down_changes_nothing():
    events, state = play(spec(failure_threshold=3), "sxs.")
    assert kinds(events) == [(0, "SLOW", "warning"), (3, "RESOLVED", "warning")]


def test_back_up_but_slow_is_resolved_then_slow():
    events, _ = play(spec(), "xxs.")
    assert kinds(events) == [(1, "DOWN", "down"), (2, "RESOLVED", "down"), (2, "SLOW", "warning"),
                             (3, "RESOLVED", "warning")]


def test_certificate_expiring_is_the_same_warning_level():
    events, state = play(spec(), "..cc.")
    assert kinds(events) == [(2, "CERT_EXPIRING", "warning"), (4, "RESOLVED", "warning")]
    assert state.status is Status.UP


def test_a_hold_delays_the_warning_and_it_catches_up():
    events, _ = play(spec(), "sss.", hold_minutes=range(0, 2))
    assert kinds(events) == [(2, "SLOW", "warning"), (3, "RESOLVED", "warning")]


def test_texts_and_outbox_rows_of_the_warning_level():
    s = spec()
    events, _ = play(s, "s.")
    slow, resolved = events[0][1], events[1][1]
    message = render_event(slow, s)
    assert message.title == "SLOW: api" and message.severity == "warning"
    assert "api is SLOW: answered in 1,500 ms" in message.text and "not a DOWN" in message.text
    back = render_event(resolved, s)
    assert back.title.startswith("RESOLVED: api (degraded ") and "api is no longer slow" in back.text
    rows = plan_alerts([slow, resolved], {"api": s}, storm_threshold=5)
    assert [r.kind for r in rows] == ["SLOW", "RESOLVED"]
    events, _ = play(s, "c")
    cert = render_event(events[0][1], s)
    assert cert.title == "CERT EXPIRING: api" and "issued by Test CA" in cert.text and "2026-03-04" in cert.text
    assert AlertKind.CERT_EXPIRING.value == events[0][1].kind.value


def test_the_final_state_names_degraded_services_but_stays_ok():
    ok, message = cycle_message([result("s", T0), result(".", T0)])
    assert ok and message == "all 2 services up; degraded: api (slow)"


# --- end to end: a real slow target, the store, the outbox, a real receiver ----------------------------

def _alerting(*args: str) -> tuple[int | None, str, str]:
    """``alerting ARGS`` in its own process group, killed with it whatever happens."""
    proc = subprocess.Popen([str(Path(sys.executable).with_name("alerting")), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out, err


def test_a_slow_target_is_degraded_then_resolved_never_down(tmp_path, target, receiver):
    from alerting.config import parse_config
    from alerting.cycle import run_cycle
    from alerting.outbox import deliver_pending
    from alerting.status_view import status_rows
    from alerting.store import Store

    url = target.route("/api", statuses=[200], delay=0.3)
    config_file = tmp_path / "monitors.yaml"
    config_file.write_text(
        f"state_url: sqlite:///{tmp_path}/state.db\n"
        f"channels:\n  ops: {receiver.apprise_url()}\n"
        f"monitors:\n  - name: api\n    url: {url}\n    degraded_after: 100ms\n    channels: [ops]\n"
    )
    config = parse_config(config_file.read_text(), str(config_file))
    assert not config.problems, config.problems
    store = Store(config.resolved_state_url())
    try:
        report = run_cycle(config, store, now=T0)
        assert report.ok and report.results[0].warning is ErrorKind.SLOW
        assert [e.kind for e in report.events] == [AlertKind.SLOW]
        assert status_rows(store, config, T0)[0]["status"] == "DEGRADED"
        assert [(h["ok"], h["error"]) for h in store.history("api", 1)] == [(True, "slow")]
        assert store.raw_states(["api"])["api"][0] == "DEGRADED"  # what the status page shows
        code, out, err = _alerting("status", "-c", str(config_file))
        assert code == 0 and "DEGRADED" in out, out + err
        deliver_pending(store, config, now=T0)
        assert receiver.wait_for(1, timeout=30) and receiver.titles()[0].startswith("SLOW: api")
        target.routes["/api"].delay = 0.0
        report = run_cycle(config, store, now=T0 + MIN)
        assert report.ok and [(e.kind, e.level) for e in report.events] == [(AlertKind.RESOLVED, "warning")]
        deliver_pending(store, config, now=T0 + MIN)
        assert receiver.wait_for(2, timeout=30)
        assert receiver.titles()[1].startswith("RESOLVED: api (degraded")
        assert status_rows(store, config, T0 + MIN)[0]["status"] == "UP"
        assert not any("DOWN" in title for title in receiver.titles())
    finally:
        store.close()
