"""What moderators do to and learn about one member or the server's queue: credits, `/mod user`,
`/mod queue` and its cancel buttons."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ACTIVE_STATUSES, Ban, Job, JobStatus, Strike, StrikeSource, User
from sojourn.clock import utcnow
from sojourn.errors import JobAlreadyEnded, JobNotFound, UserError
from sojourn.services import credits, lifecycle, queue_info
from sojourn.services.moderation import audit_log, bans, strikes
from sojourn.services.moderation.audit_log import AuditAction
from sojourn.services.moderation.permissions import Actor, require_moderator
from sojourn.services.moderation.server_settings import server_moderation
from sojourn.settings import ModerationSettings

MAX_GRANT = 1_000_000


@dataclass(frozen=True)
class Grant:
    applied: bool  # False: this request was already applied (a retry), nothing more moved
    amount: int  # what moved (a take-back stops at zero)
    balance: int


async def grant_credits(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    user_id: int,
    amount: int,
    *,
    reason: str,
    request_id: str,
) -> Grant:
    """`/mod credits`: through the ledger, once per `request_id` (the interaction), never below zero."""
    if amount == 0 or abs(amount) > MAX_GRANT:
        raise UserError(f"Give an amount between -{MAX_GRANT:,} and {MAX_GRANT:,}, not 0.")
    if not reason.strip():
        raise UserError("Say why (the reason option): it goes in the audit log.")
    async with sessions.begin() as session:
        guild_id = await require_moderator(session, actor)
        await credits.ensure_user(session, user_id)
        user = (await session.execute(select(User).where(User.id == user_id).with_for_update())).scalar_one()
        moved = amount if amount > 0 else max(amount, -user.balance)
        if moved == 0:
            raise UserError(f"<@{user_id}> has no credits left: there is nothing to take back.")
        applied = await credits.grant(
            session, user_id, moved, key=f"mod-credits:{request_id}", note=reason[:200]
        )
        if applied:
            await audit_log.record(
                session,
                AuditAction.CREDITS,
                guild_id=guild_id,
                actor_id=actor.user_id,
                target_user_id=user_id,
                detail=f"{moved:+d} credits"
                + (f" (asked {amount:+d}; the balance stops at 0)" if moved != amount else ""),
                reason=reason,
            )
        await session.refresh(user)
        return Grant(applied=applied, amount=moved if applied else 0, balance=user.balance)


@dataclass(frozen=True)
class MemberReport:
    user_id: int
    balance: int
    strikes_in_window: int
    window_hours: int
    strikes_before_ban: int
    strikes: list[Strike]  # recent, newest first
    blocks: list[Strike]  # recent prompts the word filter blocked
    bans: list[Ban]
    active_ban: Ban | None
    jobs: list[Job]  # recent, in this server


async def member_report(
    sessions: async_sessionmaker[AsyncSession], defaults: ModerationSettings, actor: Actor, user_id: int
) -> MemberReport:
    """`/mod user`."""
    async with sessions() as session:
        guild_id = await require_moderator(session, actor)
        server = await server_moderation(session, defaults, guild_id)
        user = await session.get(User, user_id)
        recent = await strikes.strikes_of(session, user_id, guild_id, limit=10)
        jobs = list(
            (
                await session.execute(
                    select(Job)
                    .where(Job.user_id == user_id, Job.guild_id == guild_id)
                    .order_by(Job.queued_at.desc())
                    .limit(10)
                )
            ).scalars()
        )
        since = utcnow() - dt.timedelta(hours=server.strike_window_hours)
        return MemberReport(
            user_id=user_id,
            balance=user.balance if user else 0,
            strikes_in_window=await strikes.strikes_since(session, user_id, guild_id, since),
            window_hours=server.strike_window_hours,
            strikes_before_ban=server.strikes_before_ban,
            strikes=recent,
            blocks=[strike for strike in recent if strike.source == StrikeSource.WORDS],
            bans=await bans.bans_of(session, user_id, guild_id),
            active_ban=await bans.active_ban(session, user_id, guild_id),
            jobs=jobs,
        )


@dataclass(frozen=True)
class QueueEntry:
    job: Job
    position: int | None  # queued jobs: in their mode's queue
    age_seconds: float


async def server_queue(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, *, limit: int = 25
) -> list[QueueEntry]:
    """`/mod queue`: this server's jobs running and waiting, running first, then oldest first."""
    async with sessions() as session:
        guild_id = await require_moderator(session, actor)
        jobs = list(
            (
                await session.execute(
                    select(Job)
                    .where(Job.guild_id == guild_id, Job.status.in_(ACTIVE_STATUSES))
                    .order_by(Job.status.desc(), Job.queued_at, Job.id)
                    .limit(limit)
                )
            ).scalars()
        )
        estimates = await queue_info.estimates_for(session, jobs, default_seconds=0, typical=0)
        now = utcnow()
        entries = []
        for job in jobs:
            estimate = estimates.get(job.id)
            entries.append(
                QueueEntry(
                    job=job,
                    position=estimate.position if estimate else None,
                    age_seconds=(now - job.queued_at).total_seconds(),
                )
            )
        return sorted(entries, key=lambda entry: (entry.job.status != JobStatus.RUNNING, entry.job.queued_at))


async def cancel_as_moderator(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, job_id: uuid.UUID, *, reason: str = ""
) -> Job:
    """A `/mod queue` cancel button: refunded in full, the owner's job ends, logged."""
    async with sessions.begin() as session:
        guild_id = await require_moderator(session, actor)
        job = await session.get(Job, job_id)
        if job is None or job.guild_id != guild_id:
            raise JobNotFound(job_id)
        if not await lifecycle.cancel_job(session, job_id):
            await session.refresh(job)
            raise JobAlreadyEnded(job_id, job.status.value)
        await audit_log.record(
            session,
            AuditAction.CANCEL,
            guild_id=guild_id,
            actor_id=actor.user_id,
            target_user_id=job.user_id,
            job_id=job_id,
            detail=job.prompt[:300],
            reason=reason,
        )
        await session.refresh(job)
        return job
