"""Baseline: the schema as alerting versioned it by hand at ``schema_version`` 1 (before Alembic).

A store made then is stamped with this revision, not re-created. Epoch columns are FLOATs (epoch seconds).
"""

import sqlalchemy as sa
from alembic import op

revision = "v1_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    versions = op.create_table("schema_version", sa.Column("version", sa.Integer, primary_key=True))
    op.create_table("meta", sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))
    op.create_table(
        "monitor_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("monitor", sa.String(200), nullable=False, unique=True),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("since", sa.Float),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("consecutive_successes", sa.Integer, nullable=False),
        sa.Column("notified_down", sa.Boolean, nullable=False),
        sa.Column("last_alert_at", sa.Float),
        sa.Column("episode_start", sa.Float),
        sa.Column("episode_end", sa.Float),
        sa.Column("first_error", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("silenced_until", sa.Float),
        sa.Column("silence_reason", sa.Text),
        sa.Column("changes", sa.Text, nullable=False),
        sa.Column("flapping", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.Float),
    )
    op.create_table(
        "check_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("monitor_id", sa.Integer, nullable=False),
        sa.Column("ts", sa.Integer, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("status", sa.SmallInteger),
        sa.Column("latency_ms", sa.Integer),
        sa.Column("error", sa.String(24)),
    )
    op.create_index("ix_history_monitor_ts", "check_history", ["monitor_id", "ts"])
    op.create_table(
        "check_rollup",
        sa.Column("monitor_id", sa.Integer, primary_key=True),
        sa.Column("hour", sa.Integer, primary_key=True),
        sa.Column("checks", sa.Integer, nullable=False),
        sa.Column("ups", sa.Integer, nullable=False),
        sa.Column("latency_hist", sa.Text),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(40), nullable=False),
        sa.Column("dedup_key", sa.String(300), nullable=False, unique=True),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("monitor", sa.String(200)),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("markdown", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("delivered_at", sa.Float),
        sa.Column("last_error", sa.Text),
        sa.Column("claimed_until", sa.Float),
        sa.Column("fallback_for", sa.String(200)),
    )
    op.create_index("ix_outbox_pending", "outbox", ["delivered_at"])
    op.bulk_insert(versions, [{"version": 1}])


def downgrade() -> None:
    for table in ("outbox", "check_rollup", "check_history", "monitor_state", "meta", "schema_version"):
        op.drop_table(table)
