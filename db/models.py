"""ORM models: users, the append-only credit ledger, jobs and images, and moderation's records."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from sojourn.actions import JobKind
from sojourn.clock import utcnow

__all__ = ["JobKind"]  # declared with the button actions; stored here

# Named constraints so migrations are stable and downgrades can drop them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; Postgres gets a 64-bit identity.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


class AwareDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that always reads back timezone-aware (UTC): SQLite hands back naive ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    @classmethod
    def table(cls) -> Table:
        """The model's table, for Core statements on a hot path (no unit of work, no identity map)."""
        return cast(Table, cls.__table__)


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class LedgerKind(enum.StrEnum):
    GRANT = "grant"  # an admin's grant (or a correction, negative)
    DAILY = "daily"  # the daily free grant
    HOLD = "hold"  # taken when a job is submitted
    SETTLE = "settle"  # the job succeeded: the hold becomes a charge (amount 0)
    REFUND = "refund"  # the job failed or was cancelled: the hold comes back
    REMOVED = "removed"  # moderation removed a succeeded job's result: its cost comes back


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as short strings (no native PG enum): adding a kind never needs a type migration.
    return Enum(cls, name=name, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # Discord id
    defaults: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # saved parameters
    # `/prefer option set NAME VALUE`: `--NAME` in a prompt expands to VALUE (at most 20).
    prefer_options: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default=text("'{}'"))
    # `/prefer suffix`: appended to every prompt.
    prefer_suffix: Mapped[str] = mapped_column(String(500), default="", server_default="")
    # Cached sum of this user's ledger; updated in the same transaction as every entry.
    balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    daily_grant_on: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)
    # The Discord name and avatar the bot last saw (`sojourn.services.profiles`), for the web gallery.
    display_name: Mapped[str | None] = mapped_column(String(100))
    avatar_url: Mapped[str | None] = mapped_column(String(300))
    profile_updated_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime())


class LedgerEntry(Base):
    __tablename__ = "ledger"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # + credits in, - credits out
    kind: Mapped[LedgerKind] = mapped_column(_enum(LedgerKind, "ledger_kind"))
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    # One entry per key, ever: a retried hold, settle or refund is a no-op, never a second charge.
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)


# The rows the galleries may show, as far as the `jobs` row alone says (the gallery's rule in
# `sojourn.services.gallery.visibility` adds the server's switch and moderation's holds): the
# predicate of the gallery's partial indexes, which the rule writes with the same literals.
GALLERY_ROWS = (
    "status = 'succeeded' AND removed_at IS NULL AND guild_id IS NOT NULL "
    "AND channel_public AND NOT age_restricted AND NOT private"
)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_user_status", "user_id", "status"),
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_delivery", "delivered_at", "status"),
        # The gallery: newest first (everywhere, and in one server), most ❤ first.
        Index("ix_jobs_finished", "finished_at", "id"),
        Index("ix_jobs_guild_finished", "guild_id", "finished_at"),
        Index(
            "ix_jobs_gallery_new",
            "finished_at",
            "id",
            postgresql_where=text(GALLERY_ROWS),
            sqlite_where=text(GALLERY_ROWS),
        ),
        Index(
            "ix_jobs_gallery_top",
            "likes",
            "id",
            postgresql_where=text(GALLERY_ROWS),
            sqlite_where=text(GALLERY_ROWS),
        ),
        # Prompt search on Postgres (`sojourn.services.gallery.search`); SQLite scans instead.
        Index("ix_jobs_prompt_search", text("to_tsvector('simple', prompt)"), postgresql_using="gin").ddl_if(
            dialect="postgresql"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[JobKind] = mapped_column(_enum(JobKind, "job_kind"), default=JobKind.IMAGINE)
    # The button that made this job (`sojourn.actions` code: "u", "vs", "z2"…); None for /imagine.
    action: Mapped[str | None] = mapped_column(String(8))
    parent_job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id"))
    parent_image_index: Mapped[int | None] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)  # canonical text, seed included
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # JobSpec as JSON
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "job_status"), default=JobStatus.QUEUED)
    progress: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cost: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Who runs it: the worker's node name, that worker's incarnation (`Worker.id`) and the pid of
    # the process rendering it; all three decide whether that worker is known gone.
    worker_id: Mapped[str | None] = mapped_column(String(200))
    worker_incarnation: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    # The generation of the job's current message: each resend bumps it and a worker runs only a
    # message of the current one, so a lost message's late copy (or a duplicate) is a no-op.
    dispatch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    queued_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime())
    # Written with progress; a running job whose heartbeat went stale lost its worker.
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime())
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # the bot's own message for this job
    # Delivery of the outcome to Discord: set once the final message is posted, or once it cannot
    # be (then `delivery_error` says why, and /info tells the user once).
    delivered_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime())
    delivery_error: Mapped[str | None] = mapped_column(String(300))
    delivery_error_reported: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A button press that made this job: "<action>:<parent>:<index>:<presser>:<remix digest>".
    # Unique, so a double click (even two at once) finds the first job instead of queuing a second;
    # cleared when the job fails or is cancelled, so pressing again retries.
    request_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # Asked for in an age-restricted channel (where a server may let the safety check pass more).
    age_restricted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Removed by a moderator or its owner (`/mod delete`, `/delete`): gone from Discord and galleries.
    removed_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime())
    # Whether @everyone could view the channel it was asked in (the galleries show only those).
    channel_public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # `--private` (or `/settings`, or `/visibility` later): its owner's alone. `spec` says it too;
    # this column is what the galleries' indexes read.
    private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # People who ❤ any of its images, each once; kept with every favorite added or taken back
    # (`sojourn.services.gallery.likes.recount_likes`), so the top gallery sorts on an index.
    likes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    images: Mapped[list[Image]] = relationship(
        back_populates="job", order_by="Image.index", cascade="all, delete-orphan"
    )


