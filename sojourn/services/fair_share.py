"""Which queued job a relax message runs: fast jobs first, then the member with the least recent
GPU time (Midjourney's relax queue), so one member's fifty relax jobs cannot starve another's one.

A relax message is a turn, not a promise to one job: the worker that takes it claims the job next
in line, and if that is another job, the message's own job gets a new message (a new `dispatch`,
sent after the commit: `Claimed.resend`), so every queued job keeps exactly one live message and
the recovery sweep's census still holds. Fast messages run their own job, first come first served.
A member's own relax jobs keep their order.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Job, JobStatus
from sojourn.clock import utcnow
from sojourn.services.lifecycle import claim_job
from sojourn.services.workers import WorkerProcess
from sojourn.settings import RecoverySettings

USAGE_WINDOW = dt.timedelta(hours=24)  # "recent" GPU time: what a member's jobs used in this window
CANDIDATES = 1000  # the oldest queued relax jobs considered at a turn (each member's first counts)


@dataclass(frozen=True)
class Claimed:
    job: Job | None  # the job this worker now runs (None: nothing to do)
    resend: Job | None = None  # the message's own job, still queued, under a new dispatch: send it


def _mode(mode: str) -> ColumnElement[bool]:
    """Jobs of this mode (a spec without one is fast, the default)."""
    named = Job.spec["mode"].as_string()
    return named == mode if mode == "relax" else or_(named == mode, named.is_(None))


async def next_in_line(session: AsyncSession, now: dt.datetime) -> uuid.UUID | None:
    """The queued job a relax turn should run: the oldest fast job, else the first relax job of
    the member with the least GPU time in the last `USAGE_WINDOW` (ties: the earliest queued)."""
    fast = await session.scalar(
        select(Job.id)
        .where(Job.status == JobStatus.QUEUED, _mode("fast"))
        .order_by(Job.queued_at, Job.id)
        .limit(1)
    )
    if fast is not None:
        return fast
    queued = (
        await session.execute(
            select(Job.id, Job.user_id, Job.queued_at)
            .where(Job.status == JobStatus.QUEUED, _mode("relax"))
            .order_by(Job.queued_at, Job.id)
            .limit(CANDIDATES)
        )
    ).all()
    first_of: dict[int, tuple[dt.datetime, uuid.UUID]] = {}
    for job_id, user_id, queued_at in queued:
        first_of.setdefault(user_id, (queued_at, job_id))
    if not first_of:
        return None
    usage = await gpu_seconds(session, list(first_of), now)
    user_id = min(first_of, key=lambda user: (usage.get(user, 0.0), first_of[user]))
    return first_of[user_id][1]


async def gpu_seconds(session: AsyncSession, user_ids: list[int], now: dt.datetime) -> dict[int, float]:
    """Each member's GPU time in the window: their jobs' start to finish (or to now, if running)."""
    rows = await session.execute(
        select(Job.user_id, Job.started_at, Job.finished_at).where(
            Job.user_id.in_(user_ids), Job.started_at > now - USAGE_WINDOW
        )
    )
    used: dict[int, float] = {}
    for user_id, started_at, finished_at in rows:
        if started_at is not None:  # the query's condition: for the type checker
            seconds = ((finished_at or now) - started_at).total_seconds()
            used[user_id] = used.get(user_id, 0.0) + max(0.0, seconds)
    return used


async def claim_turn(
    session: AsyncSession,
    job_id: uuid.UUID,
    worker: WorkerProcess,
    recovery: RecoverySettings,
    *,
    dispatch: int | None = None,
) -> Claimed:
    """Claim the job this message should run (see the module's docstring); one transaction."""
    token = await session.get(Job, job_id, populate_existing=True)
    is_turn = (
        token is not None
        and token.status == JobStatus.QUEUED
        and token.spec.get("mode") == "relax"
        and (dispatch is None or dispatch == token.dispatch)
    )
    if not is_turn or token is None:  # fast, stale, or a takeover: the message's own job, as before
        return Claimed(await claim_job(session, job_id, worker, recovery, dispatch=dispatch))
    now = utcnow()
    chosen = await next_in_line(session, now)
    if chosen is not None and chosen != token.id:
        claimed = await claim_job(session, chosen, worker, recovery)
        if claimed is not None:
            moved = await session.execute(
                update(Job)
                .where(Job.id == token.id, Job.status == JobStatus.QUEUED, Job.dispatch == token.dispatch)
                .values(dispatch=Job.dispatch + 1, enqueued_at=now)
                .returning(Job.id)
            )
            if moved.scalar_one_or_none() is None:  # claimed or cancelled meanwhile: nothing to send
                return Claimed(claimed)
            return Claimed(claimed, resend=await session.get(Job, token.id, populate_existing=True))
    return Claimed(await claim_job(session, job_id, worker, recovery, dispatch=dispatch))
