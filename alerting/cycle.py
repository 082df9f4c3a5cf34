"""One monitoring cycle without Prefect: pick the monitors due, check them, record what the policy decides.

    config -> due monitors -> checks (threads, isolated) -> policy -> ONE transaction:
    states + history + outbox rows

The Prefect flow, the serving process in degraded mode and ``alerting run`` without an API all
call ``run_cycle``; ``alerting.outbox.deliver_pending`` then sends what it queued. Nothing here
needs the Prefect API, so checks and alerts go on when the orchestrator is down.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerting.check import build_session, check
from alerting.config import Config
from alerting.models import AlertEvent, AlertKind, CheckResult, ErrorKind, MonitorSpec, MonitorState, Status, utcnow
from alerting.policy import hold_for, step
from alerting.render import (
    AlertMessage,
    cycle_message,
    render_down,
    render_event,
    render_notice,
    render_storm,
    with_alert_id,
)
from alerting.schedule import due_monitors, host_of, in_shard, interleave_by_host, parse_shard
from alerting.store import NewAlert, Store, short_alert_id

log = logging.getLogger(__name__)
STORM_KINDS = (AlertKind.DOWN, AlertKind.RESOLVED)


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
    specs: list[MonitorSpec], store: Store | None, shard: str | None, cycle_seconds: float | None, now: datetime
) -> tuple[list[MonitorSpec], int, list[str]]:
    """(monitors to check now, how many are not due, names not due whose stored status is DOWN)."""
    if shard:
        part = parse_shard(shard)
        specs = [s for s in specs if in_shard(s, part)]
    if not cycle_seconds or store is None:
        return specs, 0, []
    last, stored = store.last_checked(), store.states()
    due = due_monitors(specs, last, now, cycle_seconds)
    names = {s.name for s in due}
    still_down = [s.name for s in specs
                  if s.name not in names and s.name in stored and stored[s.name].status is Status.DOWN]
    return due, len(specs) - len(due), still_down


def check_all(specs: list[MonitorSpec], concurrency: int = 32, per_host: int = 8) -> list[CheckResult]:
    """Check monitors concurrently, at most ``per_host`` at once against one host. Never raises:
    ``check`` turns every failure, ours included, into that monitor's result."""
    if not specs:
        return []
    workers = max(1, min(concurrency, len(specs)))
    session = build_session(min(workers, per_host))
    hosts = {spec.name: _host(spec) for spec in specs}
    limits = {host: threading.BoundedSemaphore(per_host) for host in set(hosts.values())}

    def bounded(spec: MonitorSpec) -> CheckResult:
        with limits[hosts[spec.name]]:
            return check(spec, session)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check") as pool:
            return list(pool.map(bounded, interleave_by_host(specs, hosts)))
    finally:
        session.close()


def _host(spec: MonitorSpec) -> str:
    try:
        return host_of(spec)
    except ValueError:
        return spec.name  # an unparsable URL fails in its own check, alone


# --- recording ------------------------------------------------------------------------------------

def plan_alerts(
    events: list[AlertEvent], specs: dict[str, MonitorSpec], storm_threshold: int, run_url: str | None = None,
) -> list[NewAlert]:
    """Outbox rows for a cycle's events: one per event and channel, or one storm message per channel
    and kind when ``storm_threshold`` or more monitors went DOWN (or came back) in this cycle."""
    rows: list[NewAlert] = []
    grouped: dict[tuple[str, AlertKind], list[AlertEvent]] = {}
    storm = {
        kind for kind in STORM_KINDS
        if storm_threshold > 0 and sum(1 for e in events if e.kind is kind) >= storm_threshold
    }
    for ev in events:
        spec = specs[ev.monitor]
        if ev.kind in storm:
            for channel in spec.channels:
                grouped.setdefault((channel, ev.kind), []).append(ev)
            continue
        rows += _rows(render_event(ev, spec, run_url=run_url), spec.channels, ev.at)
    for (channel, _kind), group in grouped.items():
        if len(group) == 1:
            message = render_event(group[0], specs[group[0].monitor], run_url=run_url)
        else:
            message = render_storm(group, run_url=run_url)
        rows += _rows(message, [channel], min(e.at for e in group))
    return rows


