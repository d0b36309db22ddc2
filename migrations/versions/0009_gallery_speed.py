"""gallery speed: jobs.private and jobs.likes as columns, partial indexes for the two gallery sorts

Before, the galleries read privacy from `spec` JSON and from every image's `public` flag (a scan
of all images per page), and counted ❤ per job at read time (100,000 counts to sort the top
gallery of 100,000 results). Now `jobs.private` and `jobs.likes` are kept where they change, and
`ix_jobs_gallery_new` / `ix_jobs_gallery_top` hold only the rows the galleries may show.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As `db.models.GALLERY_ROWS` was when this migration was written.
GALLERY_ROWS = (
    "status = 'succeeded' AND removed_at IS NULL AND guild_id IS NOT NULL "
    "AND channel_public AND NOT age_restricted AND NOT private"
)


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("private", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("likes", sa.Integer(), server_default="0", nullable=False))

    private_in_spec = (
        "(spec ->> 'private') = 'true'"
        if op.get_bind().dialect.name == "postgresql"
        else "json_extract(spec, '$.private') = 1"
    )
    op.execute(
        sa.text(
            f"UPDATE jobs SET private = true WHERE {private_in_spec} "
            "OR EXISTS (SELECT 1 FROM images WHERE images.job_id = jobs.id AND images.public = false)"
        )
    )
    op.execute(
        sa.text(
            "UPDATE jobs SET likes = (SELECT count(DISTINCT favorites.user_id) FROM favorites "
            "WHERE favorites.job_id = jobs.id) "
            "WHERE EXISTS (SELECT 1 FROM favorites WHERE favorites.job_id = jobs.id)"
        )
    )

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        for name, columns in (
            ("ix_jobs_gallery_new", ["finished_at", "id"]),
            ("ix_jobs_gallery_top", ["likes", "id"]),
        ):
            batch_op.create_index(
                name,
                columns,
                unique=False,
                postgresql_where=sa.text(GALLERY_ROWS),
                sqlite_where=sa.text(GALLERY_ROWS),
            )

    with op.batch_alter_table("favorites", schema=None) as batch_op:
        batch_op.create_index("ix_favorites_created", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("favorites", schema=None) as batch_op:
        batch_op.drop_index("ix_favorites_created")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_gallery_top")
        batch_op.drop_index("ix_jobs_gallery_new")
        batch_op.drop_column("likes")
        batch_op.drop_column("private")
