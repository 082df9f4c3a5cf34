"""The state store's schema migrations (Alembic), run from code: no alembic.ini, no engine of their own.

``upgrade(conn)`` brings the database behind ``conn`` to the head revision inside the caller's
transaction (``Store._migrate`` holds it, with PostgreSQL's advisory lock or SQLite's write lock);
``env.py`` only hands that connection to Alembic. The revisions in ``versions/``:

    v1_baseline             the schema as ``schema_version`` 1 had it (before Alembic)
    v2_outbox_bookkeeping   outbox.next_attempt_at, gave_up_at, superseded_at (``schema_version`` 2)
    v3_incidents            the incident table: one row per DOWN episode (``schema_version`` 3)
    v4_degraded_state       monitor_state's warning level: degraded, notified_degraded, ... (``schema_version`` 4)

A new revision: a file in ``versions/`` whose ``down_revision`` is the current head, DDL written out
with ``op`` (never the live tables of ``alerting.store_schema``: a revision must stay what it was),
adding its number to ``schema_version`` like v2 does; then set ``SCHEMA_REVISION`` in store_schema.py.

Importing this module imports Alembic (~0.1 s): ``alerting.store`` does it only when the stored
revision is not the head.
"""

from __future__ import annotations

import threading

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

SCRIPT_LOCATION = "alerting:migrations"  # this package, wherever it is installed
# Alembic's ``context`` and ``op`` are process-wide proxies: two threads migrating at once (two
# stores, or one store opened twice) would run each other's steps. Processes are kept apart by
# the caller's database lock.
_ONE_AT_A_TIME = threading.Lock()


def config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = conn
    return cfg


def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def heads() -> tuple[str, ...]:
    return tuple(script().get_heads())


def unknown(revisions: list[str]) -> list[str]:
    """Those of ``revisions`` that are not ours, compared exactly (Alembic's own lookup also takes
    prefixes): a store at one was made by a newer alerting."""
    ours = {s.revision for s in script().walk_revisions()}
    return [r for r in revisions if r not in ours]


def upgrade(conn: Connection, stamp: str | None = None) -> None:
    """Upgrade to head on ``conn`` (in its transaction); first record ``stamp`` as the current revision
    when the schema is there but Alembic has never seen it (a store versioned by hand before)."""
    cfg = config(conn)
    with _ONE_AT_A_TIME:
        if stamp is not None:
            command.stamp(cfg, stamp)
        command.upgrade(cfg, "head")
