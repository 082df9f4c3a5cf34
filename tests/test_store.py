"""The state store and the outbox, in process: real SQLite files, a real HTTP target and real json://
receivers on 127.0.0.1. Clocks are injected; delivery retries wait zero seconds."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from alerting.check import check
from alerting.config import parse_config
from alerting.outbox import deliver_pending
from alerting.record import record_cycle
from alerting.status_view import status_rows
from alerting.store import SCHEMA_REVISION, VERSION_TABLE, NewAlert, Store, StoreError, check_history
from toolkit import Receiver

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
CANARY = "canary-Secret-5f3e9"


@pytest.fixture(autouse=True)
def _zero_waits(monkeypatch):
    monkeypatch.setenv("ALERTING_APPRISE_PACING", "off")
    monkeypatch.setenv("ALERTING_DELIVERY_RETRY_WAIT", "0")


@pytest.fixture
def receivers():
    made = [Receiver(), Receiver()]
    try:
        yield made
    finally:
        for r in made:
            r.close()


def make_config(tmp_path, target, receivers, extra: str = "", monitors: int = 1, **defaults):
    """A config of ``monitors`` monitors on ``target`` (all answering 503 until the test sets
    ``target.status = 200``), channel ``ops`` (with a secret) and ``spare`` on the two receivers."""
    target.status = 503
    opts = {"attempts": 1, "retry_backoff": "0s", "channels": ["ops"], "failure_threshold": 2, **defaults}
    text = (
        "defaults:\n" + "".join(f"  {k}: {v!r}\n".replace("'", '"') for k, v in opts.items())
        + "channels:\n"
        + f'  ops: "{receivers[0].apprise_url().replace("json://", f"json://user:{CANARY}@")}"\n'
        + f'  spare: "{receivers[1].apprise_url()}"\n'
        + extra
        + "monitors:\n"
        + "".join(f"  - {{name: svc{i}, url: \"{target.url(f'/s{i}')}\"}}\n" for i in range(monitors))
    )
    path = tmp_path / "monitors.yaml"
    path.write_text(text)
    cfg = parse_config(text, str(path), environ={})
    assert not cfg.problems, cfg.problems
    return cfg


def cycle(store, cfg, now):
    specs = {s.name: s for s in cfg.monitors}
    results = [check(s).model_copy(update={"checked_at": now}) for s in cfg.monitors]
    record = record_cycle(store, cfg, specs, results, now)
    return record, deliver_pending(store, cfg, now)


def test_default_store_is_sqlite_next_to_the_config_with_wal_and_a_schema_revision(tmp_path, target, receivers):
    cfg = make_config(tmp_path, target, receivers)
    assert cfg.resolved_state_url() == f"sqlite:///{tmp_path / '.alerting' / 'state.db'}"
    store = Store(cfg.resolved_state_url())
    store.close()
    db = sqlite3.connect(tmp_path / ".alerting" / "state.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(SCHEMA_REVISION,)]
    db.execute(f"UPDATE {VERSION_TABLE} SET version_num = 'v99_from_the_future'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema revision v99_from_the_future, newer than this alerting"):
        Store(cfg.resolved_state_url())


def test_outage_across_runs_one_down_one_resolved(tmp_path, target, receivers):
    cfg = make_config(tmp_path, target, receivers)
    store = Store(cfg.resolved_state_url())
    ops = receivers[0]
    _, sent = cycle(store, cfg, T0)  # first failure: not confirmed yet
    assert sent == [] and ops.titles() == []
    cycle(store, cfg, T0 + timedelta(minutes=1))
    cycle(store, cfg, T0 + timedelta(minutes=2))
    assert ops.titles() == ["DOWN: svc0"]
    target.status = 200
    cycle(store, cfg, T0 + timedelta(minutes=3))
    cycle(store, cfg, T0 + timedelta(minutes=4))
    assert ops.titles() == ["DOWN: svc0", "RESOLVED: svc0 (down 3m)"]
    assert "Down: 2026-03-01 12:00:00 UTC to 2026-03-01 12:03:00 UTC (3m)" in ops.messages[1]["message"]
    (row,) = status_rows(store, cfg, T0 + timedelta(minutes=5))
    assert row["status"] == "UP" and row["uptime_24h"] == 40.0 and row["p50_ms"] is not None
    history = store.history("svc0", 10)
    assert [h["ok"] for h in history] == [True, True, False, False, False]
    store.close()


def test_a_failing_channel_gets_the_alert_once_late_not_lost(tmp_path, target, receivers):
    cfg = make_config(tmp_path, target, receivers, failure_threshold=1)
    store = Store(cfg.resolved_state_url())
    ops = receivers[0]
    ops.fail_with = 500
    _, sent = cycle(store, cfg, T0)
    assert [d.ok for d in sent] == [False] and ops.refused == 1  # one attempt per pass; backoff across runs
    assert CANARY not in repr(sent) and CANARY not in repr(store.outbox_rows())
    (pending,) = store.outbox_rows(pending_only=True)
    assert pending.attempts == 1 and pending.last_error
    ops.fail_with = None
    _, sent = cycle(store, cfg, T0 + timedelta(minutes=10))
    assert [d.ok for d in sent] == [True]
    assert ops.titles() == ["DOWN: svc0"]
    assert "Delivered late: this alert is from 2026-03-01 12:00:00 UTC (delivery attempt 2)" in ops.messages[0]["message"]
    cycle(store, cfg, T0 + timedelta(minutes=11))
    assert ops.titles() == ["DOWN: svc0"] and store.outbox_rows(pending_only=True) == []
    store.close()


def test_fallback_channel_gets_one_copy_when_a_channel_keeps_failing(tmp_path, target, receivers):
    cfg = make_config(tmp_path, target, receivers, extra="fallback_channel: spare\nfallback_after: 2\n",
                      failure_threshold=1)
    store = Store(cfg.resolved_state_url())
    ops, spare = receivers
    ops.fail_with = 503
    for minute in range(4):
        cycle(store, cfg, T0 + timedelta(minutes=minute))
    assert spare.titles() == ["DOWN: svc0 [via fallback: ops failing]"]
    assert ops.titles() == []
    store.close()


def test_storm_each_channel_gets_one_message(tmp_path, target, receivers):
    cfg = make_config(tmp_path, target, receivers, extra="storm_threshold: 3\n", monitors=4, failure_threshold=1)
    store = Store(cfg.resolved_state_url())
    cycle(store, cfg, T0)
    (title,) = receivers[0].titles()
    assert title.startswith("DOWN: 4 services (svc0, svc1, svc2, svc3)")
    store.close()


def test_silence_holds_alerts_and_unsilence_lets_the_down_through(tmp_path, target, receivers):
    cfg = make_config(tmp_path, target, receivers, failure_threshold=1)
    store = Store(cfg.resolved_state_url())
    store.silence("svc0", T0 + timedelta(hours=2), "deploy", T0)
    cycle(store, cfg, T0)
    cycle(store, cfg, T0 + timedelta(minutes=1))
    assert receivers[0].titles() == []
    (row,) = status_rows(store, cfg, T0 + timedelta(minutes=1))
    assert row["status"] == "DOWN" and row["silence_reason"] == "deploy"
    store.silence("svc0", None, None, T0 + timedelta(minutes=2))
    cycle(store, cfg, T0 + timedelta(minutes=3))
    assert receivers[0].titles() == ["DOWN: svc0"]
    store.close()


def test_outbox_dedup_key_and_claims_never_send_twice(tmp_path):
    from alerting.outbox import LEASE

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    alert = NewAlert("a1", "ops", "DOWN", "svc", "DOWN: svc", "md", "text", T0)
    with store.begin() as tx:
        assert tx.enqueue([alert, alert]) == 1
    with store.begin() as tx:
        assert tx.enqueue([alert]) == 0
    (row,) = store.live_outbox()
    assert store.claim(row.id, T0, LEASE).attempts == 1
    assert store.claim(row.id, T0 + LEASE / 2, LEASE) is None  # held by the first worker
    assert store.claim(row.id, T0 + LEASE * 2, LEASE).attempts == 2  # the claim expired: a crashed worker
    store.close()


def test_retry_after_on_429_sets_the_next_attempt(tmp_path, target, receivers):
    cfg = make_config(tmp_path, target, receivers, failure_threshold=1)
    ops = receivers[0]
    ops.fail_with, ops.fail_times, ops.retry_after = 429, 1, "600"
    with Store(cfg.resolved_state_url()) as store:
        _, sent = cycle(store, cfg, T0)
        assert [d.ok for d in sent] == [False] and sent[0].retry_after == 600.0
        (row,) = store.live_outbox()
        assert row.next_attempt_at == T0 + timedelta(seconds=600)
        assert deliver_pending(store, cfg, T0 + timedelta(seconds=599)) == []  # not before Retry-After
        assert [d.ok for d in deliver_pending(store, cfg, T0 + timedelta(seconds=600))] == [True]


def test_history_rows_are_small_and_pruned(tmp_path):
    path = tmp_path / "s.db"
    store = Store(f"sqlite:///{path}")
    with store.begin() as tx:
        tx.ids(f"monitor-{i}" for i in range(20))
    base = int(T0.timestamp())
    rows = [
        {"monitor_id": 1 + i % 20, "ts": base + 30 * (i // 20), "ok": i % 7 != 0, "status": 200 if i % 7 else 503,
         "latency_ms": 40 + i % 300, "error": None if i % 7 else "unexpected_status"}
        for i in range(40_000)
    ]
    before = path.stat().st_size
    with store.engine.begin() as conn:
        conn.execute(check_history.insert(), rows)
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    per_check = (path.stat().st_size - before) / len(rows)
    assert per_check <= 150, per_check  # measured here: ~40 bytes per check
    now = T0 + timedelta(days=35, hours=1)
    assert store.prune(now, timedelta(days=35)) == 20 * 120  # the first hour: 120 checks of 20 monitors
    assert store.prune(now + timedelta(minutes=10), timedelta(days=35)) == 0  # at most hourly
    store.close()


def test_sqlite_file_survives_a_reopen_with_results(tmp_path, target, receivers):
    cfg = make_config(tmp_path, target, receivers, failure_threshold=1)
    store = Store(cfg.resolved_state_url())
    cycle(store, cfg, T0)
    store.close()
    reopened = Store(cfg.resolved_state_url())
    assert reopened.states()["svc0"].notified_down
    with reopened.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(SCHEMA_REVISION,)]
    reopened.close()


def test_overlapping_runs_queue_one_down_not_two(tmp_path, target, receivers):
    import threading

    cfg = make_config(tmp_path, target, receivers, failure_threshold=1)
    specs = {s.name: s for s in cfg.monitors}
    results = [check(s).model_copy(update={"checked_at": T0}) for s in cfg.monitors]
    stores = [Store(cfg.resolved_state_url()) for _ in range(2)]
    Store(cfg.resolved_state_url()).close()  # schema exists before the race
    start = threading.Barrier(2)

    def run(store):
        start.wait()
        record_cycle(store, cfg, specs, results, T0)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.kind for r in stores[0].outbox_rows()] == ["DOWN"]
    for s in stores:
        s.close()


def test_a_dead_channel_costs_one_attempt_per_run_not_one_per_pending_alert(tmp_path, target, receivers):
    cfg = make_config(tmp_path, target, receivers, monitors=3, failure_threshold=1)
    store = Store(cfg.resolved_state_url())
    ops = receivers[0]
    ops.fail_with = 500
    _, sent = cycle(store, cfg, T0)
    assert [d.ok for d in sent] == [False]
    assert ops.refused == 1  # one attempt, then the other two wait for the next run, in order
    assert [r.attempts for r in store.outbox_rows(pending_only=True)] == [1, 0, 0]
    ops.fail_with = None
    cycle(store, cfg, T0 + timedelta(minutes=1))
    assert ops.titles() == ["DOWN: svc0", "DOWN: svc1", "DOWN: svc2"]
    store.close()


def test_uptime_windows_come_from_the_hourly_rollup(tmp_path):
    from alerting.models import CheckResult

    store = Store(f"sqlite:///{tmp_path / 's.db'}")

    def checks(at, ok, n):
        return [CheckResult(monitor="api", url="http://x/", ok=ok, latency_ms=50.0, checked_at=at) for _ in range(n)]

    with store.begin() as tx:
        tx.add_history(checks(T0 - timedelta(days=20), False, 10))  # only in 30d
        tx.add_history(checks(T0 - timedelta(days=3), False, 10))  # in 7d and 30d
        tx.add_history(checks(T0 - timedelta(hours=2), True, 20))  # in all
    up = store.uptime(T0, {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)})["api"]
    assert up == pytest.approx({"24h": 100.0, "7d": 200 / 3, "30d": 50.0})
    store.close()


def test_latency_percentiles_from_hourly_histograms_are_close_to_exact(tmp_path):
    import statistics

    from alerting.models import CheckResult

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    values = [40 + (i * 37) % 300 for i in range(2000)]  # 40..339 ms, spread over 10 hours
    with store.begin() as tx:
        tx.add_history([
            CheckResult(monitor="api", url="http://x/", ok=True, latency_ms=v, checked_at=T0 - timedelta(minutes=i // 4))
            for i, v in enumerate(values)
        ])
    p50, p95 = store.latency_percentiles(T0, timedelta(days=1))["api"]
    exact = statistics.quantiles(values, n=100)
    assert abs(p50 - exact[49]) / exact[49] < 0.12 and abs(p95 - exact[94]) / exact[94] < 0.12
    store.close()


def test_a_result_older_than_one_recorded_goes_to_history_but_never_through_the_policy(tmp_path):
    """Two writers (a flow run still in flight, the guard checking without Prefect): a pass checked
    before the outage, recorded after the DOWN found since, must not resolve it."""
    from alerting.models import CheckResult

    config = parse_config("monitors:\n  - {name: api, url: 'http://127.0.0.1:9/'}\n", str(tmp_path / "m.yaml"))
    specs = {s.name: s for s in config.monitors}
    down = CheckResult(monitor="api", url="http://127.0.0.1:9/", ok=False, status_code=503, attempts=1,
                       checked_at=T0 + timedelta(seconds=10))
    earlier_pass = CheckResult(monitor="api", url="http://127.0.0.1:9/", ok=True, status_code=200, attempts=1,
                               checked_at=T0)
    with Store(f"sqlite:///{tmp_path}/state.db") as store:
        _, events, _ = record_cycle(store, config, specs, [down], T0 + timedelta(seconds=11))
        assert [e.kind.value for e in events] == ["DOWN"]
        states, events, queued = record_cycle(store, config, specs, [earlier_pass], T0 + timedelta(seconds=12))
        assert events == [] and queued == 0 and states == {}
        assert store.states()["api"].status.value == "DOWN"
        assert [h["ok"] for h in store.history("api", 10)] == [False, True]  # both checks are history
