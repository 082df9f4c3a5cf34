"""Issue 16: a result goes through policy, outbox and delivery the moment its check ends; retry waits
hold no per-host slot; the continuous monitor checks each monitor on its own interval."""

import threading

import pytest

from alerting.check_pool import check_all
from alerting.config import load_config
from alerting.continuous import ContinuousMonitor
from alerting.cycle import open_store
from alerting.models import MonitorSpec
from alerting.standalone import cycle_and_deliver
from alerting.timetable import Timetable
from toolkit import wait_for


def test_healthy_monitors_do_not_wait_for_a_failing_ones_retries_on_the_same_host(target):
    bad = MonitorSpec(name="bad", url=target.route("/bad", statuses=[503]), attempts=3,
                      retry_backoff=2, retry_backoff_max=2)
    healthy = [MonitorSpec(name=f"ok{i}", url=target.route(f"/ok{i}"), attempts=3) for i in range(20)]
    order: list[str] = []
    # ONE slot for the host, and the failing monitor first in line: if its retry waits held the
    # slot, every healthy check would come after its three attempts
    results = check_all([bad, *healthy], concurrency=32, per_host=1, on_result=lambda r: order.append(r.monitor))
    assert [r.monitor for r in results] == ["bad", *(h.name for h in healthy)]
    assert results[0].attempts == 3 and not results[0].ok
    assert all(r.ok for r in results[1:])
    assert order[-1] == "bad", order  # all twenty healthy results were in while it waited to retry
    assert target.max_inflight == 1  # the host's limit held throughout


def test_a_down_is_delivered_before_the_cycles_slowest_check_ends(target, receiver, write_config):
    target.route("/bad", statuses=[503])
    target.route("/slow", hang=True)  # answers only when the test releases it
    path = write_config(
        f"defaults: {{retry_backoff: 0, retry_backoff_max: 0, attempts: 1, channels: [hook]}}\n"
        f"channels: {{hook: '{receiver.apprise_url()}'}}\n"
        f"monitors:\n"
        f"  - {{name: bad, url: '{target.url('/bad')}'}}\n"
        f"  - {{name: slow, url: '{target.url('/slow')}', timeout: 2m}}\n"
    )
    config = load_config(path)
    outcome: dict = {}
    cycle = threading.Thread(target=lambda: outcome.update(zip(("report", "sent"), cycle_and_deliver(config), strict=True)))
    cycle.start()
    try:
        receiver.wait_for(1, timeout=60)
        assert receiver.titles() == ["DOWN: bad"]
        assert cycle.is_alive() and target.inflight == 1  # the slow check has not ended yet
    finally:
        target.release()
        cycle.join(timeout=120)
    report = outcome["report"]
    assert {r.monitor: r.ok for r in report.results} == {"bad": False, "slow": False}
    assert [d.title for d in outcome["sent"]] == ["DOWN: bad", "DOWN: slow"]


# --- the timetable (pure) --------------------------------------------------------------------------

def test_slots_stay_exactly_one_interval_apart_whatever_the_check_takes():
    table = Timetable()
    table.set_monitors({"a": 30.0, "b": 10.0}, now=100.0, pace=float("inf"))  # no pacing of first slots
    assert sorted(table.pop_due(100.0)) == [("a", 100.0), ("b", 100.0)]
    assert table.pop_due(109.9) == []
    assert table.pop_due(110.4) == [("b", 110.0)]  # dispatched late: the next slot is still 120
    assert table.next_due() == 120.0
    assert table.pop_due(125.0) == [("b", 120.0)]
    assert sorted(table.pop_due(130.0)) == [("a", 130.0), ("b", 130.0)]
    assert table.missed == 0


def test_first_slots_of_new_monitors_are_paced_and_stay_spread():
    table = Timetable()
    table.set_monitors({"a": 30.0, "b": 30.0, "c": 30.0}, now=0.0, pace=10.0)
    assert table.pop_due(0.0) == [("a", 0.0)]
    assert table.pop_due(0.15) == [("b", 0.1)]
    assert table.pop_due(0.2) == [("c", 0.2)]
    assert [table.pop_due(t) for t in (30.0, 30.1, 30.2)] == [[("a", 30.0)], [("b", 30.1)], [("c", 30.2)]]


