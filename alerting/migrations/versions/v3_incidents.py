"""The status page's tables (``schema_version`` 3): incidents (one row per DOWN episode) and daily
totals of the hourly rollup (filled by the page for finished days, so 90 days read 90 rows)."""

import sqlalchemy as sa
from alembic import op

revision = "v3_incidents"
down_revision = "v2_outbox_bookkeeping"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("monitor_id", sa.Integer, nullable=False),
        sa.Column("started", sa.Float, nullable=False),  # epoch seconds: the first failing check
        sa.Column("ended", sa.Float),  # the first passing check after it; NULL while down
        sa.Column("error", sa.String(24)),  # ErrorKind value (never an error text)
        sa.Column("status", sa.SmallInteger),  # HTTP status, if any
    )
    op.create_index("ix_incident_monitor_started", "incident", ["monitor_id", "started"])
    op.create_index("ix_incident_ended", "incident", ["ended"])
    op.create_table(
        "check_daily",
        sa.Column("monitor_id", sa.Integer, primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True),  # epoch seconds // 86400
        sa.Column("checks", sa.Integer, nullable=False),
        sa.Column("ups", sa.Integer, nullable=False),
    )
    op.execute(sa.text("INSERT INTO schema_version (version) VALUES (3)"))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM schema_version WHERE version = 3"))
    op.drop_index("ix_incident_ended", "incident")
    op.drop_index("ix_incident_monitor_started", "incident")
    op.drop_table("incident")
    op.drop_table("check_daily")
