"""Per-monitor intervals and per-host limits: pure scheduling, then a real batch against a target."""

from datetime import datetime, timedelta, timezone

from alerting.models import MonitorSpec
from alerting.schedule import due_monitors, host_of, interleave_by_host, smallest_interval
from flows.service_monitor import check_services

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def spec(name, interval, url="http://a.example/"):
    return MonitorSpec(name=name, url=url, interval=interval)


def test_each_monitor_on_its_own_interval():
    fast, slow = spec("fast", 30), spec("slow", 300)
    last = {"fast": NOW - timedelta(seconds=29), "slow": NOW - timedelta(seconds=120)}
    assert [s.name for s in due_monitors([fast, slow], last, NOW, 30)] == ["fast"]  # 29 s: within jitter
    last["slow"] = NOW - timedelta(seconds=290)
    assert [s.name for s in due_monitors([fast, slow], last, NOW, 30)] == ["fast", "slow"]
    last = {"fast": NOW - timedelta(seconds=10), "slow": NOW - timedelta(seconds=10)}
    assert due_monitors([fast, slow], last, NOW, 30) == []


def test_a_slow_monitor_is_checked_once_per_its_interval_over_an_hour():
    slow = spec("slow", 300)
    last: dict = {}
    checks = 0
    for cycle in range(120):  # one hour of 30 s cycles, with a little jitter
        now = NOW + timedelta(seconds=30 * cycle + (cycle % 3) * 0.7)
        if due_monitors([slow], last, now, 30):
            last["slow"] = now
            checks += 1
    assert checks == 12


def test_monitors_without_an_interval_follow_the_serve_interval():
    plain = MonitorSpec(name="plain", url="http://a.example/")  # no interval in the config
    last = {"plain": NOW - timedelta(seconds=10)}
    assert due_monitors([plain], last, NOW, 10) == [plain]
    assert due_monitors([plain], last, NOW, 60) == []
    assert smallest_interval([plain]) == 30 and smallest_interval([plain, spec("x", 15)]) == 15


def test_never_checked_is_due_and_one_off_runs_check_everything():
    a = spec("a", 3600)
    assert due_monitors([a], {}, NOW, 30) == [a]
    assert due_monitors([a], {"a": NOW}, NOW, None) == [a]


def test_interleave_by_host():
    specs = [spec(f"a{i}", 30, "http://a.example/") for i in range(3)] + [spec("b0", 30, "https://b.example/x")]
    assert [s.name for s in interleave_by_host(specs)] == ["a0", "b0", "a1", "a2"]
    assert host_of(specs[-1]) == "b.example:443"
    assert smallest_interval(specs) == 30 and smallest_interval([]) == 30


def test_per_host_limit_is_honoured(target):
    specs = [
        MonitorSpec(name=f"s{i}", url=target.route(f"/p{i}", delay=0.05), retry_backoff=0, retry_backoff_max=0)
        for i in range(24)
    ]
    results = check_services.fn(specs, concurrency=32, per_host=3)
    assert len(results) == 24 and all(r.ok for r in results)
    assert 1 <= target.max_inflight <= 3  # the limit is an upper bound; how many overlap is up to the OS


def test_served_cycle_checks_only_due_monitors(target, receiver, write_config):
    target.route("/fast")
    target.route("/slow", statuses=[503])
    path = write_config(
        f"defaults: {{retry_backoff: 0, retry_backoff_max: 0, attempts: 1, channels: [hook]}}\n"
        f"channels: {{hook: '{receiver.apprise_url()}'}}\n"
        f"monitors:\n"
        f"  - {{name: fast, url: '{target.url('/fast')}', interval: 1s}}\n"
        f"  - {{name: slow, url: '{target.url('/slow')}', interval: 1h}}\n"
    )
    import asyncio

    from flows.service_monitor import service_monitor

    first = asyncio.run(service_monitor(config_path=str(path), cycle_seconds=30, return_state=True))
    assert first.is_failed() and "slow" in first.message
    # a minute passes (written into the store rather than waited for): fast is due again, slow is not
    import sqlite3

    db = sqlite3.connect(path.parent / ".alerting" / "state.db")
    db.execute("UPDATE monitor_state SET updated_at = updated_at - 60")
    db.commit()
    db.close()
    second = asyncio.run(service_monitor(config_path=str(path), cycle_seconds=30, return_state=True))
    assert target.hits == {"/fast": 2, "/slow": 1}  # slow waits for its hour
    assert second.is_failed()  # slow is still DOWN: the run says so even though it was not checked
    assert "1 not due this cycle" in second.message and "still DOWN, not due for a check: slow" in second.message
    assert receiver.titles() == ["DOWN: slow"]  # one DOWN, not one per cycle