def test_slots_that_pass_unchecked_are_counted_as_missed_not_made_up():
    table = Timetable()
    table.set_monitors({"a": 10.0}, now=0.0)
    table.pop_due(0.0)
    assert table.pop_due(35.0) == [("a", 30.0)]  # 10 and 20 passed: one check now, not three
    assert table.missed == 2 and table.next_due() == 40.0
    table.skip()  # a slot came while the previous check was still running
    assert table.missed == 3


def test_a_restart_keeps_each_monitors_phase_and_new_or_changed_monitors_are_due_soon():
    table = Timetable()
    table.set_monitors({"old": 30.0, "new": 30.0}, now=1000.0, ages={"old": 12.0})
    assert table.pop_due(1000.0) == [("new", 1000.0)]
    assert table.next_due() == 1018.0  # checked 12 s before the restart: due 18 s after it
    table.set_monitors({"old": 5.0, "new": 30.0}, now=1001.0)  # its interval shortened
    assert table.next_due() == 1006.0
    table.set_monitors({"new": 30.0}, now=1002.0)  # removed
    assert table.next_due() == 1030.0


# --- the continuous monitor (real target, receiver and store) -------------------------------------

def test_continuous_monitor_checks_on_interval_alerts_at_once_and_follows_the_config_file(
    target, receiver, write_config
):
    target.route("/a")
    target.route("/b", statuses=[503])
    head = (f"defaults: {{retry_backoff: 0, retry_backoff_max: 0, attempts: 1, interval: 1s, channels: [hook]}}\n"
            f"channels: {{hook: '{receiver.apprise_url()}'}}\n"
            f"monitors:\n"
            f"  - {{name: a, url: '{target.url('/a')}'}}\n"
            f"  - {{name: b, url: '{target.url('/b')}'}}\n")
    path = write_config(head)
    live = ContinuousMonitor(path, interval=1.0).start()
    try:
        assert live.wait_first_round(timeout=60)
        receiver.wait_for(1, timeout=60)
        assert receiver.titles() == ["DOWN: b"]  # sent by the monitor itself, no flow run involved
        target.wait_for_hits("/a", 3, timeout=60)  # every second, on its own
        # the deliverer lists a DOWN once its pass has marked it sent, a moment after the receiver has it
        wait_for(lambda: live.deliverer is not None and live.deliverer.delivered, 60, what="the DOWN's delivery listed")
        window = live.take_report()
        assert not window.report.ok and "b (HTTP 503" in window.report.message
        assert {e.monitor for e in window.report.events} == {"b"}
        assert [d.title for d in window.deliveries] == ["DOWN: b"]

        target.route("/b")  # b recovers: RESOLVED at once
        wait_for(lambda: any(t.startswith("RESOLVED: b") for t in receiver.titles()), 60, what="RESOLVED: b")

        target.route("/c")
        path.write_text(head + f"  - {{name: c, url: '{target.url('/c')}'}}\n")
        target.wait_for_hits("/c", 2, timeout=60)  # the changed file was picked up
        path.write_text("monitors: [{name: broken\n")  # a broken edit keeps the last good config
        hits = target.hits.get("/c", 0)
        target.wait_for_hits("/c", hits + 2, timeout=60)
        assert live.alive()
    finally:
        live.stop()
    with open_store(load_config(write_config(head, "same-store.yaml"))) as store:
        assert store.states()["b"].status.value == "UP"


