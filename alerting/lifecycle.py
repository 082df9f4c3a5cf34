"""The alert lifecycle around one monitor run: policy + store + outbox + delivery, no Prefect.

``record_cycle`` applies the policy to a run's results and writes, in ONE transaction, the new
states, the check history and the rendered alerts (outbox rows). ``deliver_pending`` then sends
every undelivered outbox row (this run's and any left by an earlier run or a crash), marking each
as delivered the moment its channel accepts it, so a retry never sends a second copy.
"""

from __future__ import annotations

import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alerting.config import Config
from alerting.delivery import DeliveryResult, send_with_retry, with_prefect_settings
from alerting.models import CheckResult, MonitorSpec
from alerting.policy import AlertEvent, AlertKind, MonitorState, active_window, hold_for, step
from alerting.render import AlertMessage, render_event, render_storm, severity_of
from alerting.store import NewAlert, OutboxRow, Store

log = logging.getLogger(__name__)
FAULT_ENV = "ALERTING_TEST_FAULT"  # test-only: "crash-after-commit" exits right after the state write
STORM_KINDS = (AlertKind.DOWN, AlertKind.RESOLVED)


@dataclass
class CycleRecord:
    states: dict[str, MonitorState] = field(default_factory=dict)
    events: list[AlertEvent] = field(default_factory=list)
    queued: int = 0


def open_store(config: Config) -> Store:
    return Store(config.resolved_state_url())


def plan_alerts(
    events: list[AlertEvent],
    specs: dict[str, MonitorSpec],
    storm_threshold: int,
    run_url: str | None = None,
) -> list[NewAlert]:
    """Outbox rows for a run's events: one per event and channel, or one storm message per channel
    and kind when ``storm_threshold`` or more monitors went DOWN (or came back) in this run."""
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
        message = render_event(ev, spec, run_url=run_url)
        alert_id = uuid.uuid4().hex
        rows += [_new(alert_id, channel, message, ev.at) for channel in spec.channels]
    for (channel, _kind), group in grouped.items():
        if len(group) == 1:
            message = render_event(group[0], specs[group[0].monitor], run_url=run_url)
        else:
            message = render_storm(group, run_url=run_url)
        rows.append(_new(uuid.uuid4().hex, channel, message, min(e.at for e in group)))
    return rows


def _new(alert_id: str, channel: str, message: AlertMessage, at: datetime) -> NewAlert:
    return NewAlert(alert_id, channel, message.kind, message.monitor, message.title, message.markdown,
                    message.text, at)


def record_cycle(
    store: Store,
    config: Config,
    specs: dict[str, MonitorSpec],
    results: list[CheckResult],
    now: datetime,
    run_url: str | None = None,
) -> CycleRecord:
    """Policy over this run's results; states, history and outbox rows committed together."""
    record = CycleRecord()
    with store.begin() as tx:
        before = tx.states([r.monitor for r in results])
        for result in results:
            spec = specs[result.monitor]
            state = before[result.monitor]
            new, events = step(state, result, spec, now, hold_for(state, spec, config.maintenance, now))
            record.states[result.monitor] = new
            record.events += events
        tx.save_states(list(record.states.values()), now)
        tx.add_history(results)
        record.queued = tx.enqueue(plan_alerts(record.events, specs, config.storm_threshold, run_url))
    if os.environ.get(FAULT_ENV) == "crash-after-commit":
        os._exit(70)  # test-only fault: the state is written, nothing is delivered yet
    try:
        store.prune(now, timedelta(seconds=config.history_retention))
    except Exception as exc:  # noqa: BLE001 - pruning is housekeeping, never a reason to fail a run
        log.warning("Could not prune old history: %s", exc)
    return record


def deliver_pending(store: Store, config: Config, now: datetime) -> list[DeliveryResult]:
    """Send every undelivered outbox row; channels in parallel, each row marked as soon as it is sent.

    A row that fails stays in the outbox for the next run. After ``fallback_after`` failed attempts a
    copy goes to ``fallback_channel`` (once: its own de-duplication key).
    """
    results = _deliver_rows(store, config, store.claim_pending(now), now)
    if config.fallback_channel and config.fallback_channel in config.channels:
        copies = [
            NewAlert(r.alert_id, config.fallback_channel, r.kind, r.monitor,
                     f"{r.title} [via fallback: {r.channel} failing]", r.markdown, r.body, r.created_at,
                     fallback_for=r.channel)
            for r in store.outbox_rows(pending_only=True)
            if r.attempts >= config.fallback_after and r.channel != config.fallback_channel and r.fallback_for is None
        ]
        with store.begin() as tx:
            tx.enqueue(copies)
        if copies:
            claimed = store.claim_pending(now, keys=[c.dedup_key for c in copies])
            results += _deliver_rows(store, config, claimed, now)
    return results


