"""Bans: from one server or (carried over from before bans had servers) from all, timed or not.

A ban locks the user's row, as a submission's credit hold does, so a submission racing a ban
either commits first (and its jobs are cancelled by the ban) or sees the ban and is refused.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ACTIVE_STATUSES, Ban, Job, User
from sojourn.clock import utcnow
from sojourn.errors import Banned, UserError, discord_time
from sojourn.services import credits, lifecycle
from sojourn.services.moderation import audit_log
from sojourn.services.moderation.audit_log import AuditAction
from sojourn.services.moderation.permissions import Actor, require_moderator

MAX_BAN_HOURS = 24 * 365 * 10


@dataclass(frozen=True)
class BanOutcome:
    ban: Ban
    cancelled: list[uuid.UUID]  # the user's jobs it cancelled (all refunded)


def _in_force(now: dt.datetime):  # type: ignore[no-untyped-def]
    return (Ban.lifted_at.is_(None), or_(Ban.ends_at.is_(None), Ban.ends_at > now))


def bans_in_force(user_id: int, guild_id: int | None):  # type: ignore[no-untyped-def]
    """The conditions of a ban in force on the user here (one from every server counts too)."""
    scope = (
        Ban.guild_id.is_(None) if guild_id is None else or_(Ban.guild_id.is_(None), Ban.guild_id == guild_id)
    )
    return (Ban.user_id == user_id, scope, *_in_force(utcnow()))


async def active_ban(session: AsyncSession, user_id: int, guild_id: int | None) -> Ban | None:
    """The ban in force on the user here, latest ending first."""
    found = await session.execute(
        select(Ban).where(*bans_in_force(user_id, guild_id)).order_by(Ban.id.desc())
    )
    return ban_here(list(found.scalars()), guild_id)


def ban_here(found: Sequence[Ban], guild_id: int | None) -> Ban | None:
    """Of one user's bans in force (newest first), the one that applies here: the newest lasting one,
    else the latest ending."""
    here = [ban for ban in found if ban.guild_id is None or ban.guild_id == guild_id]
    if not here:
        return None
    return next((ban for ban in here if ban.ends_at is None), None) or max(here, key=lambda b: b.ends_at)  # type: ignore[arg-type,return-value]


async def bans_anywhere(session: AsyncSession, user_ids: Collection[int]) -> dict[int, list[Ban]]:
    """The bans in force on each of these users, from any server (`ban_here` picks one)."""
    found: dict[int, list[Ban]] = {}
    rows = await session.execute(
        select(Ban).where(Ban.user_id.in_(user_ids), *_in_force(utcnow())).order_by(Ban.id.desc())
    )
    for ban in rows.scalars():
        found.setdefault(ban.user_id, []).append(ban)
    return found


def in_force_on(user: Any):  # type: ignore[no-untyped-def]
    """Whether any ban is in force on `user` (a column: correlated, for a statement over users)."""
    return exists().where(Ban.user_id == user, *_in_force(utcnow()))


async def check_not_banned(session: AsyncSession, user_id: int, guild_id: int | None) -> None:
    ban = await active_ban(session, user_id, guild_id)
    if ban is not None:
        raise Banned(ban.reason, ban.ends_at)


async def _lock_user(session: AsyncSession, user_id: int) -> None:
    await credits.ensure_user(session, user_id)
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())


async def impose_ban(
    session: AsyncSession,
    *,
    guild_id: int,
    user_id: int,
    hours: float | None,
    reason: str,
    by: int | None,
) -> BanOutcome:
    """Ban now (in this transaction): cancel and refund the user's jobs in this server, log it."""
    await _lock_user(session, user_id)
    now = utcnow()
    ban = Ban(
        user_id=user_id,
        guild_id=guild_id,
        reason=reason[:500],
        banned_by=by,
        created_at=now,
        ends_at=now + dt.timedelta(hours=hours) if hours else None,
    )
    session.add(ban)
    await session.flush()
    active = await session.scalars(
        select(Job.id).where(
            Job.user_id == user_id, Job.guild_id == guild_id, Job.status.in_(ACTIVE_STATUSES)
        )
    )
    cancelled = [job_id for job_id in list(active) if await lifecycle.cancel_job(session, job_id)]
    until = f"until {ban.ends_at.isoformat(timespec='minutes')}" if ban.ends_at else "until lifted"
    await audit_log.record(
        session,
        AuditAction.BAN if by is not None else AuditAction.AUTO_BAN,
        guild_id=guild_id,
        actor_id=by,
        target_user_id=user_id,
        detail=f"{until}; {len(cancelled)} jobs cancelled and refunded",
        reason=reason,
    )
    return BanOutcome(ban=ban, cancelled=cancelled)


async def ban_user(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    user_id: int,
    *,
    hours: float | None = None,
    reason: str = "",
) -> BanOutcome:
    """`/mod ban`: at once, in this server; no hours: until unbanned."""
    if hours is not None and not 0 < hours <= MAX_BAN_HOURS:
        raise UserError(
            f"A ban lasts between 1 and {MAX_BAN_HOURS} hours, or leave hours out for until unbanned."
        )
    if user_id == actor.user_id:
        raise UserError("You cannot ban yourself.")
    async with sessions.begin() as session:
        guild_id = await require_moderator(session, actor)
        return await impose_ban(
            session, guild_id=guild_id, user_id=user_id, hours=hours, reason=reason, by=actor.user_id
        )


async def unban_user(sessions: async_sessionmaker[AsyncSession], actor: Actor, user_id: int) -> int:
    """`/mod unban`: lift every ban in force on the user in this server; returns how many."""
    async with sessions.begin() as session:
        guild_id = await require_moderator(session, actor)
        now = utcnow()
        lifted = await session.execute(
            update(Ban)
            .where(Ban.user_id == user_id, Ban.guild_id == guild_id, *_in_force(now))
            .values(lifted_at=now, lifted_by=actor.user_id)
            .returning(Ban.id)
        )
        count = len(lifted.all())
        if count == 0:
            raise UserError(f"<@{user_id}> is not banned on this server: nothing to lift.")
        await audit_log.record(
            session,
            AuditAction.UNBAN,
            guild_id=guild_id,
            actor_id=actor.user_id,
            target_user_id=user_id,
            detail=f"{count} ban(s) lifted",
        )
        return count


def describe_ban(ban: Ban) -> str:
    until = f"until {discord_time(ban.ends_at)}" if ban.ends_at else "until a moderator lifts it"
    return f"banned {until}" + (f": {ban.reason}" if ban.reason else "")


async def bans_of(session: AsyncSession, user_id: int, guild_id: int, limit: int = 10) -> list[Ban]:
    """The user's bans on this server (and from every server), newest first."""
    return list(
        (
            await session.execute(
                select(Ban)
                .where(Ban.user_id == user_id, or_(Ban.guild_id == guild_id, Ban.guild_id.is_(None)))
                .order_by(Ban.id.desc())
                .limit(limit)
            )
        ).scalars()
    )
