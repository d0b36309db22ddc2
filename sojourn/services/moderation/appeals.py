"""Appeals of blocked prompts, decided by the server's own moderators.

Accepting runs the blocked prompt as its author typed it, with the rules it was blocked by
excused (any other rule still applies), charged then, and revokes the strike. The decision and
the new jobs are one transaction, so a double-clicked Accept runs the prompt once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Appeal, AppealStatus, Job, Strike, StrikeSource
from sojourn.clock import utcnow
from sojourn.errors import UserError
from sojourn.queue import JobQueue
from sojourn.services.moderation import audit_log, bans, strikes, words
from sojourn.services.moderation.audit_log import AuditAction
from sojourn.services.moderation.permissions import Actor, require_moderator
from sojourn.services.moderation.server_settings import server_moderation
from sojourn.services.submission import Origin, enqueue_jobs, insert_prompt_jobs
from sojourn.settings import Settings

MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class PendingAppeal:
    appeal: Appeal
    strike: Strike


@dataclass(frozen=True)
class Decision:
    appeal: Appeal
    strike: Strike
    jobs: list[Job] = field(default_factory=list)  # accepted: what the prompt made
    problem: str | None = None  # accepted, but the prompt could not run (said to both sides)


async def file_appeal(
    sessions: async_sessionmaker[AsyncSession], user_id: int, strike_id: int, reason: str
) -> Appeal:
    """The Appeal button's form: one appeal per blocked prompt, by its author."""
    reason = reason.strip()
    if not reason:
        raise UserError("Say why the prompt should be allowed: the moderators read it.")
    async with sessions.begin() as session:
        strike = await _appealable(session, user_id, strike_id)
        appeal = Appeal(
            strike_id=strike_id,
            user_id=user_id,
            guild_id=strike.guild_id,
            reason=reason[:MAX_REASON_CHARS],
            status=AppealStatus.PENDING,
            created_at=utcnow(),
        )
        session.add(appeal)
        await session.flush()
        await audit_log.record(
            session,
            AuditAction.APPEAL,
            guild_id=strike.guild_id,
            actor_id=user_id,
            target_user_id=user_id,
            detail=f"appeal {appeal.id} of: {strike.prompt[:300]}",
            reason=reason,
        )
        return appeal


async def check_appealable(sessions: async_sessionmaker[AsyncSession], user_id: int, strike_id: int) -> None:
    """Before the Appeal form opens: refuse at once what `file_appeal` would refuse after typing."""
    async with sessions() as session:
        await _appealable(session, user_id, strike_id)


async def _appealable(session: AsyncSession, user_id: int, strike_id: int) -> Strike:
    strike = await session.get(Strike, strike_id)
    if strike is None or strike.user_id != user_id or strike.source != StrikeSource.WORDS:
        raise UserError("There is no blocked prompt of yours to appeal here.")
    if strike.revoked_at is not None:
        raise UserError("That strike was already lifted: there is nothing to appeal.")
    if strike.guild_id is None:
        raise UserError(
            "Appeals go to a server's moderators, and this prompt was blocked in a direct message: "
            "rephrase it, or run it in a server."
        )
    existing = await session.scalar(select(Appeal).where(Appeal.strike_id == strike_id))
    if existing is not None:
        raise UserError(f"You already appealed this block; it is {existing.status.value}.")
    return strike


async def pending_appeals(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, limit: int = 10
) -> list[PendingAppeal]:
    """`/mod appeals`: oldest first."""
    async with sessions() as session:
        guild_id = await require_moderator(session, actor)
        rows = await session.execute(
            select(Appeal, Strike)
            .join(Strike, Strike.id == Appeal.strike_id)
            .where(Appeal.guild_id == guild_id, Appeal.status == AppealStatus.PENDING)
            .order_by(Appeal.id)
            .limit(limit)
        )
        return [PendingAppeal(appeal, strike) for appeal, strike in rows.all()]


