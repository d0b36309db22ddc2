"""Strikes: each blocked prompt and each removed result is one; too many in a window bans for a while."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Strike, StrikeSource
from sojourn.clock import utcnow
from sojourn.services import credits
from sojourn.services.moderation import audit_log, bans
from sojourn.services.moderation.audit_log import AuditAction
from sojourn.services.moderation.server_settings import server_moderation
from sojourn.settings import ModerationSettings
from sojourn.word_filter import WordMatch


async def add_strike(
    session: AsyncSession,
    defaults: ModerationSettings,
    *,
    user_id: int,
    guild_id: int | None,
    source: StrikeSource,
    detail: str,
    channel_id: int | None = None,
    prompt: str = "",
    patterns: Sequence[str] = (),
    job_id: uuid.UUID | None = None,
) -> Strike:
    """Record a strike; the one that reaches the server's limit in its window bans automatically."""
    await credits.ensure_user(session, user_id)
    strike = Strike(
        user_id=user_id,
        guild_id=guild_id,
        channel_id=channel_id,
        source=source,
        prompt=prompt,
        detail=detail[:500],
        patterns=list(patterns),
        job_id=job_id,
        created_at=utcnow(),
    )
    session.add(strike)
    await session.flush()
    if guild_id is None:
        return strike
    server = await server_moderation(session, defaults, guild_id)
    since = utcnow() - dt.timedelta(hours=server.strike_window_hours)
    count = await strikes_since(session, user_id, guild_id, since)
    if count >= server.strikes_before_ban and await bans.active_ban(session, user_id, guild_id) is None:
        await bans.impose_ban(
            session,
            guild_id=guild_id,
            user_id=user_id,
            hours=server.strike_ban_hours,
            reason=f"{count} strikes within {server.strike_window_hours} h",
            by=None,
        )
    return strike


async def strikes_since(session: AsyncSession, user_id: int, guild_id: int, since: dt.datetime) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Strike)
        .where(
            Strike.user_id == user_id,
            Strike.guild_id == guild_id,
            Strike.revoked_at.is_(None),
            Strike.created_at > since,
        )
    )
    return int(count or 0)


async def record_block(
    sessions: async_sessionmaker[AsyncSession],
    defaults: ModerationSettings,
    *,
    user_id: int,
    guild_id: int | None,
    channel_id: int | None,
    prompt: str,
    matches: Sequence[WordMatch],
) -> int:
    """A prompt the word filter blocked: a strike holding the prompt (for an appeal), logged."""
    detail = "; ".join(match.describe() for match in matches)
    async with sessions.begin() as session:
        strike = await add_strike(
            session,
            defaults,
            user_id=user_id,
            guild_id=guild_id,
            source=StrikeSource.WORDS,
            detail=detail,
            channel_id=channel_id,
            prompt=prompt,
            patterns=[match.rule.pattern for match in matches],
        )
        await audit_log.record(
            session,
            AuditAction.BLOCK,
            guild_id=guild_id,
            actor_id=None,
            target_user_id=user_id,
            detail=f"{detail[:1500]} in: {prompt[:300]}",
        )
        return strike.id


async def strikes_of(session: AsyncSession, user_id: int, guild_id: int, limit: int = 10) -> list[Strike]:
    return list(
        (
            await session.execute(
                select(Strike)
                .where(Strike.user_id == user_id, Strike.guild_id == guild_id)
                .order_by(Strike.id.desc())
                .limit(limit)
            )
        ).scalars()
    )