def _deliver_rows(store: Store, config: Config, rows: list[OutboxRow], now: datetime) -> list[DeliveryResult]:
    by_channel: dict[str, list[OutboxRow]] = {}
    for row in rows:
        by_channel.setdefault(row.channel, []).append(row)

    def run(channel_rows: list[OutboxRow]) -> list[DeliveryResult]:
        out: list[DeliveryResult] = []
        for row in channel_rows:
            failed = next((r for r in out if not r.ok), None)
            if failed is not None:
                # the channel just failed all its retries: do not spend them again on every pending
                # row; the rest wait for the next run (counted as an attempt, for the fallback)
                error = f"{failed.error} (not tried again in this run)"
                store.mark(row.id, now, False, error)
                out.append(DeliveryResult(row.channel, failed.target, row.title, False, error, attempts=0))
                continue
            channel = config.channels.get(row.channel)
            if channel is None:
                error = f"channel {row.channel!r} is not in the config any more"
                store.mark(row.id, now, False, error)
                out.append(DeliveryResult(row.channel, "?", row.title, False, error))
                continue
            late = row.attempts > 1 or (now - row.created_at) > timedelta(minutes=5)
            message = AlertMessage(
                row.kind, row.monitor, row.title,
                row.markdown + (_late_note(row, now, markdown=True) if late else ""),
                row.body + (_late_note(row, now, markdown=False) if late else ""),
                severity=severity_of(row.kind),
            )
            result = send_with_retry(channel, message)
            store.mark(row.id, now, result.ok, result.error)
            out.append(result)
        return out

    if not by_channel:
        return []
    results: list[DeliveryResult] = []
    with ThreadPoolExecutor(max_workers=min(16, len(by_channel)), thread_name_prefix="outbox") as pool:
        for batch in pool.map(with_prefect_settings(run), by_channel.values()):  # block: channels
            results += batch
    return results


def _late_note(row: OutboxRow, now: datetime, markdown: bool) -> str:
    text = (f"Delivered late: this alert is from {row.created_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(delivery attempt {row.attempts}).")
    return f"\n\n_{text}_" if markdown else f"\n\n{text}"


# --- status views (CLI and the flow's table artifact) ---------------------------------------------

UPTIME_WINDOWS = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def status_rows(store: Store, config: Config, now: datetime, names: list[str] | None = None) -> list[dict]:
    """One row per configured monitor (or only those in ``names``): status, since, uptime, latency,
    last error, hold."""
    states = store.states()
    uptime = store.uptime(now, UPTIME_WINDOWS, names)
    latencies = store.latency_percentiles(now, UPTIME_WINDOWS["24h"], names=names)
    rows = []
    wanted = None if names is None else set(names)
    for spec in config.monitors:
        if wanted is not None and spec.name not in wanted:
            continue
        state = states.get(spec.name) or MonitorState(spec.name)
        window = active_window(list(spec.maintenance) + list(config.maintenance), now)
        p50, p95 = latencies.get(spec.name, [None, None])
        up = uptime.get(spec.name, {})
        rows.append({
            "monitor": spec.name,
            "status": state.status.value,
            "since": state.since.isoformat(timespec="seconds") if state.since else None,
            "uptime_24h": _round(up.get("24h")),
            "uptime_7d": _round(up.get("7d")),
            "uptime_30d": _round(up.get("30d")),
            "p50_ms": _round(p50, 0),
            "p95_ms": _round(p95, 0),
            "last_error": state.last_error,
            "silenced_until": state.silenced_until.isoformat(timespec="seconds") if state.silenced(now) else None,
            "silence_reason": state.silence_reason if state.silenced(now) else None,
            "maintenance": window.label() if window else None,
            "flapping": state.flapping,
        })
    return rows


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)