class Worker(Base):
    """One incarnation of a worker: a main process from its start to its end, beating while alive.

    A worker restarted under the same node name is a new row; the sweep and the claim read these
    rows to tell a job whose worker is gone from one that is merely slow.
    """

    __tablename__ = "workers"
    __table_args__ = (Index("ix_workers_name", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))  # the Celery node name, e.g. sojourn@gpu-1
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)  # the main process
    # The pool processes alive at the last beat: a job's process missing here has died.
    processes: Mapped[list[int]] = mapped_column(JSON, default=list)
    started_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)
    seen_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime())


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("job_id", "index", name="uq_images_job_id_index"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)  # 1-4 on a grid; 0 is the grid itself
    seed: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(300))
    public: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # The image safety check's score (0 safe … 1 explicit); None when it was off or could not run.
    safety_score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)

    job: Mapped[Job] = relationship(back_populates="images")


class Favorite(Base):
    """❤ on an image: one row per user and image (the gallery counts them)."""

    __tablename__ = "favorites"
    __table_args__ = (
        UniqueConstraint("user_id", "job_id", "image_index", name="uq_favorites_user_job_image"),
        Index("ix_favorites_job_image", "job_id", "image_index"),
        Index("ix_favorites_job_created", "job_id", "created_at"),  # a job's ❤ as of a moment
        Index("ix_favorites_created", "created_at"),  # what was favorited since a gallery page
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    image_index: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)


class GuildSettings(Base):
    """What a server's admins chose (`/server`); a guild with no row has the defaults."""

    __tablename__ = "guild_settings"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # False: only a result's owner may press its buttons. True: anyone may, and the presser pays.
    anyone_can_press: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Moderation (`/mod settings`); None: the project's default from `Settings.moderation`.
    moderator_role_id: Mapped[int | None] = mapped_column(BigInteger)
    default_words: Mapped[bool | None] = mapped_column(Boolean)
    safety_mode: Mapped[str | None] = mapped_column(String(8))
    safety_threshold: Mapped[float | None] = mapped_column(Float)
    allow_in_age_restricted: Mapped[bool | None] = mapped_column(Boolean)
    strikes_before_ban: Mapped[int | None] = mapped_column(Integer)
    strike_window_hours: Mapped[int | None] = mapped_column(Integer)
    strike_ban_hours: Mapped[int | None] = mapped_column(Integer)
    # The channels where /imagine may be used; empty: all of them.
    imagine_channels: Mapped[list[int]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    # `/server gallery`: None or True: this server's results may be in the galleries; False: never.
    web_gallery: Mapped[bool | None] = mapped_column(Boolean)
    # Where results reaching `showcase_likes` ❤ are posted (once each); None: no showcase.
    showcase_channel_id: Mapped[int | None] = mapped_column(BigInteger)
    showcase_likes: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)


