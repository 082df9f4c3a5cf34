"""The state store's schema: tables, the epoch column type and the outbox row types.

Kept apart from ``alerting.store`` (the operations) so each stays small. These tables are what the
code reads and writes; the database gets them from the Alembic revisions in ``alerting/migrations/``.
To change the schema: change the tables here, add a revision there (its own frozen DDL) and set
``SCHEMA_REVISION`` to it; tests/test_store_migrations.py checks that a store made by the revisions
matches these tables exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
)

# The head of alerting/migrations/versions, known without Alembic: opening a store that is already
# at head reads one row and never imports Alembic (~0.1 s) or scans the revisions (a test checks it
# is the head).
SCHEMA_REVISION = "v5_check_batches"
VERSION_TABLE = "alerting_alembic_version"  # not "alembic_version": state_url may share a database with Prefect
# Before Alembic the schema was versioned by hand in ``schema_version``; a store made then is stamped
# with the matching revision, then upgraded. Revisions keep adding their number to ``schema_version``,
# so an alerting from before Alembic refuses a store newer than it ("schema version N, newer ...").
LEGACY_REVISIONS = {1: "v1_baseline", 2: "v2_outbox_bookkeeping", 3: "v3_incidents", 4: "v4_degraded_state",
                    5: "v5_check_batches"}


class Epoch(TypeDecorator):
    """A timezone-aware UTC datetime stored as float epoch seconds (portable, compact, sortable)."""

    impl = Float
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else value.timestamp()

    def process_result_value(self, value, dialect):
        return None if value is None else datetime.fromtimestamp(value, timezone.utc)


metadata = MetaData()
schema_version = Table("schema_version", metadata, Column("version", Integer, primary_key=True))  # see LEGACY_REVISIONS
meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text))
monitor_state = Table(
    "monitor_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor", String(200), nullable=False, unique=True),
    Column("status", String(8), nullable=False, default="UNKNOWN"),
    Column("since", Epoch),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("consecutive_successes", Integer, nullable=False, default=0),
    Column("notified_down", Boolean, nullable=False, default=False),
    Column("last_alert_at", Epoch),
    Column("episode_start", Epoch),
    Column("episode_end", Epoch),
    Column("first_error", Text),
    Column("last_error", Text),
    Column("silenced_until", Epoch),
    Column("silence_reason", Text),
    Column("changes", Text, nullable=False, default="[]"),  # JSON list of epoch seconds
    Column("flapping", Boolean, nullable=False, default=False),
    Column("updated_at", Epoch),
    # v3: the warning level (DEGRADED); nullable, so rows from v2 read as not degraded
    Column("degraded", Boolean),
    Column("notified_degraded", Boolean),
    Column("consecutive_warnings", Integer),
    Column("degraded_since", Epoch),
    Column("warning_kind", String(24)),
    Column("warning_text", Text),
)
check_history = Table(
    "check_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, nullable=False),
    Column("ts", Integer, nullable=False),  # epoch seconds
    Column("ok", Boolean, nullable=False),
    Column("status", SmallInteger),  # HTTP status
    Column("latency_ms", Integer),
    Column("error", String(24)),  # ErrorKind value
    Index("ix_history_monitor_ts", "monitor_id", "ts"),
)
check_rollup = Table(  # one row per monitor and hour: uptime over days and months stays cheap
    "check_rollup",
    metadata,
    Column("monitor_id", Integer, primary_key=True),
    Column("hour", Integer, primary_key=True),  # epoch seconds // 3600
    Column("checks", Integer, nullable=False),
    Column("ups", Integer, nullable=False),
    Column("latency_hist", Text),  # alerting.latency buckets: "index:count,..."
)
check_daily = Table(  # per monitor and finished UTC day: made from check_rollup by the status page, once a day
    "check_daily",
    metadata,
    Column("monitor_id", Integer, primary_key=True),
    Column("day", Integer, primary_key=True),  # epoch seconds // 86400
    Column("checks", Integer, nullable=False),
    Column("ups", Integer, nullable=False),
)
incident = Table(  # one row per DOWN episode: the status page's incident list (error kind only, no text)
    "incident",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, nullable=False),
    Column("started", Epoch, nullable=False),  # the first failing check of the episode
    Column("ended", Epoch),  # the first passing check after it; NULL while still down
    Column("error", String(24)),  # ErrorKind value of the check that confirmed it
    Column("status", SmallInteger),  # its HTTP status, if any
    Index("ix_incident_monitor_started", "monitor_id", "started"),
    Index("ix_incident_ended", "ended"),
)
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(40), nullable=False),
    Column("dedup_key", String(300), nullable=False, unique=True),  # alert_id:channel
    Column("channel", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("monitor", String(200)),
    Column("title", Text, nullable=False),
    Column("markdown", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Epoch, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("delivered_at", Epoch),
    Column("last_error", Text),
    Column("claimed_until", Epoch),
    Column("fallback_for", String(200)),  # set on a copy sent to the fallback channel
    Column("next_attempt_at", Epoch),  # after a failed attempt: not before this (backoff across runs)
    Column("gave_up_at", Epoch),  # undeliverable: every attempt failed
    Column("superseded_at", Epoch),  # a DOWN/REMINDER made stale by a later RESOLVED: never sent
    Index("ix_outbox_pending", "delivered_at"),
)

check_batch = Table(  # the distributed mode's batches: which monitors a location checks, and its answer
    "check_batch",
    metadata,
    Column("id", String(32), primary_key=True),  # the batch id, also in its Prefect task run's name
    Column("location", String(200), nullable=False),
    Column("names", Text, nullable=False),  # JSON list of monitor names (never specs: workers read the config)
    Column("expires", Float, nullable=False),  # epoch seconds: a worker that gets it later checks nothing
    Column("created", Float, nullable=False),  # epoch seconds
    Column("results", Text),  # JSON list of CheckResult dicts, written by the worker that checked it
    Index("ix_check_batch_created", "created"),
)


@dataclass(frozen=True)
class NewAlert:
    """An outbox row to write (ids and bookkeeping are the store's)."""

    alert_id: str
    channel: str
    kind: str
    monitor: str | None
    title: str
    markdown: str
    body: str
    created_at: datetime
    fallback_for: str | None = None  # set on a copy sent to the fallback channel

    @property
    def dedup_key(self) -> str:
        return f"{self.alert_id}:{self.channel}"


@dataclass(frozen=True)
class OutboxRow(NewAlert):
    """An outbox row as stored, with its delivery bookkeeping."""

    id: int = 0
    attempts: int = 0
    delivered_at: datetime | None = None
    last_error: str | None = None
    claimed_until: datetime | None = None
    next_attempt_at: datetime | None = None
    gave_up_at: datetime | None = None
    superseded_at: datetime | None = None

    @property
    def short_id(self) -> str:
        return short_alert_id(self.alert_id)

    @property
    def status(self) -> str:
        if self.delivered_at is not None:
            return "delivered"
        if self.superseded_at is not None:
            return "superseded"
        if self.gave_up_at is not None:
            return "undeliverable"
        return "pending"


def short_alert_id(alert_id: str) -> str:
    """The id people see in alert texts ("Alert ID: 3f2a9c1e"): stable across retries and channels."""
    return alert_id[:8]
