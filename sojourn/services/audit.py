"""`sojourn audit`: check every invariant of the money and the jobs on a live database, read-only.

Each check is `async def check_x(session, context) -> list[Violation]`, registered once in
`CHECKS`; a later feature adds its invariants by adding a check there. All checks run in one
read-only transaction over one snapshot (`read_only_session`), so the audit can never write and
a job that moves on while it runs is never seen half moved. The rules, by identifier:

- money: `balance-mismatch`, `negative-balance`;
- a job's ledger: `hold-missing`, `hold-duplicate`, `hold-amount`, `final-missing`,
  `final-duplicate`, `final-on-active-job`, `final-wrong-kind`, `settle-amount`, `refund-amount`,
  `ledger-key`, `entry-wrong-user`, and `entry-without-job` for an entry with no job to belong to;
- moderation's refunds: `removal-refund` (a `removed` entry only on a succeeded, removed job, of
  its cost, once, keyed `removed:<job id>`);
- jobs on the move: `stranded-running`, `unsent-queued`;
- results: `image-rows-mismatch`, `images-on-unsucceeded-job`, `image-file-missing`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import BigInteger, String, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from db.models import ACTIVE_STATUSES, Image, Job, JobStatus, LedgerEntry, LedgerKind, User
from sojourn.clock import utcnow
from sojourn.settings import Settings
from sojourn.spec import IMAGES_PER_JOB
from sojourn.storage import ImageStorage

FILE_BATCH = 500  # image rows whose files are looked up in one go


@dataclass(frozen=True)
class Violation:
    rule: str  # short stable identifier, e.g. "balance-mismatch"
    subject: str  # "user 123" / "job <uuid>"
    detail: str  # what is wrong, with the numbers

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject}: {self.detail}"


@dataclass(frozen=True)
class AuditReport:
    violations: list[Violation]
    users: int
    jobs: int
    ledger_entries: int

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        return (
            f"audit: {len(self.violations)} violations in {self.users} users, {self.jobs} jobs, "
            f"{self.ledger_entries} ledger entries"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "users": self.users,
            "jobs": self.jobs,
            "ledger_entries": self.ledger_entries,
            "violations": [asdict(violation) for violation in self.violations],
        }


@dataclass(frozen=True)
class AuditContext:
    """What every check may read besides the database: settings, storage, the audit's one `now`."""

    settings: Settings
    storage: ImageStorage
    now: dt.datetime
    dialect: str  # "postgresql" or "sqlite"


Check = Callable[[AsyncSession, AuditContext], Awaitable[list[Violation]]]


@asynccontextmanager
async def read_only_session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session inside one read-only transaction over one snapshot; rolled back at the end."""
    async with sessions() as session:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            # asyncpg opens the transaction as REPEATABLE READ, READ ONLY: one snapshot, no writes.
            connection = await session.connection(
                execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
            )
        elif dialect == "sqlite":
            connection = await session.connection()
            await connection.exec_driver_sql("PRAGMA query_only = ON")
            # pysqlite begins no transaction for reads; an explicit one holds one WAL snapshot.
            await connection.exec_driver_sql("BEGIN")
        else:
            raise ValueError(f"the audit knows no read-only transaction on {dialect}")
        try:
            yield session
        finally:
            if dialect == "sqlite":
                try:
                    # The connection goes back to the pool: its next user may write again.
                    await connection.exec_driver_sql("PRAGMA query_only = OFF")
                except Exception:
                    await connection.invalidate()
                    raise
            await session.rollback()


async def audit_database(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, storage: ImageStorage
) -> AuditReport:
    """Run every check in `CHECKS` in one read-only transaction; the report lists what is wrong."""
    async with read_only_session(sessions) as session:
        context = AuditContext(
            settings=settings, storage=storage, now=utcnow(), dialect=session.get_bind().dialect.name
        )
        violations: list[Violation] = []
        for check in CHECKS:
            violations += await check(session, context)
        users = await session.scalar(select(func.count()).select_from(User))
        jobs = await session.scalar(select(func.count()).select_from(Job))
        entries = await session.scalar(select(func.count()).select_from(LedgerEntry))
    return AuditReport(violations=violations, users=users or 0, jobs=jobs or 0, ledger_entries=entries or 0)


# -- money ---------------------------------------------------------------------------------------


def _integer_sum(value: ColumnElement[int] | InstrumentedAttribute[int]) -> ColumnElement[int]:
    # Postgres sums a bigint to a numeric (a Decimal in Python); the ledger's sums are integers.
    return func.coalesce(cast(func.sum(value), BigInteger), 0)


async def check_balances(session: AsyncSession, context: AuditContext) -> list[Violation]:
    """Each user's cached balance is the sum of their ledger, and never negative."""
    totals = (
        select(LedgerEntry.user_id, _integer_sum(LedgerEntry.amount).label("total"))
        .group_by(LedgerEntry.user_id)
        .subquery()
    )
    total = func.coalesce(totals.c.total, 0)
    rows = await session.execute(
        select(User.id, User.balance, total)
        .outerjoin(totals, totals.c.user_id == User.id)
        .where(or_(User.balance != total, User.balance < 0))
        .order_by(User.id)
    )
    violations = []
    for user_id, balance, ledger_total in rows:
        if balance != ledger_total:
            violations.append(
                Violation(
                    "balance-mismatch",
                    f"user {user_id}",
                    f"cached balance {balance} but the ledger sums to {ledger_total} "
                    f"(off by {balance - ledger_total:+d})",
                )
            )
        if balance < 0:
            violations.append(Violation("negative-balance", f"user {user_id}", f"balance is {balance}"))
    return violations


