"""discord front: job delivery bookkeeping, /prefer options and suffix

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("prefer_options", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("prefer_suffix", sa.String(length=500), server_default="", nullable=False)
        )

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("delivery_error", sa.String(length=300), nullable=True))
        batch_op.add_column(
            sa.Column("delivery_error_reported", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index("ix_jobs_delivery", ["delivered_at", "status"], unique=False)

    # Jobs that ended before this revision were never meant for Discord delivery.
    op.execute(
        sa.text(
            "UPDATE jobs SET delivered_at = finished_at "
            "WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at IS NOT NULL"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_delivery")
        batch_op.drop_column("delivery_error_reported")
        batch_op.drop_column("delivery_error")
        batch_op.drop_column("delivered_at")

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("prefer_suffix")
        batch_op.drop_column("prefer_options")
