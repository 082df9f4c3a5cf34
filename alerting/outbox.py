"""The one deliverer: send what the outbox holds, in order per channel, each alert a bounded number of times.

Whoever calls it (the flow after recording a cycle, its hooks, the serving process in degraded
mode, the CLI) gets the same behaviour:

- each channel is a FIFO: rows go out in the order they were written; a row that another worker is
  sending (claimed) or that is backing off holds the rows behind it, so a channel never sees a
  RESOLVED before its DOWN;
- a DOWN, REMINDER or FLAPPING that a later RESOLVED of the same monitor has made stale is
  *superseded* (kept in the store, never sent);
- one attempt per row per pass; after a failure the row waits (30 s, doubling, at most 30 min, or
  the service's Retry-After) and is tried on a later pass; after ``MAX_ATTEMPTS`` it is marked
  *undeliverable* (``alerting status`` lists it); from ``fallback_after`` failed attempts a copy goes
  to ``fallback_channel``;
- a claim is short (``LEASE``) and taken per row just before sending, so a crashed worker's row
  is retried within a minute, never resent while a live worker holds it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from alerting.channels import Channel, DeliveryResult, channel_for
from alerting.config import Config
from alerting.delivery import with_prefect_settings
from alerting.models import ChannelSpec, utcnow
from alerting.render import AlertMessage, severity_of
from alerting.store import NewAlert, OutboxRow, Store

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # one send takes seconds (Apprise's socket timeouts are ~4 s)
MAX_ATTEMPTS = 8  # per alert and channel, across runs: ~1 h of backoff, then undeliverable
FIRST_BACKOFF = 30.0
FIRST_BACKOFF_ENV = "ALERTING_DELIVERY_RETRY_WAIT"  # seconds of the first wait (tests set 0)
MAX_BACKOFF = 1800.0
LATE_AFTER = timedelta(minutes=5)


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """Wait before attempt ``attempts + 1``: 30 s, 60 s, 120 s ... at most 30 min; a longer
    Retry-After from the service wins (capped at an hour)."""
    try:
        first = float(os.environ.get(FIRST_BACKOFF_ENV) or FIRST_BACKOFF)
    except ValueError:
        first = FIRST_BACKOFF
    seconds = min(first * 2 ** max(0, attempts - 1), MAX_BACKOFF)
    if retry_after is not None:
        seconds = max(seconds, min(retry_after, 3600.0))
    return timedelta(seconds=seconds)


class ChannelCache:
    """Channel objects kept across delivery passes by a long-lived deliverer: Apprise's pacing holds
    between passes, and a channel's plugin is loaded once (``warm``), not on the first alert."""

    def __init__(self) -> None:
        self._channels: dict[tuple[str, str], Channel] = {}

    def get(self, spec: ChannelSpec) -> Channel:
        key = (spec.name, spec.target.get_secret_value())
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = channel_for(spec)
        return channel

    def warm(self, config: Config) -> None:
        for spec in config.channels.values():
            try:
                self.get(spec).warm()
            except Exception as exc:  # noqa: BLE001 - the first send reports what is wrong
                log.debug("Could not prepare channel %s: %s", spec.name, type(exc).__name__)


def deliver_pending(
    store: Store, config: Config, now: datetime | None = None, clock: Callable[[], datetime] = utcnow,
    only: set[str] | None = None, channels: ChannelCache | None = None,
) -> list[DeliveryResult]:
    """Deliver every live outbox row that is due (``only``: just the rows with these alert ids).

    ``now`` (or ``clock`` per row) decides claims and backoff; tests pass a fixed time. Never raises
    for a channel's failure: the result says what happened to each row sent or skipped.
    """
    now_fn = (lambda: now) if now is not None else clock
    for row in store.supersede_stale(now_fn()):
        log.info("Not sending %r to channel %s: the service was back UP before it went out (alert %s)",
                 row.title, row.channel, row.short_id)
    by_channel: dict[str, list[OutboxRow]] = {}
    for row in store.live_outbox():
        if only is None or row.alert_id in only:
            by_channel.setdefault(row.channel, []).append(row)
    if not by_channel:
        return []

    def run(rows: list[OutboxRow]) -> list[DeliveryResult]:
        return _deliver_channel(store, config, rows, now_fn, channels)

    results: list[DeliveryResult] = []
    with ThreadPoolExecutor(max_workers=min(16, len(by_channel)), thread_name_prefix="outbox") as pool:
        for batch in pool.map(with_prefect_settings(run), by_channel.values()):
            results += batch
    return results


def _deliver_channel(store: Store, config: Config, rows: list[OutboxRow], now_fn,
                     channels: ChannelCache | None = None) -> list[DeliveryResult]:
    out: list[DeliveryResult] = []
    channel: Channel | None = None  # one per channel and pass: Apprise paces sends per channel object
    for pending in rows:
        now = now_fn()
        row = store.claim(pending.id, now, LEASE)
        if row is None:
            break  # held by another worker, or backing off: the rows behind it wait (order per channel)
        spec = config.channels.get(row.channel)
        if spec is None:
            result = DeliveryResult(row.channel, "?", row.title, False,
                                    f"channel {row.channel!r} is not in the config any more")
        else:
            channel = channel or (channels.get(spec) if channels is not None else channel_for(spec))
            result = channel.send(_message(row, now))
        _settle(store, config, row, result, now_fn())
        out.append(result)
        if not result.ok:
            break  # the channel is failing: the rest wait for the next pass, in order
    return out


def _settle(store: Store, config: Config, row: OutboxRow, result: DeliveryResult, now: datetime) -> None:
    if result.ok:
        store.mark(row.id, now, True, None)
        return
    give_up = row.attempts >= MAX_ATTEMPTS
    retry_at = None if give_up else now + backoff(row.attempts, result.retry_after)
    error = result.error
    if give_up:
        error = f"undeliverable after {row.attempts} attempts: {result.error}"
        log.error("Alert %s (%r) to channel %s is undeliverable after %d attempts: %s",
                  row.short_id, row.title, row.channel, row.attempts, result.error)
    store.mark(row.id, now, False, error, next_attempt_at=retry_at, give_up=give_up)
    fallback = config.fallback_channel
    if (fallback and fallback in config.channels and row.channel != fallback and row.fallback_for is None
            and (row.attempts >= config.fallback_after or give_up)):
        copy = NewAlert(row.alert_id, fallback, row.kind, row.monitor,
                        f"{row.title} [via fallback: {row.channel} failing]", row.markdown, row.body,
                        row.created_at, fallback_for=row.channel)
        with store.begin() as tx:
            tx.enqueue([copy])  # once: the copy's de-duplication key is alert id + fallback channel


def _message(row: OutboxRow, now: datetime) -> AlertMessage:
    late = row.attempts > 1 or (now - row.created_at) > LATE_AFTER
    note = (f"Delivered late: this alert is from {row.created_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(delivery attempt {row.attempts}).") if late else ""
    return AlertMessage(
        row.kind, row.monitor, row.title,
        row.markdown + (f"\n\n_{note}_" if note else ""),
        row.body + (f"\n\n{note}" if note else ""),
        severity=severity_of(row.kind),
    )