# -- each job's ledger ---------------------------------------------------------------------------


def _job_id_text(dialect: str) -> ColumnElement[str]:
    """`jobs.id` as `str(uuid)` writes it into idempotency keys: lower case, dashed."""
    if dialect == "postgresql":
        return cast(Job.id, String)
    # SQLite stores a Uuid as 32 hex digits.
    digits = func.lower(cast(Job.id, String))
    parts = [
        func.substr(digits, start, length) for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    ]
    text: ColumnElement[str] = parts[0]
    for part in parts[1:]:
        text = text + literal("-", String) + part
    return text


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return _integer_sum(case((condition, 1), else_=0))


def _total(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return _integer_sum(case((condition, LedgerEntry.amount), else_=0))


async def check_job_ledger(session: AsyncSession, context: AuditContext) -> list[Violation]:
    """One hold of -cost per job; one final entry per ended job, none on an active one, of the right kind.

    Settle and refund share the key `final:<job id>` (`lifecycle`); the hold's is `hold:<job id>`
    (`submission.hold_and_insert`). One aggregate row per job, and only the jobs out of shape.
    """
    job_text = _job_id_text(context.dialect)
    is_hold = LedgerEntry.kind == LedgerKind.HOLD
    is_settle = LedgerEntry.kind == LedgerKind.SETTLE
    is_refund = LedgerEntry.kind == LedgerKind.REFUND
    is_final = is_settle | is_refund
    holds, hold_total = _count(is_hold), _total(is_hold)
    settles, settle_total = _count(is_settle), _total(is_settle)
    refunds, refund_total = _count(is_refund), _total(is_refund)
    hold_keyed = _count(is_hold & (LedgerEntry.idempotency_key == literal("hold:", String) + job_text))
    final_keyed = _count(is_final & (LedgerEntry.idempotency_key == literal("final:", String) + job_text))
    other_user = _count(LedgerEntry.user_id != Job.user_id)

    succeeded = Job.status == JobStatus.SUCCEEDED
    refunded = Job.status.in_((JobStatus.FAILED, JobStatus.CANCELLED))
    # The healthy shape, as one condition: the rows that are not in it come back.
    healthy = (
        (holds == 1)
        & (hold_total == -Job.cost)
        & (hold_keyed == 1)
        & (other_user == 0)
        & (settles == case((succeeded, 1), else_=0))
        & (refunds == case((refunded, 1), else_=0))
        & (settle_total == 0)
        & (refund_total == case((refunded, Job.cost), else_=0))
        & (final_keyed == settles + refunds)
    )
    rows = await session.execute(
        select(
            Job.id,
            Job.user_id,
            Job.status,
            Job.cost,
            holds.label("holds"),
            hold_total.label("hold_total"),
            hold_keyed.label("hold_keyed"),
            settles.label("settles"),
            settle_total.label("settle_total"),
            refunds.label("refunds"),
            refund_total.label("refund_total"),
            final_keyed.label("final_keyed"),
            other_user.label("other_user"),
        )
        .outerjoin(LedgerEntry, LedgerEntry.job_id == Job.id)
        .group_by(Job.id, Job.user_id, Job.status, Job.cost)
        .having(~healthy)
        .order_by(Job.id)
    )
    violations: list[Violation] = []
    for row in rows:
        violations += _job_ledger_violations(row)
    return violations


def _job_ledger_violations(row: Any) -> list[Violation]:
    subject = f"job {row.id}"
    whose = f"(user {row.user_id}, {row.status.value}, cost {row.cost})"
    found: list[tuple[str, str]] = []
    if row.holds == 0:
        found.append(("hold-missing", f"has no hold entry {whose}"))
    elif row.holds > 1:
        found.append(("hold-duplicate", f"has {row.holds} hold entries, {row.hold_total} in all {whose}"))
    else:
        if row.hold_total != -row.cost:
            found.append(("hold-amount", f"its hold is {row.hold_total}, not {-row.cost} {whose}"))
        if row.hold_keyed == 0:
            found.append(("ledger-key", f"its hold's idempotency key is not hold:{row.id} {whose}"))

    finals = row.settles + row.refunds
    active = row.status in ACTIVE_STATUSES
    if active and finals:
        found.append(
            (
                "final-on-active-job",
                f"is still {row.status.value} but has {finals} settle/refund entries {whose}",
            )
        )
    elif not active and finals == 0:
        found.append(("final-missing", f"ended without a settle or refund {whose}"))
    elif finals > 1:
        found.append(
            (
                "final-duplicate",
                f"has {finals} final entries ({row.settles} settle, {row.refunds} refund) {whose}",
            )
        )
    if not active:
        if row.status == JobStatus.SUCCEEDED and row.refunds:
            found.append(("final-wrong-kind", f"succeeded but was refunded {row.refund_total} {whose}"))
        elif row.status != JobStatus.SUCCEEDED and row.settles:
            found.append(("final-wrong-kind", f"{row.status.value} but was settled (charged) {whose}"))
    if finals == 1:
        if row.settles and row.settle_total != 0:
            found.append(("settle-amount", f"its settle moves {row.settle_total} credits, not 0 {whose}"))
        if row.refunds and row.refund_total != row.cost:
            found.append(("refund-amount", f"refunded {row.refund_total}, not its cost {row.cost} {whose}"))
        if row.final_keyed == 0:
            found.append(("ledger-key", f"its final entry's idempotency key is not final:{row.id} {whose}"))
    if row.other_user:
        found.append(
            ("entry-wrong-user", f"{row.other_user} of its ledger entries belong to another user {whose}")
        )
    return [Violation(rule, subject, detail) for rule, detail in found]


async def check_entries_have_jobs(session: AsyncSession, context: AuditContext) -> list[Violation]:
    """No ledger entry names a job that does not exist, and every hold, settle and refund names one."""
    job_kinds = (LedgerKind.HOLD, LedgerKind.SETTLE, LedgerKind.REFUND, LedgerKind.REMOVED)
    rows = await session.execute(
        select(
            LedgerEntry.id,
            LedgerEntry.user_id,
            LedgerEntry.job_id,
            LedgerEntry.kind,
            LedgerEntry.amount,
            LedgerEntry.idempotency_key,
        )
        .outerjoin(Job, Job.id == LedgerEntry.job_id)
        .where(
            or_(
                LedgerEntry.job_id.is_not(None) & Job.id.is_(None),
                LedgerEntry.job_id.is_(None) & LedgerEntry.kind.in_(job_kinds),
            )
        )
        .order_by(LedgerEntry.id)
    )
    violations = []
    for entry_id, user_id, job_id, kind, amount, key in rows:
        entry = f"ledger entry {entry_id} ({kind.value} of {amount:+d}, key {key})"
        if job_id is not None:
            violations.append(
                Violation(
                    "entry-without-job",
                    f"job {job_id}",
                    f"{entry} of user {user_id} names this job, which does not exist",
                )
            )
        else:
            violations.append(Violation("entry-without-job", f"user {user_id}", f"{entry} names no job"))
    return violations


async def check_removal_refunds(session: AsyncSession, context: AuditContext) -> list[Violation]:
    """A result moderation removed is refunded once, in full, and only such a result is."""
    is_removed = LedgerEntry.kind == LedgerKind.REMOVED
    count, total = _count(is_removed), _total(is_removed)
    keyed = _count(
        is_removed
        & (LedgerEntry.idempotency_key == literal("removed:", String) + _job_id_text(context.dialect))
    )
    rows = await session.execute(
        select(Job.id, Job.user_id, Job.status, Job.cost, Job.removed_at, count, total, keyed)
        .join(LedgerEntry, LedgerEntry.job_id == Job.id)
        .group_by(Job.id, Job.user_id, Job.status, Job.cost, Job.removed_at)
        .having(
            (count > 0)
            & (
                (count != 1)
                | (total != Job.cost)
                | (keyed != 1)
                | (Job.status != JobStatus.SUCCEEDED)
                | Job.removed_at.is_(None)
            )
        )
        .order_by(Job.id)
    )
    return [
        Violation(
            "removal-refund",
            f"job {job_id}",
            f"{entries} removal refunds of {refunded} in all ({keyed_entries} keyed removed:{job_id}) "
            f"on a {status.value} job costing {cost}, {'removed' if removed_at else 'not removed'} "
            f"(user {user_id})",
        )
        for job_id, user_id, status, cost, removed_at, entries, refunded, keyed_entries in rows
    ]


# -- jobs on the move ----------------------------------------------------------------------------


async def check_stranded_jobs(session: AsyncSession, context: AuditContext) -> list[Violation]:
    """No job running without a fresh heartbeat, none queued whose message never left."""
    recovery = context.settings.recovery
    stale_before = context.now - dt.timedelta(seconds=recovery.recover_after)
    unsent_before = context.now - dt.timedelta(seconds=recovery.unsent_after)
    rows = await session.execute(
        select(Job.id, Job.user_id, Job.status, Job.heartbeat_at, Job.queued_at, Job.worker_id)
        .where(
            or_(
                (Job.status == JobStatus.RUNNING)
                & (Job.heartbeat_at.is_(None) | (Job.heartbeat_at < stale_before)),
                (Job.status == JobStatus.QUEUED)
                & Job.enqueued_at.is_(None)
                & (Job.queued_at < unsent_before),
            )
        )
        .order_by(Job.id)
    )
    violations = []
    for job_id, user_id, status, heartbeat_at, queued_at, worker_id in rows:
        if status == JobStatus.RUNNING:
            beat = (
                "has no heartbeat"
                if heartbeat_at is None
                else f"last beat {_age(context.now, heartbeat_at)} ago (at {heartbeat_at.isoformat()})"
            )
            detail = (
                f"running on {worker_id} but {beat}; stranded after {recovery.recover_after:g} s "
                f"(user {user_id})"
            )
            violations.append(Violation("stranded-running", f"job {job_id}", detail))
        else:
            detail = (
                f"queued {_age(context.now, queued_at)} ago (at {queued_at.isoformat()}) and its message "
                f"never left; resent after {recovery.unsent_after:g} s (user {user_id})"
            )
            violations.append(Violation("unsent-queued", f"job {job_id}", detail))
    return violations


def _age(now: dt.datetime, then: dt.datetime) -> str:
    return f"{(now - then).total_seconds():.0f} s"


# -- results -------------------------------------------------------------------------------------


def expected_image_indexes(images: int) -> list[int]:
    """A succeeded job's image rows, as `inference.runner` stores them: 1..n, and 0 (the grid) if n > 1."""
    return [0, *range(1, images + 1)] if images > 1 else [1]


async def check_job_images(session: AsyncSession, context: AuditContext) -> list[Violation]:
    """Every succeeded job has exactly its image rows; no other job has any."""
    # `spec.images`: how many images the job renders (1 for an upscale; absent on older jobs).
    images = func.coalesce(Job.table().c.spec["images"].as_integer(), IMAGES_PER_JOB)
    per_job = (
        select(
            Image.job_id,
            func.count().label("image_rows"),
            func.min(Image.index).label("low"),
            func.max(Image.index).label("high"),
        )
        .group_by(Image.job_id)
        .subquery()
    )
    rows = func.coalesce(per_job.c.image_rows, 0)
    # (job, index) is unique and the expected indexes are a run, so count, min and max decide.
    out_of_shape = or_(
        rows != case((images > 1, images + 1), else_=images),
        per_job.c.low != case((images > 1, 0), else_=1),
        per_job.c.high != images,
    )
    flagged = (
        await session.execute(
            select(Job.id, Job.user_id, images)
            .outerjoin(per_job, per_job.c.job_id == Job.id)
            # A removed result's files (and rows) may have been purged (`/mod delete purge:True`).
            .where(Job.status == JobStatus.SUCCEEDED, Job.removed_at.is_(None), out_of_shape)
            .order_by(Job.id)
        )
    ).all()
    present = await _image_indexes(session, [job_id for job_id, _, _ in flagged])
    violations = []
    for job_id, user_id, count in flagged:
        expected = expected_image_indexes(int(count))
        have = present.get(job_id, [])
        missing = sorted(set(expected) - set(have))
        extra = sorted(set(have) - set(expected))
        detail = f"succeeded with image rows {have or 'none'}, expected {expected}"
        detail += "".join(
            f"; {what} {indexes}"
            for what, indexes in (("missing", missing), ("unexpected", extra))
            if indexes
        )
        violations.append(Violation("image-rows-mismatch", f"job {job_id}", f"{detail} (user {user_id})"))

    stray = await session.execute(
        select(Job.id, Job.user_id, Job.status, func.count(Image.id))
        .join(Image, Image.job_id == Job.id)
        .where(Job.status != JobStatus.SUCCEEDED)
        .group_by(Job.id, Job.user_id, Job.status)
        .order_by(Job.id)
    )
    for job_id, user_id, status, count in stray:
        violations.append(
            Violation(
                "images-on-unsucceeded-job",
                f"job {job_id}",
                f"is {status.value} but has {count} image rows (user {user_id})",
            )
        )
    return violations


async def _image_indexes(session: AsyncSession, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[int]]:
    found: dict[uuid.UUID, list[int]] = defaultdict(list)
    for start in range(0, len(job_ids), FILE_BATCH):
        rows = await session.execute(
            select(Image.job_id, Image.index)
            .where(Image.job_id.in_(job_ids[start : start + FILE_BATCH]))
            .order_by(Image.job_id, Image.index)
        )
        for job_id, index in rows:
            found[job_id].append(index)
    return found


async def check_image_files(session: AsyncSession, context: AuditContext) -> list[Violation]:
    """Every image row's file is in storage (rows streamed, files looked up off the event loop)."""
    result = await session.stream(
        select(Image.job_id, Image.index, Image.storage_key)
        .order_by(Image.job_id, Image.index)
        .execution_options(yield_per=FILE_BATCH)
    )
    violations = []
    async for batch in result.partitions():
        problems = await asyncio.to_thread(
            _missing_files, context.storage, [row.storage_key for row in batch]
        )
        for (job_id, index, key), problem in zip(batch, problems, strict=True):
            if problem:
                violations.append(
                    Violation("image-file-missing", f"job {job_id}", f"image {index}: {key} {problem}")
                )
    return violations


def _missing_files(storage: ImageStorage, keys: list[str]) -> list[str | None]:
    """For each key: None when its file exists, else what is wrong with it."""
    problems: list[str | None] = []
    for key in keys:
        try:
            problems.append(None if storage.exists(key) else "is not in storage")
        except ValueError as error:
            problems.append(f"cannot be looked up: {error}")
    return problems


# Every invariant the audit checks, in the order its report lists them.
CHECKS: tuple[Check, ...] = (
    check_balances,
    check_job_ledger,
    check_entries_have_jobs,
    check_removal_refunds,
    check_stranded_jobs,
    check_job_images,
    check_image_files,
)
