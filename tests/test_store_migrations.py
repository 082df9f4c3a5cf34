"""Schema migrations of the state store (Alembic, alerting/migrations/), on real SQLite files and a real
PostgreSQL server: a new store is made at head; a store from before Alembic (``schema_version`` 1 or
2, made here with the DDL of those versions) is adopted, upgraded and keeps its rows; a store from a
newer alerting is refused; a store already at head opens without Alembic."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
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
    create_engine,
    text,
)

from alerting import migrations
from alerting.store import (
    LEGACY_REVISIONS,
    SCHEMA_REVISION,
    VERSION_TABLE,
    NewAlert,
    Store,
    StoreError,
    metadata,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
OUTBOX_V2_COLUMNS = {"next_attempt_at", "gave_up_at", "superseded_at"}
LATER_TABLES = {"incident", "check_daily", "check_batch"}  # tables added after schema_version 2 (v3_incidents, v5_check_batches)
LATER_STATE_COLUMNS = {"degraded", "notified_degraded", "consecutive_warnings", "degraded_since", "warning_kind",
                       "warning_text"}  # monitor_state columns added by v4_degraded_state
NEWER = max(LEGACY_REVISIONS) + 1  # a schema_version this alerting does not know


def legacy_metadata(version: int) -> MetaData:
    """The tables as alerting made them with ``metadata.create_all`` before Alembic (copied from
    alerting/store_schema.py at commit 574af35 for version 1; version 2 added three outbox columns).
    Epoch columns are FLOATs, as the Epoch type stores them."""
    md = MetaData()
    Table("schema_version", md, Column("version", Integer, primary_key=True))
    Table("meta", md, Column("key", String(64), primary_key=True), Column("value", Text))
    Table(
        "monitor_state", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("monitor", String(200), nullable=False, unique=True),
        Column("status", String(8), nullable=False, default="UNKNOWN"),
        Column("since", Float),
        Column("consecutive_failures", Integer, nullable=False, default=0),
        Column("consecutive_successes", Integer, nullable=False, default=0),
        Column("notified_down", Boolean, nullable=False, default=False),
        Column("last_alert_at", Float),
        Column("episode_start", Float),
        Column("episode_end", Float),
        Column("first_error", Text),
        Column("last_error", Text),
        Column("silenced_until", Float),
        Column("silence_reason", Text),
        Column("changes", Text, nullable=False, default="[]"),
        Column("flapping", Boolean, nullable=False, default=False),
        Column("updated_at", Float),
    )
    Table(
        "check_history", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("monitor_id", Integer, nullable=False),
        Column("ts", Integer, nullable=False),
        Column("ok", Boolean, nullable=False),
        Column("status", SmallInteger),
        Column("latency_ms", Integer),
        Column("error", String(24)),
        Index("ix_history_monitor_ts", "monitor_id", "ts"),
    )
    Table(
        "check_rollup", md,
        Column("monitor_id", Integer, primary_key=True),
        Column("hour", Integer, primary_key=True),
        Column("checks", Integer, nullable=False),
        Column("ups", Integer, nullable=False),
        Column("latency_hist", Text),
    )
    Table(
        "outbox", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("alert_id", String(40), nullable=False),
        Column("dedup_key", String(300), nullable=False, unique=True),
        Column("channel", String(200), nullable=False),
        Column("kind", String(16), nullable=False),
        Column("monitor", String(200)),
        Column("title", Text, nullable=False),
        Column("markdown", Text, nullable=False),
        Column("body", Text, nullable=False),
        Column("created_at", Float, nullable=False),
        Column("attempts", Integer, nullable=False, default=0),
        Column("delivered_at", Float),
        Column("last_error", Text),
        Column("claimed_until", Float),
        Column("fallback_for", String(200)),
        *([Column(name, Float) for name in sorted(OUTBOX_V2_COLUMNS)] if version >= 2 else []),
        Index("ix_outbox_pending", "delivered_at"),
    )
    return md


def make_legacy_store(url: str, version: int) -> None:
    """A store as alerting at ``schema_version`` ``version`` left it: its tables, its version row, one
    monitor (DOWN, told), one pending DOWN in the outbox and, at version 2, one undeliverable alert."""
    md = legacy_metadata(version)
    engine = create_engine(url)
    with engine.begin() as conn:
        md.create_all(conn)
        conn.execute(md.tables["schema_version"].insert().values(version=version))
        conn.execute(md.tables["monitor_state"].insert().values(
            monitor="api", status="DOWN", since=T0.timestamp(), consecutive_failures=3, consecutive_successes=0,
            notified_down=True, changes="[]", flapping=False, updated_at=T0.timestamp()))
        row = {"alert_id": "3f2a9c1e" + "0" * 24, "channel": "ops", "kind": "DOWN", "monitor": "api",
               "title": "DOWN: api", "markdown": "**DOWN**", "body": "DOWN", "created_at": T0.timestamp(), "attempts": 0}
        conn.execute(md.tables["outbox"].insert().values(dedup_key=f"{row['alert_id']}:ops", **row))
        if version >= 2:
            conn.execute(md.tables["outbox"].insert().values(
                **{**row, "alert_id": "9" * 32, "kind": "REMINDER", "attempts": 5},
                dedup_key=f"{'9' * 32}:ops", gave_up_at=T0.timestamp(), last_error="HTTP 500"))
    engine.dispose()


def schema_problems(url: str) -> list:
    """What differs between the database and the tables the code uses (Alembic's autogenerate
    comparison: tables, columns, types, nullability, indexes, unique constraints)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}), metadata)
    finally:
        engine.dispose()


