"""The distributed mode's batches (``schema_version`` 5): the scheduler writes which monitors a
location's task worker checks, the worker writes the results back, the scheduler reads and deletes the
row. Prefect's task run carries only the batch id (in its name)."""

import sqlalchemy as sa
from alembic import op

revision = "v5_check_batches"
down_revision = "v4_degraded_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_batch",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("names", sa.Text, nullable=False),  # JSON list of monitor names
        sa.Column("expires", sa.Float, nullable=False),  # epoch seconds
        sa.Column("created", sa.Float, nullable=False),  # epoch seconds
        sa.Column("results", sa.Text),  # JSON list of check results, set by the worker
    )
    op.create_index("ix_check_batch_created", "check_batch", ["created"])
    op.execute(sa.text("INSERT INTO schema_version (version) VALUES (5)"))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM schema_version WHERE version = 5"))
    op.drop_index("ix_check_batch_created", "check_batch")
    op.drop_table("check_batch")
