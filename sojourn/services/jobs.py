"""Job lifecycle: submit (parse, hold, insert, enqueue), claim, progress, complete, fail, cancel, recover.

Status moves only through conditional UPDATEs (`WHERE status IN …`), so a cancel racing a
completion, or two deliveries of one message, have exactly one winner. Settle and refund
share the idempotency key `final:<job id>`: a job is charged or refunded, once, never both.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ACTIVE_STATUSES, Image, Job, JobKind, JobStatus, LedgerKind, User
from sojourn.errors import Banned, JobAlreadyEnded, JobNotFound, NotYourJob, TooManyJobs
from sojourn.prompt import PromptError, PromptRules, parse_prompt, to_canonical
from sojourn.prompt.text import format_number
from sojourn.services import credits
from sojourn.services.pricing import job_cost
from sojourn.services.users import expand_prompt
from sojourn.settings import Settings
from sojourn.spec import SEED_MAX, JobSpec, image_prompt_strength

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    """Where submitted jobs are sent for a worker to pick up (Celery in production)."""

    async def enqueue(self, job_id: uuid.UUID, mode: str) -> None: ...


@dataclass(frozen=True)
class Origin:
    """Where a job was asked for, so the result can be delivered there."""

    guild_id: int | None = None
    channel_id: int | None = None
    message_id: int | None = None


@dataclass(frozen=True)
class StoredImage:
    index: int
    seed: int
    width: int
    height: int
    storage_key: str


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; everything we write is UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


def defaults_as_parameters(defaults: dict[str, object]) -> str:
    """A user's saved defaults as the parameter string the parser merges."""
    return str(defaults.get("parameters", "")).strip()


async def submit_prompt(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    queue: JobQueue,
    *,
    user_id: int,
    text: str,
    origin: Origin = Origin(),
    rules: PromptRules | None = None,
    today: dt.date | None = None,
    image_key: str | None = None,
) -> list[Job]:
    """Parse, check credits and limits, hold credits, insert the jobs and enqueue them.

    The user's /prefer suffix and options are applied to `text` first, and their saved defaults
    sit under it. `image_key` is an image prompt already validated and stored (see
    `image_prompts`). Raises a `UserError` (bad prompt, banned, no credits, too many jobs)
    before anything is charged or queued.
    """
    rules = rules or PromptRules.from_settings(settings)
    today = today or utcnow().date()
    async with sessions.begin() as session:
        user = await credits.ensure_user(session, user_id)
        if user.banned:
            raise Banned()
        expanded = expand_prompt(text, user.prefer_options or {}, user.prefer_suffix or "")
        specs = parse_prompt(expanded, rules, defaults=defaults_as_parameters(user.defaults))
        specs = _with_image(specs, image_key)
        planned = [_with_seed(spec) for spec in specs for _ in range(spec.repeat)]
        costs = [job_cost(spec, settings.credits) for spec in planned]
        jobs = [
            new_job(user_id, JobKind.IMAGINE, spec, cost, origin)
            for spec, cost in zip(planned, costs, strict=True)
        ]
        await hold_and_insert(session, settings, user_id, jobs, today)

    await enqueue_jobs(sessions, queue, jobs)
    return jobs


def new_job(user_id: int, kind: JobKind, spec: JobSpec, cost: int, origin: Origin, **extra: object) -> Job:
    """A queued job row for `spec` (not added to a session yet)."""
    return Job(
        id=uuid.uuid4(),
        user_id=user_id,
        kind=kind,
        prompt=to_canonical(spec),
        spec=spec.model_dump(mode="json"),
        status=JobStatus.QUEUED,
        cost=cost,
        queued_at=utcnow(),
        guild_id=origin.guild_id,
        channel_id=origin.channel_id,
        message_id=origin.message_id,
        **extra,
    )


async def hold_and_insert(
    session: AsyncSession, settings: Settings, user_id: int, jobs: Sequence[Job], today: dt.date
) -> None:
    """Grant today's credits if due, hold the jobs' cost, check the limits, insert the jobs and holds."""
    await credits.grant_daily_if_due(session, user_id, settings.credits.daily_free, today)
    await credits.take_hold(session, user_id, sum(job.cost for job in jobs))  # locks the user's row
    await _check_job_limits(session, settings, user_id, adding=len(jobs))
    session.add_all(jobs)
    await session.flush()
    for job in jobs:
        await credits.record_entry(
            session,
            user_id=user_id,
            amount=-job.cost,
            kind=LedgerKind.HOLD,
            key=f"hold:{job.id}",
            job_id=job.id,
            move_balance=False,
        )


