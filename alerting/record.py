"""Recording a group of check results: the policy's decisions, the check history and the alert rows
(the outbox), in ONE transaction; a storm (``storm_threshold`` or more services going DOWN, or
coming back, in one group) is one message per channel."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from alerting.config import Config
from alerting.models import AlertEvent, AlertKind, CheckResult, MonitorSpec, MonitorState
from alerting.policy import hold_for, step
from alerting.render import AlertMessage, render_event, render_storm, with_alert_id
from alerting.store import NewAlert, Store, short_alert_id

log = logging.getLogger(__name__)
STORM_KINDS = (AlertKind.DOWN, AlertKind.RESOLVED)


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
        rows += alert_rows(render_event(ev, spec, run_url=run_url), spec.channels, ev.at)
    for (channel, _kind), group in grouped.items():
        if len(group) == 1:
            message = render_event(group[0], specs[group[0].monitor], run_url=run_url)
        else:
            message = render_storm(group, run_url=run_url)
        rows += alert_rows(message, [channel], min(e.at for e in group))
    return rows


def alert_rows(message: AlertMessage, channels: list[str], at: datetime) -> list[NewAlert]:
    alert_id = uuid.uuid4().hex
    message = with_alert_id(message, short_alert_id(alert_id))
    return [NewAlert(alert_id, channel, message.kind, message.monitor, message.title, message.markdown,
                     message.text, at) for channel in channels]


def record_cycle(
    store: Store, config: Config, specs: dict[str, MonitorSpec], results: list[CheckResult], now: datetime,
    run_url: str | None = None, prune: bool = True,
) -> tuple[dict[str, MonitorState], list[AlertEvent], int]:
    """Policy over the results; (new states, events, rows queued), all committed in one transaction."""
    states: dict[str, MonitorState] = {}
    events: list[AlertEvent] = []
    with store.begin() as tx:
        before = tx.states([r.monitor for r in results])
        # a result older than a check already recorded for its monitor (two writers: a run still in
        # flight and the guard checking without Prefect) goes to the history, never through the policy:
        # a pass from before an outage must not resolve the DOWN found since
        newest = tx.newest_checks(r.monitor for r in results)
        stale = [r for r in results if int(r.checked_at.timestamp()) < newest.get(r.monitor, -1)]
        if stale:
            log.warning("Not applying %d check result(s) older than one already recorded: %s",
                        len(stale), ", ".join(r.monitor for r in stale[:5]))
        applied = [r for r in results if r not in stale]
        for result in applied:
            spec = specs[result.monitor]
            state = before[result.monitor]
            new, decided = step(state, result, spec, now, hold_for(state, spec, config.maintenance, now))
            states[result.monitor] = new
            events += decided
        tx.save_states(list(states.values()), now, checked={r.monitor: r.checked_at for r in applied})
        tx.add_history(results)
        tx.record_incidents(list(states.values()), applied, now, before)
        queued = tx.enqueue(plan_alerts(events, specs, config.storm_threshold, run_url))
    if prune:
        prune_history(store, config, now)
    return states, events, queued


def prune_history(store: Store, config: Config, now: datetime) -> None:
    try:
        store.prune(now, timedelta(seconds=config.history_retention))
    except Exception as exc:  # noqa: BLE001 - pruning is housekeeping, never a reason to fail a run
        log.warning("Could not prune old history: %s", exc)
