"""Results the image safety check holds: decided when a job completes, then by a moderator.

Held results reach no one but moderators (no delivery, no buttons, no `/show`, no gallery)
until approved. In `block` mode a flagged result is removed at once instead: its cost comes back
(a `removed` ledger entry, beside the settle) and its owner gets a strike. A check that could not
run (no score) is held for review whatever the mode, except `off`: the check fails closed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from db.models import WITHHELD, HeldResult, HoldStatus, Image, Job, JobStatus, LedgerKind, StrikeSource
from sojourn.clock import utcnow
from sojourn.errors import UserError
from sojourn.services import credits
from sojourn.services.moderation import audit_log, strikes
from sojourn.services.moderation.audit_log import AuditAction
from sojourn.services.moderation.permissions import Actor, require_moderator
from sojourn.services.moderation.server_settings import server_moderation
from sojourn.settings import ModerationSettings, SafetyMode

CHECK_FAILED = "the image safety check could not run"


@dataclass(frozen=True)
class HoldVerdict:
    held: bool
    removed: bool  # block mode: removed and refunded at once
    reason: str = ""


async def is_held(session: AsyncSession, job_id: uuid.UUID) -> bool:
    """Held or removed by the check: not for anyone but moderators."""
    status = await session.scalar(select(HeldResult.status).where(HeldResult.job_id == job_id))
    return status in WITHHELD


async def preview_threshold(session: AsyncSession, defaults: ModerationSettings, job: Job) -> float | None:
    """The score from which the job's progress previews are withheld (they are posted before the
    result is screened); None where nothing would be held."""
    server = await server_moderation(session, defaults, job.guild_id)
    if server.safety_mode == SafetyMode.OFF or (job.age_restricted and server.allow_in_age_restricted):
        return None
    return server.safety_threshold


async def screen_result(
    session: AsyncSession, defaults: ModerationSettings, job_id: uuid.UUID
) -> HoldVerdict:
    """Hold (or remove) a just-completed job whose images the check flagged; in the completion's
    transaction, so no one sees the result before this is decided."""
    job = await session.get(Job, job_id)
    if job is None or job.status != JobStatus.SUCCEEDED:
        return HoldVerdict(held=False, removed=False)
    server = await server_moderation(session, defaults, job.guild_id)
    if server.safety_mode == SafetyMode.OFF:
        return HoldVerdict(held=False, removed=False)
    scores = list((await session.execute(select(Image.safety_score).where(Image.job_id == job_id))).scalars())
    failed = any(score is None for score in scores)
    top = max((score for score in scores if score is not None), default=None)
    flagged = failed or (top is not None and top >= server.safety_threshold)
    if not flagged:
        return HoldVerdict(held=False, removed=False)
    if job.age_restricted and server.allow_in_age_restricted and not failed:
        return HoldVerdict(held=False, removed=False)
    reason = CHECK_FAILED if failed else f"safety score {top:.2f} ≥ {server.safety_threshold:g}"
    remove = server.safety_mode == SafetyMode.BLOCK and not failed
    session.add(
        HeldResult(
            job_id=job_id,
            user_id=job.user_id,
            guild_id=job.guild_id,
            score=top,
            reason=reason,
            status=HoldStatus.REMOVED if remove else HoldStatus.HELD,
            created_at=utcnow(),
        )
    )
    await session.flush()
    if remove:
        await _remove(session, defaults, job, actor_id=None, reason=reason)
    else:
        await audit_log.record(
            session,
            AuditAction.HOLD,
            guild_id=job.guild_id,
            actor_id=None,
            target_user_id=job.user_id,
            job_id=job_id,
            detail=reason,
        )
    return HoldVerdict(held=True, removed=remove, reason=reason)


async def _remove(
    session: AsyncSession, defaults: ModerationSettings, job: Job, *, actor_id: int | None, reason: str
) -> None:
    """Take a result away: refunded (once), a strike for its owner, logged."""
    job.removed_at = utcnow()
    await credits.record_entry(
        session,
        user_id=job.user_id,
        amount=job.cost,
        kind=LedgerKind.REMOVED,
        key=f"removed:{job.id}",
        job_id=job.id,
        note=reason[:200],
    )
    await strikes.add_strike(
        session,
        defaults,
        user_id=job.user_id,
        guild_id=job.guild_id,
        source=StrikeSource.IMAGE,
        detail=f"result removed: {reason}",
        channel_id=job.channel_id,
        prompt=job.prompt,
        job_id=job.id,
    )
    await audit_log.record(
        session,
        AuditAction.REMOVE,
        guild_id=job.guild_id,
        actor_id=actor_id,
        target_user_id=job.user_id,
        job_id=job.id,
        detail=reason,
    )


async def held_results(session: AsyncSession, guild_id: int, limit: int = 25) -> list[HeldResult]:
    """What waits for a moderator here, oldest first."""
    return list(
        (
            await session.execute(
                select(HeldResult)
                .join(Job, Job.id == HeldResult.job_id)
                # A held result a moderator deleted meanwhile (`/mod delete`) waits for no one.
                .where(
                    HeldResult.guild_id == guild_id,
                    HeldResult.status == HoldStatus.HELD,
                    Job.removed_at.is_(None),
                )
                .order_by(HeldResult.created_at, HeldResult.job_id)
                .limit(limit)
            )
        ).scalars()
    )


@dataclass(frozen=True)
class HeldItem:
    held: HeldResult
    job: Job
    waiting: int  # held results in this server, this one included


async def next_held(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, after: uuid.UUID | None = None
) -> HeldItem | None:
    """`/mod review`: the oldest held result (the one after `after`, for Skip), or None."""
    async with sessions() as session:
        guild_id = await require_moderator(session, actor)
        waiting = await held_results(session, guild_id, limit=1000)
        if not waiting:
            return None
        position = next((i + 1 for i, held in enumerate(waiting) if held.job_id == after), 0)
        held = waiting[position % len(waiting)]
        job = (
            await session.execute(select(Job).where(Job.id == held.job_id).options(selectinload(Job.images)))
        ).scalar_one()
        return HeldItem(held=held, job=job, waiting=len(waiting))


async def _decide(session: AsyncSession, actor: Actor, job_id: uuid.UUID, status: HoldStatus) -> HeldResult:
    guild_id = await require_moderator(session, actor)
    decided = await session.execute(
        update(HeldResult)
        .where(
            HeldResult.job_id == job_id,
            HeldResult.guild_id == guild_id,
            HeldResult.status == HoldStatus.HELD,
            # Deleted meanwhile (`/mod delete`): nothing is left to decide.
            HeldResult.job_id.in_(select(Job.id).where(Job.id == job_id, Job.removed_at.is_(None))),
        )
        .values(status=status, decided_by=actor.user_id, decided_at=utcnow())
        .returning(HeldResult.job_id)
    )
    if decided.scalar_one_or_none() is None:
        raise UserError("That result is no longer waiting for review (another moderator decided it).")
    held = await session.get(HeldResult, job_id, populate_existing=True)
    assert held is not None
    return held


async def approve(sessions: async_sessionmaker[AsyncSession], actor: Actor, job_id: uuid.UUID) -> Job:
    """Approve: the result is delivered as if it had never been held (the bot posts it)."""
    async with sessions.begin() as session:
        held = await _decide(session, actor, job_id, HoldStatus.APPROVED)
        await audit_log.record(
            session,
            AuditAction.APPROVE,
            guild_id=held.guild_id,
            actor_id=actor.user_id,
            target_user_id=held.user_id,
            job_id=job_id,
            detail=held.reason,
        )
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def remove(
    sessions: async_sessionmaker[AsyncSession], defaults: ModerationSettings, actor: Actor, job_id: uuid.UUID
) -> Job:
    """Remove: refunded, a strike for its owner."""
    async with sessions.begin() as session:
        held = await _decide(session, actor, job_id, HoldStatus.REMOVED)
        job = await session.get(Job, job_id)
        assert job is not None
        await _remove(
            session, defaults, job, actor_id=actor.user_id, reason=f"removed after review ({held.reason})"
        )
        return job