def test_status_artifact_keeps_small_tables_whole_and_big_ones_to_what_matters():
    from flows.status_artifact import artifact_rows

    small = [{"monitor": f"m{i}", "status": "UP", "this_run": "ok"} for i in range(10)]
    assert artifact_rows(small, limit=100) == (small, "")
    big = [{"monitor": f"m{i}", "status": "UP", "this_run": "ok", "silenced_until": ""} for i in range(500)]
    big[7]["status"] = "DOWN"
    big[9]["this_run"] = "FAIL: HTTP 503"
    big[11]["silenced_until"] = "2026-11-29T13:00:00+00:00"
    rows, note = artifact_rows(big, limit=100)
    assert [r["monitor"] for r in rows] == ["m7", "m9", "m11"]
    assert "Showing 3 of 500 monitors" in note


def test_big_configs_publish_only_the_monitors_that_matter(target, write_config):
    from alerting.config import load_config
    from alerting.cycle import open_store
    from flows.service_monitor import run_once
    from flows.status_artifact import ARTIFACT_ROWS, artifact_rows, status_table

    n = ARTIFACT_ROWS + 20
    for i in range(n):
        target.route(f"/m{i}", statuses=[503] if i in (3, 77) else [200])
    path = write_config(
        "defaults: {attempts: 1, retry_backoff: 0, retry_backoff_max: 0}\nmonitors:\n"
        + "".join(f"  - {{name: m{i}, url: '{target.url(f'/m{i}')}'}}\n" for i in range(n))
    )
    state, outcome = run_once(path)
    assert state.is_failed() and len(outcome.cycle.results) == n
    with open_store(load_config(path)) as store:
        table = status_table(load_config(path), outcome.cycle, store)
    rows, note = artifact_rows(table, total=n)
    assert [r["monitor"] for r in rows] == ["m3", "m77"]
    assert rows[0]["uptime_24h"] == 0.0 and rows[0]["this_run"].startswith("FAIL")
    assert f"Showing 2 of {n} monitors" in note


def test_a_scheduled_run_checks_each_monitor_at_its_slot_in_its_window():
    from datetime import datetime, timezone

    from alerting.schedule import slots_in_window

    def at(seconds: float) -> datetime:
        return datetime.fromtimestamp(1_800_000_000 + seconds, timezone.utc)

    base = 1_800_000_000
    specs = [MonitorSpec(name=n, url="http://x.example/", interval=i) for n, i in (("a", 30), ("slow", 300))]
    specs.append(MonitorSpec(name="new", url="http://x.example/"))
    last = {"a": at(0), "slow": at(0)}

    def window(start: float, now: float | None = None) -> dict:
        return slots_in_window(specs, last, base + start, 30.0, base + (start if now is None else now))

    assert window(25, now=17) == {"a": base + 30, "new": None}  # started 8 s early: waits for a's slot
    # on time, while the run before may still be waiting for a's slot 30: a's next slot is 60, not now
    assert window(31) == {"a": base + 60, "new": None}
    assert window(45) == {"a": None, "new": None}  # slot 30 passed 15 s ago unchecked: at once
    assert "slow" not in window(265) and window(295)["slow"] == base + 300  # every 10th window
    # windows tile time: each of a's slots falls in exactly one run's window
    owners = [[s for s in range(5, 200, 30) if window(s).get("a") == base + slot] for slot in (30, 60, 90)]
    assert all(len(o) == 1 for o in owners), owners
    # a run that starts after its whole window passed (a backlog of late runs) checks what is due now
    assert window(-30, now=10) == {"new": None}  # a checked at 0, 10 s ago: not due (slack 15 s)
    assert window(-30, now=45) == {"a": None, "new": None}  # due: checked now, not never
    assert window(200, now=320) == {"a": None, "slow": None, "new": None}