def _with_image(specs: list[JobSpec], image_key: str | None) -> list[JobSpec]:
    if image_key is not None:
        for spec in specs:
            starts_at = round((1 - image_prompt_strength(spec.image_weight)) * 100)
            if spec.stop <= starts_at:
                raise PromptError(
                    f"--stop {spec.stop} ends before an image prompt at --iw "
                    f"{format_number(spec.image_weight)} even starts (at {starts_at} %): "
                    f"raise --stop above {starts_at} or lower --iw"
                )
        return [spec.model_copy(update={"image_key": image_key}) for spec in specs]
    if any(spec.image_weight != 1.0 for spec in specs):
        raise PromptError(
            "--iw weighs an image prompt, and there is none: attach an image (the image option), "
            "or remove --iw"
        )
    return specs


def _with_seed(spec: JobSpec) -> JobSpec:
    # Every job is reproducible: a seed the user did not give is drawn and stored.
    return spec if spec.seed is not None else spec.with_seed(secrets.randbelow(SEED_MAX + 1))


async def _check_job_limits(session: AsyncSession, settings: Settings, user_id: int, adding: int) -> None:
    active = await session.scalar(
        select(func.count()).select_from(Job).where(Job.user_id == user_id, Job.status.in_(ACTIVE_STATUSES))
    )
    allowed = settings.limits.max_running_per_user + settings.limits.max_queued_per_user
    if (active or 0) + adding > allowed:
        raise TooManyJobs(active=active or 0, adding=adding, allowed=allowed)


async def enqueue_jobs(
    sessions: async_sessionmaker[AsyncSession], queue: JobQueue, jobs: Sequence[Job]
) -> None:
    """Send jobs to the queue, then note that they were sent (the recovery sweep resends the rest)."""
    sent: list[uuid.UUID] = []
    for job in jobs:
        try:
            await queue.enqueue(job.id, job.spec.get("mode", "fast"))
            sent.append(job.id)
        except Exception:
            log.exception("could not enqueue job %s; the recovery sweep will retry", job.id)
    if sent:
        async with sessions.begin() as session:
            await session.execute(update(Job).where(Job.id.in_(sent)).values(enqueued_at=utcnow()))


async def claim_job(
    session: AsyncSession, job_id: uuid.UUID, worker_node: str, *, stale_after: dt.timedelta
) -> Job | None:
    """Mark a job running on this worker, or return None when there is nothing to do.

    A worker node runs one job at a time, so a job already running on this same node is a
    redelivery after its process died: take it over. One running elsewhere is taken over only
    when its heartbeat went stale.
    """
    now = utcnow()
    result = await session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            or_(
                Job.status == JobStatus.QUEUED,
                (Job.status == JobStatus.RUNNING) & (Job.worker_id == worker_node),
                (Job.status == JobStatus.RUNNING) & (Job.heartbeat_at < now - stale_after),
            ),
        )
        .values(
            status=JobStatus.RUNNING,
            worker_id=worker_node,
            started_at=now,
            heartbeat_at=now,
            attempts=Job.attempts + 1,
            progress=0,
            error=None,
        )
        .returning(Job.id)
    )
    if result.scalar_one_or_none() is None:
        return None
    # A half-run attempt may have left image rows behind; this attempt redoes them all.
    await session.execute(delete(Image).where(Image.job_id == job_id))
    job = await session.get(Job, job_id, populate_existing=True)
    return job


async def record_progress(
    session: AsyncSession, job_id: uuid.UUID, worker_node: str, percent: int
) -> JobStatus | None:
    """Store progress and the heartbeat; returns the job's status (cancelled means: stop)."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_node, Job.status == JobStatus.RUNNING)
        .values(progress=percent, heartbeat_at=utcnow())
        .returning(Job.status)
    )
    status = result.scalar_one_or_none()
    if status is None:
        status = await session.scalar(select(Job.status).where(Job.id == job_id))
    return status


async def complete_job(
    session: AsyncSession, job_id: uuid.UUID, worker_node: str, images: Sequence[StoredImage]
) -> bool:
    """Record the images and settle the hold; False when the job was cancelled meanwhile."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.worker_id == worker_node)
        .values(status=JobStatus.SUCCEEDED, progress=100, finished_at=utcnow(), error=None)
        .returning(Job.user_id, Job.spec)
    )
    row = result.one_or_none()
    if row is None:
        return False
    user_id, spec = row
    public = not spec.get("private", False)
    session.add_all(
        Image(
            job_id=job_id,
            index=image.index,
            seed=image.seed,
            width=image.width,
            height=image.height,
            storage_key=image.storage_key,
            public=public,
        )
        for image in images
    )
    await credits.record_entry(
        session, user_id=user_id, amount=0, kind=LedgerKind.SETTLE, key=f"final:{job_id}", job_id=job_id
    )
    return True


