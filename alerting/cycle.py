"""One monitoring cycle without Prefect: pick the monitors due, check them, record what the policy decides.

    config -> due monitors -> checks (threads, isolated) -> as each check ends: policy -> ONE
    transaction per group (alerting/recorder.py): states + history + outbox rows -> deliverer woken

The Prefect flow (``alerting run``, ``serve --runner prefect``) and ``alerting run`` without an API
call ``run_cycle``; a ``Deliverer`` (alerting/deliverer.py) sends what it queued while the rest of
the cycle runs. Nothing here needs the Prefect API, so checks and alerts go on when the orchestrator
is down. The default served mode checks continuously instead (alerting/continuous.py), with the
same recorder and deliverer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from alerting.check_pool import OnResult, check_all
from alerting.config import Config
from alerting.models import AlertEvent, CheckResult, ErrorKind, MonitorSpec, MonitorState, Status, utcnow
from alerting.record import alert_rows, prune_history
from alerting.recorder import ResultRecorder
from alerting.render import cycle_message, render_down, render_notice
from alerting.schedule import due_monitors, in_shard, parse_shard, slots_in_window
from alerting.store import NewAlert, Store

log = logging.getLogger(__name__)
# (monitors, on_result, slots: monitor -> epoch seconds not to check it before) -> results
Checker = Callable[[list[MonitorSpec], OnResult, dict[str, float]], list[CheckResult]]


@dataclass(frozen=True)
class CycleReport:
    """What one cycle checked, decided and queued; the flow's final state is built from it."""

    results: list[CheckResult] = field(default_factory=list)
    states: dict[str, MonitorState] = field(default_factory=dict)
    events: list[AlertEvent] = field(default_factory=list)
    queued: int = 0
    not_due: int = 0
    still_down: list[str] = field(default_factory=list)
    store_error: str | None = None  # the state store failed: nothing was recorded or queued
    ok: bool = True
    message: str = ""

    @property
    def check_errors(self) -> list[CheckResult]:
        return [r for r in self.results if r.error is ErrorKind.CHECK_ERROR]


def open_store(config: Config) -> Store:
    return Store(config.resolved_state_url())


# --- selecting and checking -----------------------------------------------------------------------

def select_monitors(
    specs: list[MonitorSpec], store: Store | None, shard: str | None, cycle_seconds: float | None, now: datetime,
    scheduled_at: datetime | None = None,
) -> tuple[list[MonitorSpec], int, list[str], dict[str, float]]:
    """(monitors to check in this run, how many are not due, names not due whose stored status is
    DOWN, slots). A run scheduled at ``scheduled_at`` checks the monitors whose next slot falls in
    its window (alerting.schedule.slots_in_window), each at its slot (``slots``: epoch seconds;
    Prefect's runner starts runs up to 10 s early or late); without one, the monitors due now."""
    if shard:
        part = parse_shard(shard)
        specs = [s for s in specs if in_shard(s, part)]
    if not cycle_seconds or store is None:
        return specs, 0, [], {}
    last, stored = store.last_checked(), store.states()
    slots: dict[str, float] = {}
    if scheduled_at is not None:
        window = slots_in_window(specs, last, scheduled_at.timestamp(), cycle_seconds, now.timestamp(),
                                 grace=min(10.0, cycle_seconds / 2))
        due = [s for s in specs if s.name in window]
        slots = {name: slot for name, slot in window.items() if slot is not None}
    else:
        due = due_monitors(specs, last, now, cycle_seconds)
    names = {s.name for s in due}
    still_down = [s.name for s in specs
                  if s.name not in names and s.name in stored and stored[s.name].status is Status.DOWN]
    return due, len(specs) - len(due), still_down, slots