def test_first_slots_are_spread_over_most_of_the_interval_and_a_few_monitors_start_at_once():
    many = Timetable()
    many.set_monitors({f"m{i}": 30.0 for i in range(5000)}, now=0.0)
    firsts = sorted(slot for _, slot in many.pop_due(25.0))
    assert len(firsts) == 5000 and 23.0 <= firsts[-1] <= 24.0  # 208 a second over 24 s
    groups = sorted(set(firsts))  # ... given in groups (a check among others costs less CPU)
    assert [b - a for a, b in zip(groups, groups[1:], strict=False)] == [pytest.approx(0.5, abs=0.01)] * (len(groups) - 1)
    assert max(firsts.count(t) for t in groups) == 105
    few = Timetable()
    few.set_monitors({f"m{i}": 30.0 for i in range(20)}, now=0.0)
    assert len(few.pop_due(0.0)) == 20  # a small config: every monitor at once


def test_a_pool_that_pays_per_round_gets_first_slots_in_groups_a_share_of_the_interval_apart():
    from flows.dispatch import LocationPool

    share = LocationPool.first_slot_group_share
    assert share is not None
    for count, expected_groups in ((1000, [0.0, 7.5, 15.0]), (5000, [0.0, 7.5, 15.0, 22.5])):
        table = Timetable()
        table.set_monitors({f"m{i}": 30.0 for i in range(count)}, now=0.0, group_share=share)
        firsts = sorted(slot for _, slot in table.pop_due(29.0))
        assert len(firsts) == count and len(set(table.intervals)) == count
        assert sorted(set(firsts)) == [pytest.approx(g, abs=0.01) for g in expected_groups]
        # still spread over most of the interval, never all in one burst
        assert max(firsts.count(t) for t in set(firsts)) <= -(-count // (len(expected_groups) - 1))
    kept = Timetable()  # phases an earlier process left in the state store are kept as they were
    kept.set_monitors({"a": 30.0, "b": 30.0}, now=100.0, ages={"a": 29.0, "b": 10.0}, group_share=share)
    assert kept.pop_due(101.0) == [("a", 101.0)]


def test_a_served_monitor_sets_its_slots_at_start_with_its_pools_grouping_and_the_stores_phases(
        tmp_path, target):
    """`alerting serve` gives the monitor its merged config (use_config) before start(): the slots
    are set at start, where the pool (how it groups first slots) and the state store (when an
    earlier process last checked each monitor) are known."""
    import time

    from alerting.check_pool import CheckPool

    submitted: list[str] = []

    class RoundsStandIn(CheckPool):  # where LocationPool would send its rounds; records, never answers
        first_slot_group_share = 0.25

        def submit(self, spec, on_result=None):
            submitted.append(spec.name)

    many = tmp_path / "many.yaml"
    many.write_text(f"state_url: 'sqlite:///{tmp_path}/many.db'\nmonitors:\n" + "".join(
        f"  - {{name: m{i}, url: 'http://127.0.0.1:9/{i}'}}\n" for i in range(1000)))
    live = ContinuousMonitor(many, interval=60.0, pool_factory=lambda config, lost, interval: RoundsStandIn())
    live.use_config(live.yaml)  # as serve does, before start
    live.start()
    try:
        wait_for(lambda: len(submitted) >= 750, 10, what="the first group of first slots")
        assert len(submitted) == 750  # 1,000 at 60 s: groups 15 s apart (50 a second, 750 at a time)
    finally:
        live.stop()

    target.route("/a")
    few = tmp_path / "few.yaml"
    few.write_text(f"state_url: 'sqlite:///{tmp_path}/few.db'\ndefaults: {{attempts: 1}}\n"
                   f"monitors:\n  - {{name: a, url: '{target.url('/a')}'}}\n")
    first = ContinuousMonitor(few, interval=60.0).start()
    try:
        assert first.wait_first_round(30)
        first.recorder.flush(timeout=10.0)
    finally:
        first.stop()
    again = ContinuousMonitor(few, interval=60.0)  # a restart: 'a' was checked a moment ago
    again.use_config(again.yaml)
    again.start()
    try:
        due = again.timetable.next_due()
        assert due is not None and due - time.monotonic() > 50  # one interval after that check, not now
        assert again.wait_first_round(0)  # the first report need not wait for it: its stored state is fresh
    finally:
        again.stop()
    assert target.hits["/a"] == 1



# --- the recorder (real store) ---------------------------------------------------------------------

def test_the_recorder_writes_a_backlog_of_routine_passes_in_chunks_and_a_failure_among_them_decides(tmp_path):
    from alerting.config import parse_config
    from alerting.models import CheckResult
    from alerting.recorder import ROUTINE_CHUNK, ResultRecorder

    count = 2 * ROUTINE_CHUNK + 50  # three chunks
    config = parse_config(
        f"state_url: 'sqlite:///{tmp_path}/state.db'\nstorm_threshold: 0\n"
        "defaults: {failure_threshold: 1}\nmonitors:\n"
        + "".join(f"  - {{name: m{i}, url: 'http://127.0.0.1:9/{i}'}}\n" for i in range(count)),
        str(tmp_path / "m.yaml"), {})
    specs = {s.name: s for s in config.monitors}
    with open_store(config) as store:
        recorder = ResultRecorder(store, config, routine_every=3600.0)  # routine passes wait for a flush
        try:
            for name in specs:  # first passes: each may change a state (UNKNOWN -> UP), written at once
                recorder.put(CheckResult(monitor=name, url="http://127.0.0.1:9/", ok=True), specs[name])
            assert recorder.flush(timeout=60)
            for name in specs:  # second passes of monitors known UP: routine, held back
                recorder.put(CheckResult(monitor=name, url="http://127.0.0.1:9/", ok=True), specs[name])
            recorder.put(CheckResult(monitor="m7", url="http://127.0.0.1:9/", ok=False, error="unexpected_status",
                                     message="HTTP 503"), specs["m7"])
            assert recorder.flush(timeout=60)
            journal = recorder.take()
        finally:
            recorder.close()
        assert len(journal.results) == 2 * count + 1
        assert [e.monitor for e in journal.events if e.kind.value == "DOWN"] == ["m7"]
        assert store.states()["m7"].status.value == "DOWN", (store.states()["m7"], store.history("m7", 10), journal.events)
        assert all(len(store.history(name, 10)) == 2 for name in specs if name != "m7")
        assert [row["ok"] for row in store.history("m7", 10)] == [False, True, True]


def test_a_scheduled_run_checks_a_monitor_at_its_slot_not_when_the_run_started(target):
    """Prefect's runner starts a run up to seconds before (or after) its time; each monitor is
    checked one interval after its last check all the same."""
    import time

    target.route("/early")
    target.route("/slotted")
    specs = [MonitorSpec(name=n, url=target.url(f"/{n}"), attempts=1) for n in ("early", "slotted")]
    slot = time.time() + 1.5
    results = {r.monitor: r for r in check_all(specs, slots={"slotted": slot})}
    assert results["slotted"].checked_at.timestamp() >= slot
    assert results["early"].checked_at < results["slotted"].checked_at  # no slot: checked at once


def test_with_workers_a_monitor_made_in_the_ui_is_checked_by_the_serving_process(target, write_config):
    """The workers of `locations:` read only the YAML file: a Service Monitor block's monitor is
    checked here instead of being sent to workers that do not know it (and left unchecked)."""
    from dataclasses import replace

    from alerting.check_pool import CheckPool

    sent: list[str] = []

    class WorkersStandIn(CheckPool):  # where LocationPool would send batches; records what it got
        def submit(self, spec, on_result=None):
            sent.append(spec.name)
            return super().submit(spec, on_result)

    target.route("/yaml")
    target.route("/ui")
    path = write_config(f"defaults: {{attempts: 1, interval: 1s}}\nmonitors:\n  - {{name: yaml, url: '{target.url('/yaml')}'}}\n")
    live = ContinuousMonitor(path, interval=1.0, pool_factory=lambda config, lost, interval: WorkersStandIn()).start()
    try:
        ui = MonitorSpec(name="ui", url=target.url("/ui"), attempts=1, interval=1.0)
        live.use_config(replace(live.yaml, monitors=[*live.yaml.monitors, ui]))
        target.wait_for_hits("/ui", 2, timeout=60)
        target.wait_for_hits("/yaml", 2, timeout=60)
    finally:
        live.stop()
    assert "yaml" in sent and "ui" not in sent


def test_a_lost_check_whose_slot_passed_is_sent_again_at_once_not_a_slot_later(target, write_config):
    """Failover: a batch held by a worker that died is given up at its deadline; by then the
    monitor's next slot may have passed (skipped: its check was still out). It goes out again at
    once rather than one more interval later."""
    import time

    from alerting.check_pool import CheckPool

    submitted: list[float] = []
    lost_at: list[float] = []

    class DyingWorkers(CheckPool):  # where LocationPool would send batches: the first one is lost
        def __init__(self, on_lost):
            super().__init__()
            self.on_lost = on_lost

        def submit(self, spec, on_result=None):
            submitted.append(time.monotonic())
            if len(submitted) == 1:
                def lose_after_the_next_slot():
                    wait_for(lambda: live.stats.started >= 1 and live.timetable.missed >= 1, 30,
                             what="the next slot skipped while the first check is out")
                    lost_at.append(time.monotonic())
                    self.on_lost(spec.name)
                threading.Thread(target=lose_after_the_next_slot, daemon=True).start()
                return None
            return super().submit(spec, on_result)

    path = write_config(f"defaults: {{attempts: 1, interval: 4s}}\nmonitors:\n  - {{name: m, url: '{target.route('/m')}'}}\n")
    live = ContinuousMonitor(path, interval=4.0, pool_factory=lambda config, lost, interval: DyingWorkers(lost))
    live.start()
    try:
        wait_for(lambda: len(submitted) >= 2, 30, what="the lost check sent again")
        slot_after_the_skip = live.timetable.intervals["m"]
        # sent again when it was given up, well before the slot after the skipped one (4 s later)
        assert submitted[1] - lost_at[0] < slot_after_the_skip / 2, (submitted, lost_at)
        target.wait_for_hits("/m", 1, timeout=30)
    finally:
        live.stop()


@pytest.mark.parametrize("runs_late_slots", [True, False], ids=["workers", "threads"])
def test_a_slot_that_came_while_a_round_was_out_is_made_when_it_returns_with_workers(runs_late_slots, target,
                                                                                    write_config):
    """With workers (LocationPool) a round ends by its deadline, so a slot that came while it was
    out means the scheduler ran late (a busy machine, or a worker killed holding one location's batch
    while the other location answered): that slot is made as soon as the round returns. In this
    process's threads a check that outlasts its slot is a long retry: the slot stays skipped."""
    import time

    from alerting.check_pool import CheckPool

    submitted: list[float] = []
    answered_at: list[float] = []

    class SlowRounds(CheckPool):  # the first answer comes only after the next slot was skipped
        def submit(self, spec, on_result=None):
            submitted.append(time.monotonic())
            if len(submitted) > 1 or on_result is None:
                return super().submit(spec, on_result)

            def answer_late(result):
                def later():
                    wait_for(lambda: live.timetable.missed >= 1, 30, what="the next slot skipped while out")
                    answered_at.append(time.monotonic())
                    on_result(result)
                threading.Thread(target=later, daemon=True).start()
            return super().submit(spec, answer_late)

    SlowRounds.runs_late_slots = runs_late_slots
    path = write_config(f"defaults: {{attempts: 1, interval: 4s}}\nmonitors:\n  - {{name: m, url: '{target.route('/m')}'}}\n")
    live = ContinuousMonitor(path, interval=4.0, pool_factory=lambda config, lost, interval: SlowRounds())
    live.start()
    try:
        wait_for(lambda: len(submitted) >= 2, 30, what="the next check")
        late, half_a_slot = submitted[1] - answered_at[0], live.timetable.intervals["m"] / 2
        if runs_late_slots:
            assert late < half_a_slot, (submitted, answered_at)  # at once, not at the slot after the skipped one
        else:
            assert late > half_a_slot, (submitted, answered_at)  # at the following slot
    finally:
        live.stop()