async def fail_job(session: AsyncSession, job_id: uuid.UUID, error: str) -> bool:
    """Fail an unfinished job and refund its hold; False if it had already ended."""
    return await _end_with_refund(session, job_id, JobStatus.FAILED, error)


async def cancel_job(session: AsyncSession, job_id: uuid.UUID) -> bool:
    """Cancel a queued or running job and refund it in full (the worker stops at its next step)."""
    return await _end_with_refund(session, job_id, JobStatus.CANCELLED, "cancelled")


async def _end_with_refund(session: AsyncSession, job_id: uuid.UUID, status: JobStatus, error: str) -> bool:
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE_STATUSES))
        # Freeing the button press's key lets the same press make a new job after this one.
        .values(status=status, finished_at=utcnow(), error=error, request_key=None)
        .returning(Job.user_id, Job.cost)
    )
    row = result.one_or_none()
    if row is None:
        return False
    user_id, cost = row
    await credits.record_entry(
        session,
        user_id=user_id,
        amount=cost,
        kind=LedgerKind.REFUND,
        key=f"final:{job_id}",
        job_id=job_id,
        note=error[:200],
    )
    return True


async def recover_jobs(
    sessions: async_sessionmaker[AsyncSession],
    queue: JobQueue,
    *,
    max_attempts: int,
    unsent_after: dt.timedelta = dt.timedelta(seconds=30),
    stale_after: dt.timedelta = dt.timedelta(minutes=5),
) -> list[uuid.UUID]:
    """Resend jobs whose message never left or whose worker vanished; fail those out of attempts."""
    now = utcnow()
    async with sessions() as session:
        rows = (
            (
                await session.execute(
                    select(Job).where(
                        or_(
                            (Job.status == JobStatus.QUEUED)
                            & Job.enqueued_at.is_(None)
                            & (Job.queued_at < now - unsent_after),
                            (Job.status == JobStatus.RUNNING) & (Job.heartbeat_at < now - stale_after),
                        )
                    )
                )
            )
            .scalars()
            .all()
        )
    resend: list[Job] = []
    for job in rows:
        if job.attempts >= max_attempts:
            async with sessions.begin() as session:
                await fail_job(session, job.id, "the job failed on every try; your credits were refunded")
        else:
            resend.append(job)
    await enqueue_jobs(sessions, queue, resend)
    return [job.id for job in resend]


def parse_job_id(text: str) -> uuid.UUID:
    """A job id as a user types it (with or without dashes); raises `JobNotFound` otherwise."""
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise JobNotFound(text.strip()[:40] or "with an empty id") from None


async def cancel_user_job(
    sessions: async_sessionmaker[AsyncSession], user_id: int, job_id: uuid.UUID | None
) -> Job:
    """Cancel one of the user's jobs (their latest active one when `job_id` is None), refunded in full.

    A running job is interrupted by its worker at the next denoising step; the partial work is
    thrown away, so all of the hold comes back, as for a queued job.
    """
    async with sessions.begin() as session:
        if job_id is None:
            job = await session.scalar(
                select(Job)
                .where(Job.user_id == user_id, Job.status.in_(ACTIVE_STATUSES))
                .order_by(Job.queued_at.desc())
                .limit(1)
            )
            if job is None:
                raise JobNotFound.none_active()
        else:
            job = await session.get(Job, job_id)
            if job is None:
                raise JobNotFound(job_id)
            if job.user_id != user_id:
                raise NotYourJob(job_id, "cancel")
        if job.status not in ACTIVE_STATUSES or not await cancel_job(session, job.id):
            await session.refresh(job)
            raise JobAlreadyEnded(job.id, job.status.value)
        await session.refresh(job)
    return job


async def recent_jobs(
    session: AsyncSession,
    user_id: int,
    *,
    statuses: Sequence[JobStatus] | None = None,
    limit: int = 100,
) -> list[Job]:
    """The user's latest jobs, newest first (for autocomplete and /info)."""
    query = select(Job).where(Job.user_id == user_id).order_by(Job.queued_at.desc()).limit(limit)
    if statuses is not None:
        query = query.where(Job.status.in_(statuses))
    return list((await session.execute(query)).scalars())


async def get_job(session: AsyncSession, job_id: uuid.UUID) -> Job | None:
    return await session.get(Job, job_id)


async def user_for(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)
