"""moderation: bans with an end, per-server word rules, strikes, appeals, held results, the audit log

Bans move from the `users.banned` flag into `bans`: each banned user gets a ban from every server
(guild_id NULL) with no end, and a downgrade sets the flag again for every active such ban.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 04:19:12.680830
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target_user_id", sa.BigInteger(), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_guild_created", ["guild_id", "created_at"], unique=False)
        batch_op.create_index("ix_audit_log_target", ["target_user_id"], unique=False)

    op.create_table(
        "word_rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("pattern", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_word_rules")),
        sa.UniqueConstraint("guild_id", "pattern", name="uq_word_rules_guild_id_pattern"),
    )
    op.create_table(
        "bans",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("banned_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_bans_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bans")),
    )
    with op.batch_alter_table("bans", schema=None) as batch_op:
        batch_op.create_index("ix_bans_user_guild", ["user_id", "guild_id"], unique=False)

    op.create_table(
        "held_results",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column(
            "status",
            sa.Enum("held", "approved", "removed", name="hold_status", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_held_results_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_held_results")),
    )
    with op.batch_alter_table("held_results", schema=None) as batch_op:
        batch_op.create_index("ix_held_results_guild_status", ["guild_id", "status"], unique=False)

    op.create_table(
        "strikes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "source",
            sa.Enum("words", "image", name="strike_source", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("patterns", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_strikes_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_strikes_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strikes")),
    )
    with op.batch_alter_table("strikes", schema=None) as batch_op:
        batch_op.create_index("ix_strikes_user_guild", ["user_id", "guild_id", "created_at"], unique=False)

    op.create_table(
        "appeals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("strike_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "accepted", "rejected", name="appeal_status", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_appeals_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["strike_id"], ["strikes.id"], name=op.f("fk_appeals_strike_id_strikes")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_appeals_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeals")),
        sa.UniqueConstraint("strike_id", name=op.f("uq_appeals_strike_id")),
    )
    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.create_index("ix_appeals_guild_status", ["guild_id", "status"], unique=False)

    with op.batch_alter_table("guild_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("moderator_role_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("default_words", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("safety_mode", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("safety_threshold", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("allow_in_age_restricted", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("strikes_before_ban", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("strike_window_hours", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("strike_ban_hours", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("imagine_channels", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )

    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("safety_score", sa.Float(), nullable=True))

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("age_restricted", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))

    op.execute(
        sa.text(
            "INSERT INTO bans (user_id, guild_id, reason, banned_by, created_at) "
            "SELECT id, NULL, 'banned before bans had reasons', NULL, CURRENT_TIMESTAMP "
            "FROM users WHERE banned"
        )
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("banned")


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("banned", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(
        sa.text(
            "UPDATE users SET banned = TRUE WHERE id IN (SELECT user_id FROM bans "
            "WHERE guild_id IS NULL AND lifted_at IS NULL AND ends_at IS NULL)"
        )
    )

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("removed_at")
        batch_op.drop_column("age_restricted")

    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_column("safety_score")

    with op.batch_alter_table("guild_settings", schema=None) as batch_op:
        batch_op.drop_column("imagine_channels")
        batch_op.drop_column("strike_ban_hours")
        batch_op.drop_column("strike_window_hours")
        batch_op.drop_column("strikes_before_ban")
        batch_op.drop_column("allow_in_age_restricted")
        batch_op.drop_column("safety_threshold")
        batch_op.drop_column("safety_mode")
        batch_op.drop_column("default_words")
        batch_op.drop_column("moderator_role_id")

    with op.batch_alter_table("appeals", schema=None) as batch_op:
        batch_op.drop_index("ix_appeals_guild_status")

    op.drop_table("appeals")
    with op.batch_alter_table("strikes", schema=None) as batch_op:
        batch_op.drop_index("ix_strikes_user_guild")

    op.drop_table("strikes")
    with op.batch_alter_table("held_results", schema=None) as batch_op:
        batch_op.drop_index("ix_held_results_guild_status")

    op.drop_table("held_results")
    with op.batch_alter_table("bans", schema=None) as batch_op:
        batch_op.drop_index("ix_bans_user_guild")

    op.drop_table("bans")
    op.drop_table("word_rules")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_target")
        batch_op.drop_index("ix_audit_log_guild_created")

    op.drop_table("audit_log")