def _rows(message: AlertMessage, channels: list[str], at: datetime) -> list[NewAlert]:
    alert_id = uuid.uuid4().hex
    message = with_alert_id(message, short_alert_id(alert_id))
    return [NewAlert(alert_id, channel, message.kind, message.monitor, message.title, message.markdown,
                     message.text, at) for channel in channels]


def record_cycle(
    store: Store, config: Config, specs: dict[str, MonitorSpec], results: list[CheckResult], now: datetime,
    run_url: str | None = None,
) -> tuple[dict[str, MonitorState], list[AlertEvent], int]:
    """Policy over the results; (new states, events, rows queued), all committed in one transaction."""
    states: dict[str, MonitorState] = {}
    events: list[AlertEvent] = []
    with store.begin() as tx:
        before = tx.states([r.monitor for r in results])
        for result in results:
            spec = specs[result.monitor]
            state = before[result.monitor]
            new, decided = step(state, result, spec, now, hold_for(state, spec, config.maintenance, now))
            states[result.monitor] = new
            events += decided
        tx.save_states(list(states.values()), now)
        tx.add_history(results)
        tx.record_incidents(list(states.values()), results, now)
        queued = tx.enqueue(plan_alerts(events, specs, config.storm_threshold, run_url))
    try:
        store.prune(now, timedelta(seconds=config.history_retention))
    except Exception as exc:  # noqa: BLE001 - pruning is housekeeping, never a reason to fail a run
        log.warning("Could not prune old history: %s", exc)
    return states, events, queued


def run_cycle(
    config: Config,
    store: Store | None,
    *,
    monitors: list[MonitorSpec] | None = None,
    shard: str | None = None,
    cycle_seconds: float | None = None,
    run_url: str | None = None,
    now: datetime | None = None,
    checker: Callable[[list[MonitorSpec]], list[CheckResult]] | None = None,
) -> CycleReport:
    """Check the monitors that are due and record the outcome. ``store`` None (it could not be
    opened) still checks, so the final state names what is failing, but records and queues nothing."""
    specs = list(config.monitors if monitors is None else monitors)
    store_error = None if store is not None else "the state store could not be opened"
    try:
        due, not_due, still_down = select_monitors(specs, store, shard, cycle_seconds, now or utcnow())
    except Exception as exc:  # noqa: BLE001 - without the store, check everything
        store_error = f"{type(exc).__name__}: {exc}"
        due, not_due, still_down = select_monitors(specs, None, shard, None, now or utcnow())
    results = _checked(due, config, checker)
    states: dict[str, MonitorState] = {}
    events: list[AlertEvent] = []
    queued = 0
    if store is not None and store_error is None:
        try:
            states, events, queued = record_cycle(store, config, {s.name: s for s in due}, results,
                                                  now or utcnow(), run_url)
        except Exception as exc:  # noqa: BLE001 - reported in the final state; no second alert path
            store_error = f"{type(exc).__name__}: {exc}"
    if store_error:
        log.error("State store unusable (%s): this cycle is not recorded and alerts wait until it is back",
                  store_error)
    ok, message = cycle_message(
        results, [str(p).split(": ", 1)[-1] for p in config.problems], config.path,
        notes=confirmation_notes(results, states, {s.name: s for s in due}), not_due=not_due, still_down=still_down,
    )
    if store_error:
        ok, message = False, f"state store unusable ({store_error}); {message}"
    return CycleReport(results, states, events, queued, not_due, still_down, store_error, ok, message)


def _checked(due: list[MonitorSpec], config: Config, checker) -> list[CheckResult]:
    """The checker's results (the flow's Prefect task); if it fails (say, the Prefect API went away
    mid-run), the checks run here instead: a cycle never ends without its checks."""
    if checker is not None:
        try:
            results = checker(due)
            if len(results) == len(due):
                return results
            log.error("The check task returned %d results for %d monitors; checking here instead",
                      len(results), len(due))
        except Exception as exc:  # noqa: BLE001
            log.error("The check task failed (%s); checking here instead", type(exc).__name__)
    return check_all(due, config.concurrency, config.per_host_concurrency)


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
    rows = _rows(render_down(result, spec, run_url=run_url, drill=True), spec.channels, result.checked_at)
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
    return _rows(message, notice_channels(config), now)