async def _pending(session: AsyncSession, guild_id: int, appeal_id: int) -> tuple[Appeal, Strike]:
    appeal = (
        await session.execute(select(Appeal).where(Appeal.id == appeal_id).with_for_update())
    ).scalar_one_or_none()
    if appeal is None or appeal.guild_id != guild_id:
        raise UserError("That appeal does not exist on this server.")
    if appeal.status != AppealStatus.PENDING:
        raise UserError(f"That appeal was already {appeal.status.value} (by <@{appeal.decided_by}>).")
    strike = await session.get(Strike, appeal.strike_id)
    assert strike is not None
    return appeal, strike


async def accept_appeal(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    queue: JobQueue,
    actor: Actor,
    appeal_id: int,
) -> Decision:
    """Accept: run the prompt now (charged now), lift the strike, log it."""
    async with sessions.begin() as session:
        guild_id = await require_moderator(session, actor)
        appeal, strike = await _pending(session, guild_id, appeal_id)
        now = utcnow()
        strike.revoked_at = now
        await session.flush()
        await _lift_automatic_ban(session, settings, actor, strike)
        jobs: list[Job] = []
        problem = None
        try:
            async with session.begin_nested():
                jobs = await insert_prompt_jobs(
                    session,
                    settings,
                    user_id=strike.user_id,
                    text=strike.prompt,
                    origin=Origin(guild_id=strike.guild_id, channel_id=strike.channel_id),
                    excused=frozenset(strike.patterns),
                    check_channel=False,
                )
        except words.WordsBlocked as blocked:
            problem = "it also matches " + "; ".join(match.describe() for match in blocked.matches)
        except UserError as error:
            problem = error.message
        appeal.status, appeal.decided_by, appeal.decided_at = AppealStatus.ACCEPTED, actor.user_id, now
        appeal.job_id = jobs[0].id if jobs else None
        await audit_log.record(
            session,
            AuditAction.APPEAL_ACCEPTED,
            guild_id=guild_id,
            actor_id=actor.user_id,
            target_user_id=strike.user_id,
            job_id=appeal.job_id,
            detail=f"appeal {appeal.id}: strike lifted; "
            + (f"{len(jobs)} job(s) queued" if jobs else f"the prompt could not run: {problem}"),
        )
    await enqueue_jobs(sessions, queue, jobs)
    return Decision(appeal=appeal, strike=strike, jobs=jobs, problem=problem)


async def _lift_automatic_ban(
    session: AsyncSession, settings: Settings, actor: Actor, strike: Strike
) -> None:
    """An automatic ban stands on its strikes: with this one lifted and too few left, it goes too."""
    assert strike.guild_id is not None
    ban = await bans.active_ban(session, strike.user_id, strike.guild_id)
    if ban is None or ban.banned_by is not None or ban.guild_id != strike.guild_id:
        return  # no ban, or a moderator's: that is a decision of its own
    server = await server_moderation(session, settings.moderation, strike.guild_id)
    since = utcnow() - dt.timedelta(hours=server.strike_window_hours)
    if (
        await strikes.strikes_since(session, strike.user_id, strike.guild_id, since)
        >= server.strikes_before_ban
    ):
        return
    ban.lifted_at, ban.lifted_by = utcnow(), actor.user_id
    await audit_log.record(
        session,
        AuditAction.UNBAN,
        guild_id=strike.guild_id,
        actor_id=actor.user_id,
        target_user_id=strike.user_id,
        detail="the automatic ban went with the strike an appeal lifted",
    )


async def reject_appeal(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, appeal_id: int, *, reason: str = ""
) -> Decision:
    """Reject: the strike stays."""
    async with sessions.begin() as session:
        guild_id = await require_moderator(session, actor)
        appeal, strike = await _pending(session, guild_id, appeal_id)
        appeal.status, appeal.decided_by, appeal.decided_at = AppealStatus.REJECTED, actor.user_id, utcnow()
        await audit_log.record(
            session,
            AuditAction.APPEAL_REJECTED,
            guild_id=guild_id,
            actor_id=actor.user_id,
            target_user_id=strike.user_id,
            detail=f"appeal {appeal.id}: the strike stays",
            reason=reason,
        )
        return Decision(appeal=appeal, strike=strike)
