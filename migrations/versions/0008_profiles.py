"""profiles: the creator's Discord name and avatar on `users`, for the web gallery

The bot records them as it sees each interaction (the web app holds no Discord token); all three
columns are nullable, so every existing user simply has no profile until their next interaction.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("avatar_url", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("profile_updated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("profile_updated_at")
        batch_op.drop_column("avatar_url")
        batch_op.drop_column("display_name")
