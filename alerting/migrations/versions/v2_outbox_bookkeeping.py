"""Outbox delivery bookkeeping (``schema_version`` 2): backoff across runs, undeliverable, superseded."""

import sqlalchemy as sa
from alembic import op

revision = "v2_outbox_bookkeeping"
down_revision = "v1_baseline"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("next_attempt_at", sa.Float))  # after a failed attempt: not before this
    op.add_column("outbox", sa.Column("gave_up_at", sa.Float))  # undeliverable: every attempt failed
    op.add_column("outbox", sa.Column("superseded_at", sa.Float))  # made stale by a later RESOLVED: never sent
    # an alerting from before Alembic reads this table: a store newer than it must say so
    op.execute(sa.text("INSERT INTO schema_version (version) VALUES (2)"))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM schema_version WHERE version = 2"))
    for column in ("superseded_at", "gave_up_at", "next_attempt_at"):
        op.drop_column("outbox", column)
