"""gallery: a channel's visibility on each job, a server's gallery settings, showcase posts, indexes

`jobs.channel_public` starts false for every existing job: nothing made before the bot recorded
whether @everyone could view the channel enters the galleries by surprise.

Prompt search: Postgres gets a GIN index on `to_tsvector('simple', prompt)` (the gallery's query
uses that very expression); SQLite scans (see `sojourn.services.gallery.search`), since an FTS5
table kept in step by triggers would lose its triggers whenever a batch migration copies `jobs`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_INDEX = "ix_jobs_prompt_search"


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel_public", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index("ix_jobs_finished", ["finished_at", "id"], unique=False)
        batch_op.create_index("ix_jobs_guild_finished", ["guild_id", "finished_at"], unique=False)

    with op.batch_alter_table("guild_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("web_gallery", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("showcase_channel_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("showcase_likes", sa.Integer(), nullable=True))

    with op.batch_alter_table("favorites", schema=None) as batch_op:
        batch_op.create_index("ix_favorites_job_created", ["job_id", "created_at"], unique=False)

    op.create_table(
        "showcase_posts",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_showcase_posts_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_showcase_posts")),
    )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(f"CREATE INDEX {SEARCH_INDEX} ON jobs USING gin (to_tsvector('simple', prompt))"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(f"DROP INDEX {SEARCH_INDEX}"))

    op.drop_table("showcase_posts")

    with op.batch_alter_table("favorites", schema=None) as batch_op:
        batch_op.drop_index("ix_favorites_job_created")

    with op.batch_alter_table("guild_settings", schema=None) as batch_op:
        batch_op.drop_column("showcase_likes")
        batch_op.drop_column("showcase_channel_id")
        batch_op.drop_column("web_gallery")

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_guild_finished")
        batch_op.drop_index("ix_jobs_finished")
        batch_op.drop_column("channel_public")
