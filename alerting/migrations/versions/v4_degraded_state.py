"""The warning level of a monitor (``schema_version`` 4): DEGRADED (slow, certificate expiring) beside
UP, its counter, since when, what it said and whether people were told. Nullable: rows from before
read as not degraded."""

import sqlalchemy as sa
from alembic import op

revision = "v4_degraded_state"
down_revision = "v3_incidents"
branch_labels = None
depends_on = None

COLUMNS = (
    ("degraded", sa.Boolean),
    ("notified_degraded", sa.Boolean),
    ("consecutive_warnings", sa.Integer),
    ("degraded_since", sa.Float),
    ("warning_kind", sa.String(24)),
    ("warning_text", sa.Text),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("monitor_state", sa.Column(name, kind))
    op.execute(sa.text("INSERT INTO schema_version (version) VALUES (4)"))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM schema_version WHERE version = 4"))
    for name, _ in reversed(COLUMNS):
        op.drop_column("monitor_state", name)