def run_cycle(
    config: Config,
    store: Store | None,
    *,
    monitors: list[MonitorSpec] | None = None,
    shard: str | None = None,
    cycle_seconds: float | None = None,
    scheduled_at: datetime | None = None,
    run_url: str | None = None,
    now: datetime | None = None,
    checker: Checker | None = None,
    on_queued: Callable[[], None] | None = None,
) -> CycleReport:
    """Check the monitors that are due and record each result as soon as its check ends
    (alerting/recorder.py), calling ``on_queued`` whenever alert rows were queued, so a deliverer can
    send them while the rest of the cycle runs. ``store`` None (it could not be opened) still checks,
    so the final state names what is failing, but records and queues nothing."""
    specs = list(config.monitors if monitors is None else monitors)
    store_error = None if store is not None else "the state store could not be opened"
    try:
        due, not_due, still_down, slots = select_monitors(specs, store, shard, cycle_seconds, now or utcnow(),
                                                          scheduled_at)
    except Exception as exc:  # noqa: BLE001 - without the store, check everything
        store_error = f"{type(exc).__name__}: {exc}"
        due, not_due, still_down, slots = select_monitors(specs, None, shard, None, now or utcnow())
    by_name = {s.name: s for s in due}
    recorder = None
    if store is not None and store_error is None:
        recorder = ResultRecorder(store, config, run_url=run_url, on_queued=on_queued,
                                  clock=(lambda: now) if now is not None else utcnow)

    def on_result(result: CheckResult) -> None:
        if recorder is not None:
            recorder.put(result, by_name[result.monitor])

    results = _checked(due, config, checker, on_result, slots)
    states: dict[str, MonitorState] = {}
    events: list[AlertEvent] = []
    queued = 0
    if recorder is not None and store is not None:
        recorder.close()
        journal = recorder.take()
        states, events, queued = journal.states, journal.events, journal.queued
        store_error = journal.store_error
        if store_error is None and results:
            prune_history(store, config, now or utcnow())
    if store_error:
        log.error("State store unusable (%s): this cycle is not recorded and alerts wait until it is back",
                  store_error)
    ok, message = cycle_message(
        results, [str(p).split(": ", 1)[-1] for p in config.problems], config.path,
        notes=confirmation_notes(results, states, by_name), not_due=not_due, still_down=still_down,
    )
    if store_error:
        ok, message = False, f"state store unusable ({store_error}); {message}"
    return CycleReport(results, states, events, queued, not_due, still_down, store_error, ok, message)


def _checked(due: list[MonitorSpec], config: Config, checker: Checker | None,
             on_result: OnResult, slots: dict[str, float] | None = None) -> list[CheckResult]:
    """The checker's results (the flow's Prefect task), each passed to ``on_result`` once, as soon
    as it is known; if the checker fails (say, the Prefect API went away mid-run), the monitors it
    did not check are checked here: a cycle never ends without its checks."""
    seen: dict[str, CheckResult] = {}

    def note(result: CheckResult) -> None:
        if result.monitor not in seen:
            seen[result.monitor] = result
            on_result(result)

    if checker is not None:
        try:
            for result in checker(due, note, slots or {}):
                note(result)  # a checker that did not stream its results
        except Exception as exc:  # noqa: BLE001
            log.error("The check task failed (%s); checking here instead", type(exc).__name__)
    rest = [s for s in due if s.name not in seen]
    if checker is not None and rest and len(rest) < len(due):
        log.error("The check task returned %d results for %d monitors; checking the rest here",
                  len(due) - len(rest), len(due))
    check_all(rest, config.concurrency, config.per_host_concurrency, on_result=note)  # no waiting: late already
    return [seen[s.name] for s in due]


def confirmation_notes(
    results: list[CheckResult], states: dict[str, MonitorState], specs: dict[str, MonitorSpec]
) -> dict[str, str]:
    """For each failing check: confirmed DOWN, still being confirmed, or a check error."""
    notes = {}
    for r in results:
        if r.ok:
            continue
        if r.error is ErrorKind.CHECK_ERROR:
            notes[r.monitor] = "not counted: the check itself failed"
            continue
        state = states.get(r.monitor)
        if state is None:
            continue
        if state.status is Status.DOWN:
            since = state.since.strftime("%H:%M:%S UTC") if state.since else "?"
            notes[r.monitor] = f"DOWN since {since}"
        else:
            notes[r.monitor] = (f"unconfirmed, {state.consecutive_failures} of "
                                f"{specs[r.monitor].failure_threshold} failing runs")
    return notes


# --- drills and notices: the same outbox, the same deliverer ---------------------------------------

def queue_drill(store: Store, spec: MonitorSpec, result: CheckResult, run_url: str | None = None) -> str:
    """Queue a ``[DRILL] DOWN`` for every channel of ``spec``; the monitor's state is not touched.
    Returns the alert id (deliver with ``deliver_pending(..., only={id})``)."""
    rows = alert_rows(render_down(result, spec, run_url=run_url, drill=True), spec.channels, result.checked_at)
    with store.begin() as tx:
        tx.enqueue(rows)
    return rows[0].alert_id if rows else ""


def notice_channels(config: Config) -> list[str]:
    """Where notices about the monitoring itself go: every channel a monitor alerts."""
    used = dict.fromkeys(c for spec in config.monitors for c in spec.channels if c in config.channels)
    return list(used)


def notice_rows(config: Config, kind: str, title: str, lead: str, rows: list[tuple[str, str]],
                now: datetime) -> list[NewAlert]:
    """Outbox rows for a notice about the monitoring itself (``NOTICE``: degraded, ``RESTORED``:
    back to normal), one per notice channel."""
    message = render_notice(kind, title, lead, rows + [("Time", f"{now:%Y-%m-%d %H:%M:%S} UTC")])
    return alert_rows(message, notice_channels(config), now)