def stored(url: str, query: str) -> list[tuple]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query))]
    finally:
        engine.dispose()


def assert_upgraded_and_working(url: str, legacy: list[int]) -> None:
    """At head, the tables exactly what the code uses, the version-1 rows intact and usable: the
    pending DOWN is delivered through the new bookkeeping; a new alert can be queued."""
    assert stored(url, f"SELECT version_num FROM {VERSION_TABLE}") == [(SCHEMA_REVISION,)]
    assert stored(url, "SELECT version FROM schema_version ORDER BY version") == [(v,) for v in legacy]
    assert schema_problems(url) == []
    with Store(url) as store:
        (state,) = store.states().values()
        assert (state.monitor, state.status.value, state.notified_down, state.since) == ("api", "DOWN", True, T0)
        (pending,) = store.live_outbox()
        assert (pending.title, pending.status, pending.attempts, pending.created_at) == ("DOWN: api", "pending", 0, T0)
        claimed = store.claim(pending.id, T0 + timedelta(minutes=1), timedelta(minutes=1))
        assert claimed is not None and claimed.attempts == 1
        store.mark(pending.id, T0 + timedelta(minutes=1), ok=False, error="HTTP 500",
                   next_attempt_at=T0 + timedelta(minutes=2))
        assert store.claim(pending.id, T0 + timedelta(minutes=1, seconds=30), timedelta(minutes=1)) is None  # backing off
        store.mark(pending.id, T0 + timedelta(minutes=3), ok=True, error=None)
        with store.begin() as tx:
            assert tx.enqueue([NewAlert("a" * 32, "ops", "RESOLVED", "api", "RESOLVED: api", "ok", "ok", T0)]) == 1
        assert [r.status for r in store.outbox_rows() if r.monitor == "api" and r.kind != "REMINDER"] == ["delivered", "pending"]


def test_the_code_knows_the_head_revision_and_the_hand_made_versions():
    """SCHEMA_REVISION (what a store at head is compared with, without Alembic) is the one head; every
    version from before Alembic maps to a revision, in order."""
    assert migrations.heads() == (SCHEMA_REVISION,)
    revisions = [r.revision for r in reversed(list(migrations.script().walk_revisions()))]
    assert revisions == [LEGACY_REVISIONS[v] for v in sorted(LEGACY_REVISIONS)]  # one line, no branches


