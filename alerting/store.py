"""The durable state store: monitor state, check history and the alert outbox (SQLAlchemy Core).

SQLite by default (a file under ``<config dir>/.alerting/``, WAL mode, busy timeout, full sync so a
killed process loses no committed row); any SQLAlchemy URL (``postgresql://...``) via ``state_url``
for several workers. The schema is created on first use and migrated with Alembic
(``alerting/migrations/``) when an older alerting made it.

Check history rows are kept compact (integer monitor id, epoch seconds, small ints; ~40 bytes per
check with its index on SQLite, measured) and pruned past ``history_retention``; an hourly rollup
(checks, ups and a latency histogram per monitor and hour, ~1 byte per check at 30 s) keeps uptime
and p50/p95 for 400 days and makes them cheap to compute at any number of monitors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import bindparam, case, create_engine, event, func, inspect, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from alerting import latency
from alerting.models import CheckResult, MonitorState, Status
from alerting.store_schema import (  # noqa: F401 - re-exported: the schema is part of the store's API
    LEGACY_REVISIONS,
    SCHEMA_REVISION,
    VERSION_TABLE,
    NewAlert,
    OutboxRow,
    check_daily,
    check_history,
    check_rollup,
    incident,
    meta,
    metadata,
    monitor_state,
    outbox,
    schema_version,
    short_alert_id,
)

log = logging.getLogger(__name__)


class StoreError(Exception):
    """The store cannot be opened or used; the message names the URL (password hidden)."""


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def _state_from_row(row) -> MonitorState:
    return MonitorState(
        monitor=row.monitor,
        status=Status(row.status),
        since=row.since,
        consecutive_failures=row.consecutive_failures,
        consecutive_successes=row.consecutive_successes,
        notified_down=bool(row.notified_down),
        last_alert_at=row.last_alert_at,
        episode_start=row.episode_start,
        episode_end=row.episode_end,
        first_error=row.first_error,
        last_error=row.last_error,
        silenced_until=row.silenced_until,
        silence_reason=row.silence_reason,
        changes=tuple(datetime.fromtimestamp(t, timezone.utc) for t in json.loads(row.changes or "[]")),
        flapping=bool(row.flapping),
        degraded=bool(row.degraded),
        notified_degraded=bool(row.notified_degraded),
        consecutive_warnings=row.consecutive_warnings or 0,
        degraded_since=row.degraded_since,
        warning_kind=row.warning_kind,
        warning_text=row.warning_text,
    )


def _state_values(state: MonitorState, now: datetime) -> dict:
    return {
        "status": state.status.value,
        "since": state.since,
        "consecutive_failures": state.consecutive_failures,
        "consecutive_successes": state.consecutive_successes,
        "notified_down": state.notified_down,
        "last_alert_at": state.last_alert_at,
        "episode_start": state.episode_start,
        "episode_end": state.episode_end,
        "first_error": state.first_error,
        "last_error": state.last_error,
        "silenced_until": state.silenced_until,
        "silence_reason": state.silence_reason,
        "changes": json.dumps([round(t.timestamp(), 3) for t in state.changes]),
        "flapping": state.flapping,
        "updated_at": now,
        "degraded": state.degraded,
        "notified_degraded": state.notified_degraded,
        "consecutive_warnings": state.consecutive_warnings,
        "degraded_since": state.degraded_since,
        "warning_kind": state.warning_kind,
        "warning_text": state.warning_text,
    }


def _history_error(result: CheckResult) -> str | None:
    kind = result.error or result.warning
    return kind.value if kind is not None else None


class Tx:
    """Operations inside one transaction (see ``Store.begin``)."""

    def __init__(self, conn: Connection, known_ids: dict[str, int] | None = None):
        self.conn = conn
        self.known_ids = known_ids if known_ids is not None else {}  # committed rows: ids never change
        self.new_ids: dict[str, int] = {}  # inserted here: known to others only after the commit

    # -- monitor state
    def ids(self, names: Iterable[str]) -> dict[str, int]:
        names = list(dict.fromkeys(names))
        known = {n: i for n in names if (i := self.known_ids.get(n, self.new_ids.get(n))) is not None}
        missing = [n for n in names if n not in known]
        if not missing:
            return known
        rows = self.conn.execute(select(monitor_state.c.monitor, monitor_state.c.id).where(monitor_state.c.monitor.in_(missing)))
        for r in rows:
            known[r.monitor] = self.known_ids[r.monitor] = r.id
        for name in missing:
            if name not in known:
                inserted = self.conn.execute(monitor_state.insert().values(monitor=name, changes="[]"))
                known[name] = self.new_ids[name] = inserted.inserted_primary_key[0]  # type: ignore[index]
        return known

    def states(self, names: Iterable[str]) -> dict[str, MonitorState]:
        names = list(names)
        query = select(monitor_state).where(monitor_state.c.monitor.in_(names)).with_for_update()  # PostgreSQL: lock rows
        rows: Iterable = self.conn.execute(query) if names else []
        found = {r.monitor: _state_from_row(r) for r in rows}
        return {n: found.get(n, MonitorState(n)) for n in names}

    def save_state(self, state: MonitorState, now: datetime) -> None:
        self.save_states([state], now)

    def save_states(self, states: list[MonitorState], now: datetime,
                    checked: dict[str, datetime] | None = None) -> None:
        """All states in one executemany UPDATE (one statement per monitor costs ~0.7 ms each).
        ``checked`` (monitor -> when its check started) is kept as its last check (``last_checked``:
        the next slot is one interval after it); else ``now``."""
        if not states:
            return
        checked = checked or {}
        ids = self.ids(s.monitor for s in states)
        self.conn.execute(
            monitor_state.update().where(monitor_state.c.id == bindparam("_id")),
            [{"_id": ids[s.monitor], **_state_values(s, checked.get(s.monitor, now))} for s in states],
        )

    # -- history
    def newest_checks(self, names: Iterable[str]) -> dict[str, int]:
        """monitor -> epoch second of its newest recorded check (monitors with none are left out)."""
        ids = self.ids(names)
        by_id = {ident: name for name, ident in ids.items()}
        if not by_id:
            return {}
        c = check_history.c
        rows = self.conn.execute(select(c.monitor_id, func.max(c.ts)).where(c.monitor_id.in_(list(by_id)))
                                 .group_by(c.monitor_id))
        return {by_id[ident]: ts for ident, ts in rows if ts is not None}

    def add_history(self, results: list[CheckResult]) -> None:
        if not results:
            return
        ids = self.ids(r.monitor for r in results)
        self.conn.execute(
            check_history.insert(),
            [
                {
                    "monitor_id": ids[r.monitor],
                    "ts": int(r.checked_at.timestamp()),
                    "ok": r.ok,
                    "status": r.status_code,
                    "latency_ms": None if r.latency_ms is None else int(round(r.latency_ms)),
                    # an ok check with a warning keeps it here (slow, cert_expiring): history shows DEGRADED runs
                    "error": _history_error(r),
                }
                for r in results
            ],
        )
        rollups: dict[tuple[int, int], tuple[list[int], dict[int, int]]] = {}
        for r in results:
            counts, hist = rollups.setdefault((ids[r.monitor], int(r.checked_at.timestamp()) // 3600), ([0, 0], {}))
            counts[0] += 1
            counts[1] += int(r.ok)
            if r.latency_ms is not None:
                index = latency.bucket(r.latency_ms)
                hist[index] = hist.get(index, 0) + 1
        idents = {ident for ident, _ in rollups}
        hours = {hour for _, hour in rollups}
        c = check_rollup.c
        existing = {
            (r.monitor_id, r.hour): r
            for r in self.conn.execute(
                select(c.monitor_id, c.hour, c.checks, c.ups, c.latency_hist)
                .where(c.hour.in_(hours) & c.monitor_id.in_(idents))
            )
        }
        inserts, updates = [], []
        for (ident, hour), ((checks, ups), hist) in rollups.items():
            old = existing.get((ident, hour))
            if old is None:
                inserts.append({"monitor_id": ident, "hour": hour, "checks": checks, "ups": ups,
                                "latency_hist": latency.dump(hist)})
            else:
                updates.append({"_mid": ident, "_hour": hour, "checks": old.checks + checks, "ups": old.ups + ups,
                                "latency_hist": latency.dump(latency.add(latency.parse(old.latency_hist), hist))})
        if inserts:
            self.conn.execute(check_rollup.insert(), inserts)
        if updates:
            self.conn.execute(
                check_rollup.update().where((c.monitor_id == bindparam("_mid")) & (c.hour == bindparam("_hour"))),
                updates,
            )

    # -- incidents (the status page's list): opened when a monitor is confirmed DOWN, closed when it is not
    def record_incidents(self, states: list[MonitorState], results: list[CheckResult], now: datetime,
                         before: dict[str, MonitorState] | None = None) -> None:
        """Open an incident for each monitor newly DOWN (its error kind and HTTP status from this
        cycle's result, never its error text), close the open one of each monitor no longer DOWN.
        With ``before`` (the states this cycle started from), only monitors that went into or out
        of DOWN are looked at: a cycle without such a change costs no query."""
        if before is not None:
            states = [s for s in states
                      if (s.status.value == "DOWN") != (s.monitor in before and before[s.monitor].status.value == "DOWN")]
        if not states:
            return
        ids = self.ids(s.monitor for s in states)
        c = incident.c
        open_ = {r.monitor_id: r.id for r in self.conn.execute(
            select(c.monitor_id, c.id).where(c.ended.is_(None), c.monitor_id.in_(list(ids.values()))))}
        by_monitor = {r.monitor: r for r in results}
        opened, closed = [], []
        for state in states:
            ident = ids[state.monitor]
            if state.status.value == "DOWN" and ident not in open_:
                result = by_monitor.get(state.monitor)
                opened.append({"monitor_id": ident, "started": state.since or state.episode_start or now, "ended": None,
                               "error": result.error.value if result is not None and result.error else None,
                               "status": result.status_code if result is not None else None})
            elif state.status.value != "DOWN" and ident in open_:
                end = state.episode_end or state.since or now
                closed.append({"_id": open_[ident], "ended": end})
        if opened:
            self.conn.execute(incident.insert(), opened)
        if closed:
            self.conn.execute(incident.update().where(c.id == bindparam("_id")), closed)

    # -- outbox
    def enqueue(self, alerts: list[NewAlert]) -> int:
        """Insert alerts whose dedup key is new; return how many were added."""
        if not alerts:
            return 0
        keys = [a.dedup_key for a in alerts]
        existing = set(self.conn.execute(select(outbox.c.dedup_key).where(outbox.c.dedup_key.in_(keys))).scalars())
        fresh = [a for a in alerts if a.dedup_key not in existing]
        fresh = list({a.dedup_key: a for a in fresh}.values())
        if fresh:
            self.conn.execute(
                outbox.insert(),
                [
                    {
                        "alert_id": a.alert_id, "dedup_key": a.dedup_key, "channel": a.channel, "kind": a.kind,
                        "monitor": a.monitor, "title": a.title, "markdown": a.markdown, "body": a.body,
                        "created_at": a.created_at, "attempts": 0, "fallback_for": a.fallback_for,
                    }
                    for a in fresh
                ],
            )
        return len(fresh)

    def get_meta(self, key: str) -> str | None:
        return self.conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        if self.conn.execute(meta.update().where(meta.c.key == key).values(value=value)).rowcount == 0:
            self.conn.execute(meta.insert().values(key=key, value=value))


_ROW_FIELDS = [f for f in OutboxRow.__dataclass_fields__]
_LIVE = outbox.c.delivered_at.is_(None) & outbox.c.gave_up_at.is_(None) & outbox.c.superseded_at.is_(None)


def _row(r) -> OutboxRow:
    return OutboxRow(**{f: r._mapping[f] for f in _ROW_FIELDS})


class Store:
    def __init__(self, url: str):
        self.url = url
        self._ids: dict[str, int] = {}  # monitor name -> monitor_state id (rows are never deleted)
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StoreError(f"state_url: not a valid SQLAlchemy URL: {url.split('://', 1)[0]}://...") from None
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict = {}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                try:
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create the folder for {parsed.database}: {exc.strerror}") from None
            kwargs["connect_args"] = {"timeout": 30}
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise StoreError(f"state_url {safe_url(url)}: {exc}") from None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin_immediate)
        self._migrate()

    def _migrate(self) -> None:
        """Bring the schema to ``SCHEMA_REVISION``. At head (nearly every open) this is two small
        queries and no Alembic; otherwise, under a lock, it creates, adopts or upgrades the schema."""
        try:
            with self.engine.begin() as conn:
                if _revisions(conn) == [SCHEMA_REVISION]:
                    return
            with self.engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE, one writer at a time
                if conn.dialect.name == "postgresql":
                    # workers starting together on an empty (or older) database would race to create
                    # or upgrade it; the first takes this lock, the others wait and then find it done
                    conn.execute(text("SELECT pg_advisory_xact_lock(7215406)"))
                self._upgrade(conn, _revisions(conn))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open state store {safe_url(self.url)}: {exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}") from None

    def _upgrade(self, conn: Connection, revisions: list[str]) -> None:
        if revisions == [SCHEMA_REVISION]:
            return  # another worker did it while this one waited for the lock
        from alembic.util import CommandError

        from alerting import migrations  # imports Alembic: only when the schema has to change

        stamp = None
        if not revisions:
            legacy = _legacy_version(conn)  # a store versioned by hand before Alembic, or None: empty
            if legacy is not None and legacy > max(LEGACY_REVISIONS):
                raise StoreError(
                    f"state store {safe_url(self.url)} has schema version {legacy}, newer than this "
                    f"alerting ({max(LEGACY_REVISIONS)}); upgrade alerting"
                )
            if legacy is not None:
                stamp = LEGACY_REVISIONS.get(legacy)
                if stamp is None:
                    raise StoreError(f"state store {safe_url(self.url)} has an unknown schema version {legacy}")
        newer = migrations.unknown(revisions)
        if newer:
            raise StoreError(
                f"state store {safe_url(self.url)} has schema revision {', '.join(newer)}, newer than this "
                f"alerting ({SCHEMA_REVISION}); upgrade alerting"
            )
        try:
            migrations.upgrade(conn, stamp=stamp)
        except CommandError as exc:
            raise StoreError(f"cannot migrate state store {safe_url(self.url)}: {exc}") from None
        start = stamp or (", ".join(revisions) if revisions else "an empty database")
        log.info("State store %s: schema upgraded from %s to %s", safe_url(self.url), start, SCHEMA_REVISION)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def begin(self) -> Iterator[Tx]:
        with self.engine.begin() as conn:
            tx = Tx(conn, self._ids)
            yield tx
        self._ids.update(tx.new_ids)  # committed

    # -- reads for the CLI and the artifact
    def last_checked(self) -> dict[str, datetime]:
        """monitor -> when its last check started (drives per-monitor intervals)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(monitor_state.c.monitor, monitor_state.c.updated_at))
            return {r.monitor: r.updated_at for r in rows if r.updated_at is not None}

    def states(self, names: list[str] | None = None) -> dict[str, MonitorState]:
        """Every stored state, or those of ``names`` (only the ones stored)."""
        query = select(monitor_state)
        if names is not None:
            if not names:
                return {}
            if len(names) <= 500:  # a bounded IN list; beyond that one full read is cheaper
                query = query.where(monitor_state.c.monitor.in_(names))
        wanted = None if names is None else set(names)
        with self.engine.connect() as conn:
            return {r.monitor: _state_from_row(r) for r in conn.execute(query)
                    if wanted is None or r.monitor in wanted}

    def uptime(
        self, now: datetime, windows: dict[str, timedelta], names: list[str] | None = None
    ) -> dict[str, dict[str, float | None]]:
        """monitor -> {window label: percent up or None}, from the hourly rollup (hour-aligned windows:
        the current hour counts, so "24h" covers the last 23 to 24 hours)."""
        current = int(now.timestamp()) // 3600
        cols: list = [monitor_state.c.monitor]
        for label, span in windows.items():
            in_window = check_rollup.c.hour > current - int(span.total_seconds()) // 3600
            cols.append(func.sum(case((in_window, check_rollup.c.checks), else_=0)).label(f"n_{label}"))
            cols.append(func.sum(case((in_window, check_rollup.c.ups), else_=0)).label(f"up_{label}"))
        longest = current - int(max(windows.values()).total_seconds()) // 3600
        query = (
            select(*cols)
            .select_from(check_rollup.join(monitor_state, monitor_state.c.id == check_rollup.c.monitor_id))
            .where(check_rollup.c.hour > longest)
            .group_by(monitor_state.c.monitor)
        )
        if names is not None:
            query = query.where(monitor_state.c.monitor.in_(names))
        out: dict[str, dict[str, float | None]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                m = row._mapping
                out[row.monitor] = {
                    label: (100.0 * (m[f"up_{label}"] or 0) / m[f"n_{label}"]) if m[f"n_{label}"] else None
                    for label in windows
                }
        return out

    def latency_percentiles(
        self, now: datetime, span: timedelta, qs=(50, 95), names: list[str] | None = None
    ) -> dict[str, list[float | None]]:
        """monitor -> [p50, p95] (ms) over the hour-aligned ``span``, merged from hourly histograms."""
        since = int(now.timestamp()) // 3600 - int(span.total_seconds()) // 3600
        query = (
            select(monitor_state.c.monitor, check_rollup.c.latency_hist)
            .select_from(check_rollup.join(monitor_state, monitor_state.c.id == check_rollup.c.monitor_id))
            .where(check_rollup.c.hour > since)
        )
        if names is not None:
            query = query.where(monitor_state.c.monitor.in_(names))
        merged: dict[str, dict[int, int]] = {}
        with self.engine.connect() as conn:
            for name, text in conn.execute(query):
                merged[name] = latency.add(merged.get(name, {}), latency.parse(text))
        return {name: [latency.percentile(hist, q) for q in qs] for name, hist in merged.items()}

    # -- reads for the status page (alerting/status_page/data.py)
    def raw_states(self, names: list[str]) -> dict[str, tuple[str, datetime | None, datetime | None]]:
        """monitor -> (status as stored, since, last check). The status is the stored string, not
        ``Status``: a page built by this code still shows a status a newer alerting wrote."""
        c = monitor_state.c
        query = select(c.monitor, c.status, c.degraded, c.since, c.updated_at).where(c.monitor.in_(names))
        with self.engine.connect() as conn:
            # UP at the warning level (slow, certificate expiring) shows as DEGRADED
            return {r.monitor: ("DEGRADED" if r.status == "UP" and r.degraded else r.status, r.since, r.updated_at)
                    for r in conn.execute(query)}

    def daily_counts(self, first_day: int, now: datetime, names: list[str]) -> dict[str, dict[int, tuple[int, int]]]:
        """monitor -> {UTC day number (epoch days): (checks, ups)} from ``first_day`` to today.

        Finished days come from ``check_daily``, which this fills from the hourly rollup the first
        time it is asked for them (once a day; the first time, every day of the rollup: ~2 s at
        1,000 monitors and 90 days); recent days are summed from the hourly rollup each time. A day
        counts as finished an hour after it ends (a cycle running across midnight has committed)."""
        settled = (int(now.timestamp()) - 3600) // 86400  # days before this one are finished
        with self.engine.connect() as conn:
            through = conn.execute(select(meta.c.value).where(meta.c.key == "daily_through")).scalar()
        if through is None or int(through) < settled - 1:
            # summed on a read connection (no lock: the recorder keeps writing), stored in a short write
            start = 0 if through is None else int(through) + 1
            c = check_rollup.c
            day = (c.hour // 24).label("day")
            fill = (
                select(c.monitor_id, day, func.sum(c.checks), func.sum(c.ups))
                .where(c.hour >= start * 24, c.hour < settled * 24)
                .group_by(c.monitor_id, day)
            )
            with self.engine.connect() as conn:
                rows = [{"monitor_id": m, "day": int(d), "checks": int(n), "ups": int(u)}
                        for m, d, n, u in conn.execute(fill)]
            with self.begin() as tx:
                if tx.get_meta("daily_through") == through:  # else another builder stored them meanwhile
                    tx.conn.execute(check_daily.delete().where(check_daily.c.day >= start, check_daily.c.day < settled))
                    if rows:
                        tx.conn.execute(check_daily.insert(), rows)
                    tx.set_meta("daily_through", str(settled - 1))
        d, r = check_daily.c, check_rollup.c
        finished = (
            select(monitor_state.c.monitor, d.day, d.checks, d.ups)
            .select_from(check_daily.join(monitor_state, monitor_state.c.id == d.monitor_id))
            .where(d.day >= first_day, d.day < settled, monitor_state.c.monitor.in_(names))
        )
        recent_day = (r.hour // 24).label("day")
        recent = (
            select(monitor_state.c.monitor, recent_day, func.sum(r.checks), func.sum(r.ups))
            .select_from(check_rollup.join(monitor_state, monitor_state.c.id == r.monitor_id))
            .where(r.hour >= max(settled, first_day) * 24, monitor_state.c.monitor.in_(names))
            .group_by(monitor_state.c.monitor, recent_day)
        )
        out: dict[str, dict[int, tuple[int, int]]] = {}
        with self.engine.connect() as conn:
            for query in (finished, recent):
                for name, day_, checks, ups in conn.execute(query):
                    out.setdefault(name, {})[int(day_)] = (int(checks), int(ups))
        return out

    def hourly_counts(self, hours: list[int], names: list[str]) -> dict[str, dict[int, tuple[int, int]]]:
        """monitor -> {epoch hour: (checks, ups)} for just these hours (maintenance hours, to take out)."""
        if not hours or not names:
            return {}
        c = check_rollup.c
        query = (
            select(monitor_state.c.monitor, c.hour, c.checks, c.ups)
            .select_from(check_rollup.join(monitor_state, monitor_state.c.id == c.monitor_id))
            .where(c.hour.in_(hours), monitor_state.c.monitor.in_(names))
        )
        out: dict[str, dict[int, tuple[int, int]]] = {}
        with self.engine.connect() as conn:
            for name, hour, checks, ups in conn.execute(query):
                out.setdefault(name, {})[hour] = (checks, ups)
        return out

    def hourly_latency(self, first_hour: int, names: list[str]) -> dict[str, dict[int, float | None]]:
        """monitor -> {epoch hour: median latency in ms} from ``first_hour`` on (hourly histograms)."""
        c = check_rollup.c
        query = (
            select(monitor_state.c.monitor, c.hour, c.latency_hist)
            .select_from(check_rollup.join(monitor_state, monitor_state.c.id == c.monitor_id))
            .where(c.hour >= first_hour, monitor_state.c.monitor.in_(names))
        )
        out: dict[str, dict[int, float | None]] = {}
        with self.engine.connect() as conn:
            for name, hour, hist in conn.execute(query):
                out.setdefault(name, {})[hour] = latency.median(hist)
        return out

    def incidents(self, since: datetime, names: list[str]) -> list[dict]:
        """Incidents of these monitors still open or ended after ``since``, newest first:
        {monitor, started, ended, error (ErrorKind value), status (HTTP)}."""
        c = incident.c
        query = (
            select(monitor_state.c.monitor, c.started, c.ended, c.error, c.status)
            .select_from(incident.join(monitor_state, monitor_state.c.id == c.monitor_id))
            .where(c.ended.is_(None) | (c.ended >= since), monitor_state.c.monitor.in_(names))
            .order_by(c.started.desc(), c.id.desc())
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def history(self, monitor: str, limit: int) -> list[dict]:
        query = (
            select(check_history.c.ts, check_history.c.ok, check_history.c.status, check_history.c.latency_ms,
                   check_history.c.error)
            .select_from(check_history.join(monitor_state, monitor_state.c.id == check_history.c.monitor_id))
            .where(monitor_state.c.monitor == monitor)
            .order_by(check_history.c.ts.desc(), check_history.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                {"checked_at": datetime.fromtimestamp(r.ts, timezone.utc), "ok": bool(r.ok), "status_code": r.status,
                 "latency_ms": r.latency_ms, "error": r.error}
                for r in conn.execute(query)
            ]

    def outbox_rows(self, pending_only: bool = False) -> list[OutboxRow]:
        query = select(outbox).order_by(outbox.c.id)
        if pending_only:
            query = query.where(outbox.c.delivered_at.is_(None))
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    # -- outbox delivery bookkeeping
    def live_outbox(self) -> list[OutboxRow]:
        """Rows still to deliver (not delivered, superseded or given up), oldest first."""
        query = select(outbox).where(_LIVE).order_by(outbox.c.id)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def undeliverable(self) -> list[OutboxRow]:
        query = select(outbox).where(outbox.c.gave_up_at.is_not(None)).order_by(outbox.c.id)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query)]

    def supersede_stale(self, now: datetime) -> list[OutboxRow]:
        """Mark every live DOWN/REMINDER/FLAPPING row that a later RESOLVED of the same monitor on
        the same channel has made stale (it would arrive after, or without, the news that the
        service is back); return them."""
        later = outbox.alias("later")
        stale = (
            select(outbox.c.id)
            .where(_LIVE, outbox.c.kind.in_(("DOWN", "REMINDER", "FLAPPING")), outbox.c.monitor.is_not(None))
            .where(
                select(later.c.id)
                .where(later.c.monitor == outbox.c.monitor, later.c.channel == outbox.c.channel,
                       later.c.kind == "RESOLVED", later.c.id > outbox.c.id, later.c.superseded_at.is_(None))
                .exists()
            )
        )
        with self.engine.begin() as conn:
            ids = conn.execute(stale).scalars().all()
            if not ids:
                return []
            conn.execute(
                outbox.update().where(outbox.c.id.in_(ids), outbox.c.claimed_until.is_(None) | (outbox.c.claimed_until < now))
                .values(superseded_at=now, last_error="superseded: the service was back UP before this was delivered")
            )
            rows = conn.execute(select(outbox).where(outbox.c.id.in_(ids), outbox.c.superseded_at.is_not(None)))
            return [_row(r) for r in rows]

    def claim(self, row_id: int, now: datetime, lease: timedelta) -> OutboxRow | None:
        """Take one live row for delivery (attempts + 1) unless another worker holds it or it is
        backing off; the claim expires after ``lease`` so a crashed worker's row is retried."""
        with self.engine.begin() as conn:
            done = conn.execute(
                outbox.update()
                .where(outbox.c.id == row_id, _LIVE)
                .where(outbox.c.claimed_until.is_(None) | (outbox.c.claimed_until < now))
                .where(outbox.c.next_attempt_at.is_(None) | (outbox.c.next_attempt_at <= now))
                .values(claimed_until=now + lease, attempts=outbox.c.attempts + 1)
            ).rowcount
            if not done:
                return None
            return _row(conn.execute(select(outbox).where(outbox.c.id == row_id)).one())

    def mark(self, row_id: int, now: datetime, ok: bool, error: str | None,
             next_attempt_at: datetime | None = None, give_up: bool = False) -> None:
        with self.engine.begin() as conn:
            values: dict = {"claimed_until": None, "last_error": error, "next_attempt_at": next_attempt_at}
            if ok:
                values["delivered_at"] = now
            elif give_up:
                values["gave_up_at"] = now
            conn.execute(outbox.update().where(outbox.c.id == row_id).values(**values))

    def silence(self, monitor: str, until: datetime | None, reason: str | None, now: datetime) -> MonitorState:
        with self.begin() as tx:
            state = tx.states([monitor])[monitor]
            state = replace(state, silenced_until=until, silence_reason=reason if until else None)
            tx.save_state(state, now)
            return state

    def prune(self, now: datetime, retention: timedelta, rollup_retention: timedelta = timedelta(days=400)) -> int:
        """Delete raw history and delivered outbox rows older than ``retention``, and hourly rollups
        older than ``rollup_retention``; at most once an hour. Returns the raw rows removed."""
        cutoff = now - retention
        with self.begin() as tx:
            last = tx.get_meta("last_prune")
            if last is not None and now.timestamp() - float(last) < 3600:
                return 0
            tx.set_meta("last_prune", str(now.timestamp()))
            ids = tx.conn.execute(select(monitor_state.c.id)).scalars().all()
            removed = 0
            for ident in ids:  # per monitor, so the (monitor_id, ts) index does the work
                removed += tx.conn.execute(
                    check_history.delete().where(check_history.c.monitor_id == ident, check_history.c.ts < int(cutoff.timestamp()))
                ).rowcount
            tx.conn.execute(outbox.delete().where(outbox.c.delivered_at < cutoff))
            oldest_hour = int((now - rollup_retention).timestamp()) // 3600
            tx.conn.execute(check_rollup.delete().where(check_rollup.c.hour < oldest_hour))
            tx.conn.execute(incident.delete().where(incident.c.ended < now - rollup_retention))
            tx.conn.execute(check_daily.delete().where(check_daily.c.day < oldest_hour // 24))
            return removed


def _revisions(conn: Connection) -> list[str]:
    """The Alembic revision(s) the store is at; [] when Alembic has never migrated it."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return []
    return list(conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def _legacy_version(conn: Connection) -> int | None:
    """The hand-made ``schema_version`` of a store from before Alembic; None when there is none."""
    if not inspect(conn).has_table(schema_version.name):
        return None
    return conn.execute(select(func.max(schema_version.c.version))).scalar()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=FULL")
    cur.close()


def _sqlite_begin_immediate(conn) -> None:
    """Take the write lock at the start of a transaction, so two overlapping runs never both read
    a monitor's state and then overwrite each other (the busy timeout makes the second one wait)."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")