class Ban(Base):
    """A ban from one server (`guild_id`), or from every server (None); lifted or ended by time."""

    __tablename__ = "bans"
    __table_args__ = (Index("ix_bans_user_guild", "user_id", "guild_id"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500), default="")
    banned_by: Mapped[int | None] = mapped_column(BigInteger)  # None: sojourn itself (strikes)
    created_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)
    ends_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime())  # None: until lifted
    lifted_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime())
    lifted_by: Mapped[int | None] = mapped_column(BigInteger)


class ServerWordRule(Base):
    """One entry of a server's word list: block, warn, or allow (the allow list)."""

    __tablename__ = "word_rules"
    __table_args__ = (UniqueConstraint("guild_id", "pattern", name="uq_word_rules_guild_id_pattern"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    pattern: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(8))  # block, warn, allow
    created_by: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)


class StrikeSource(enum.StrEnum):
    WORDS = "words"  # a prompt the word filter blocked (kept here, so an appeal can run it)
    IMAGE = "image"  # a result the safety check or a moderator removed


class Strike(Base):
    __tablename__ = "strikes"
    __table_args__ = (Index("ix_strikes_user_guild", "user_id", "guild_id", "created_at"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[StrikeSource] = mapped_column(_enum(StrikeSource, "strike_source"))
    prompt: Mapped[str] = mapped_column(Text, default="")  # as typed (a blocked prompt)
    detail: Mapped[str] = mapped_column(String(500), default="")  # which rule matched where
    patterns: Mapped[list[str]] = mapped_column(JSON, default=list)  # the rules that blocked it
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime())  # an accepted appeal


class AppealStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Appeal(Base):
    __tablename__ = "appeals"
    __table_args__ = (Index("ix_appeals_guild_status", "guild_id", "status"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    strike_id: Mapped[int] = mapped_column(ForeignKey("strikes.id"), unique=True)  # one per strike
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(1000))
    status: Mapped[AppealStatus] = mapped_column(
        _enum(AppealStatus, "appeal_status"), default=AppealStatus.PENDING
    )
    created_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime())
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))


class HoldStatus(enum.StrEnum):
    HELD = "held"
    APPROVED = "approved"
    REMOVED = "removed"


# Holds that keep a result from everyone but moderators (an approved one no longer does).
WITHHELD = (HoldStatus.HELD, HoldStatus.REMOVED)


class HeldResult(Base):
    """A result the safety check held: seen by moderators only until approved (or removed)."""

    __tablename__ = "held_results"
    __table_args__ = (Index("ix_held_results_guild_status", "guild_id", "status"),)

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    score: Mapped[float | None] = mapped_column(Float)  # the highest image's; None: the check failed
    reason: Mapped[str] = mapped_column(String(300))
    status: Mapped[HoldStatus] = mapped_column(_enum(HoldStatus, "hold_status"), default=HoldStatus.HELD)
    created_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime())


class AuditEntry(Base):
    """The moderation record, append-only: who did what, to whom, when and why.

    Discord's own audit log does not show a bot's deletions, so this table is the record.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_guild_created", "guild_id", "created_at"),
        Index("ix_audit_log_target", "target_user_id"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_id: Mapped[int | None] = mapped_column(BigInteger)  # None: sojourn itself
    action: Mapped[str] = mapped_column(String(32))  # `sojourn.services.moderation.audit_log.AuditAction`
    target_user_id: Mapped[int | None] = mapped_column(BigInteger)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # no key: the record outlives a purge
    detail: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)


class ShowcasePost(Base):
    """A result posted to its server's showcase channel: one row per job, so it is posted once."""

    __tablename__ = "showcase_posts"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    channel_id: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # set once the post is sent
    posted_at: Mapped[dt.datetime] = mapped_column(AwareDateTime(), default=utcnow)