def test_a_new_sqlite_store_is_made_at_head_with_the_tables_the_code_uses(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    Store(url).close()
    assert stored(url, f"SELECT version_num FROM {VERSION_TABLE}") == [(SCHEMA_REVISION,)]
    assert schema_problems(url) == []
    # an alerting from before Alembic reads max(schema_version) and must see a store it understands
    assert stored(url, "SELECT max(version) FROM schema_version") == [(max(LEGACY_REVISIONS),)]
    assert stored(url, "PRAGMA journal_mode") == [("wal",)]
    Store(url).close()  # again: nothing to do
    assert stored(url, "SELECT version FROM schema_version ORDER BY version") == [(v,) for v in sorted(LEGACY_REVISIONS)]


def test_opening_a_store_at_head_reads_its_revision_without_importing_alembic(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    Store(url).close()
    code = (
        "import sys; from alerting.store import Store; "
        f"Store({url!r}).close(); print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_version_1_sqlite_store_is_upgraded_and_keeps_its_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    make_legacy_store(url, 1)
    # the old DDL: what differs from today's tables is the three outbox columns, the monitor_state
    # columns and the tables added since (and nothing else)
    assert sorted((d[0], d[2], d[3].name) for d in schema_problems(url) if d[0] == "add_column") == sorted(
        [("add_column", "outbox", name) for name in OUTBOX_V2_COLUMNS]
        + [("add_column", "monitor_state", name) for name in LATER_STATE_COLUMNS])
    assert sorted(d[1].name for d in schema_problems(url) if d[0] == "add_table") == sorted(LATER_TABLES)
    assert {d[1].table.name for d in schema_problems(url) if d[0] == "add_index"} <= LATER_TABLES  # their indexes
    assert {d[0] for d in schema_problems(url)} == {"add_column", "add_table", "add_index"}
    Store(url).close()
    assert_upgraded_and_working(url, legacy=sorted(LEGACY_REVISIONS))


def test_a_version_2_sqlite_store_is_stamped_and_works(tmp_path):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    make_legacy_store(url, 2)
    Store(url).close()
    assert_upgraded_and_working(url, legacy=[v for v in sorted(LEGACY_REVISIONS) if v >= 2])
    with Store(url) as store:
        (gave_up,) = store.undeliverable()
        assert (gave_up.kind, gave_up.attempts, gave_up.gave_up_at, gave_up.last_error) == ("REMINDER", 5, T0, "HTTP 500")


@pytest.mark.parametrize("newer", ["v9_from_the_future", "v2", "schema_version newer"])  # "v2": a prefix of ours is not ours
def test_a_store_from_a_newer_alerting_is_refused(tmp_path, newer):
    url = f"sqlite:///{tmp_path / 'state.db'}"
    if newer.startswith("v"):
        Store(url).close()
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = :rev"), {"rev": newer})
        engine.dispose()
        expected = f"has schema revision {newer}, newer than this alerting \\({SCHEMA_REVISION}\\); upgrade alerting"
    else:
        make_legacy_store(url, 2)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f"INSERT INTO schema_version (version) VALUES ({NEWER})"))
        engine.dispose()
        expected = f"has schema version {NEWER}, newer than this alerting \\({max(LEGACY_REVISIONS)}\\); upgrade alerting"
    with pytest.raises(StoreError, match=expected):
        Store(url)
    if not newer.startswith("v"):  # refused before anything was written
        assert stored(url, f"SELECT name FROM sqlite_master WHERE name = '{VERSION_TABLE}'") == []


def _new_database(postgres, name: str) -> str:
    admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return postgres.url.rsplit("/", 1)[0] + "/" + name


def test_postgres_new_store_at_head_and_version_1_store_upgraded_by_workers_starting_together(postgres):
    """On PostgreSQL: a new store matches the tables; a version-1 store opened by four workers at
    once is upgraded once (the advisory lock), keeps its rows and works."""
    fresh = _new_database(postgres, "migrations_fresh")
    Store(fresh).close()
    assert stored(fresh, f"SELECT version_num FROM {VERSION_TABLE}") == [(SCHEMA_REVISION,)]
    assert schema_problems(fresh) == []

    url = _new_database(postgres, "migrations_v1")
    make_legacy_store(url, 1)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_store() -> None:
        try:
            barrier.wait()
            Store(url).close()
        except BaseException as exc:  # noqa: BLE001 - every failure is reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert_upgraded_and_working(url, legacy=sorted(LEGACY_REVISIONS))  # schema_version 2 written once: upgraded once
