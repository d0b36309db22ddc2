"""The audit log: one append-only record of every moderation event, read newest first.

Nothing updates or deletes a row here; each change is logged in the transaction that makes it,
so the log and what happened cannot disagree.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import AuditEntry
from sojourn.clock import utcnow
from sojourn.services.moderation.permissions import Actor, require_moderator


class AuditAction(enum.StrEnum):
    BAN = "ban"
    AUTO_BAN = "auto_ban"  # strikes reached the server's limit
    UNBAN = "unban"
    CREDITS = "credits"
    WORDS_ADD = "words_add"
    WORDS_REMOVE = "words_remove"
    WORDS_ALLOW = "words_allow"
    BLOCK = "block"  # the word filter blocked a prompt: a strike
    WARN = "warn"  # a warn rule matched; the job ran
    APPEAL = "appeal"
    APPEAL_ACCEPTED = "appeal_accepted"
    APPEAL_REJECTED = "appeal_rejected"
    HOLD = "hold"  # the safety check held a result for review
    APPROVE = "approve"
    REMOVE = "remove"  # a held result removed (by a moderator, or at once in block mode): a strike
    DELETE = "delete"  # a result deleted by a moderator or its owner
    CANCEL = "cancel"  # a moderator cancelled someone's job
    SETTINGS = "settings"


async def record(
    session: AsyncSession,
    action: AuditAction,
    *,
    guild_id: int | None,
    actor_id: int | None,
    target_user_id: int | None = None,
    job_id: uuid.UUID | None = None,
    detail: str = "",
    reason: str = "",
) -> AuditEntry:
    """Append one event (`actor_id` None: sojourn did it by itself)."""
    entry = AuditEntry(
        guild_id=guild_id,
        actor_id=actor_id,
        action=action.value,
        target_user_id=target_user_id,
        job_id=job_id,
        detail=detail,
        reason=reason[:500],
        created_at=utcnow(),
    )
    session.add(entry)
    await session.flush()
    return entry


async def read_log(
    session: AsyncSession,
    guild_id: int | None,
    *,
    user_id: int | None = None,
    actions: Sequence[AuditAction] | None = None,
    before_id: int | None = None,
    limit: int = 10,
) -> list[AuditEntry]:
    """A page of the server's log, newest first: `before_id` is the last id of the previous page."""
    query = select(AuditEntry).where(AuditEntry.guild_id == guild_id)
    if user_id is not None:
        query = query.where(AuditEntry.target_user_id == user_id)
    if actions:
        query = query.where(AuditEntry.action.in_([action.value for action in actions]))
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list((await session.execute(query.order_by(AuditEntry.id.desc()).limit(limit))).scalars())


async def moderator_log(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    *,
    user_id: int | None = None,
    actions: Sequence[AuditAction] | None = None,
    before_id: int | None = None,
    limit: int = 10,
) -> list[AuditEntry]:
    """`/mod log`: a page of this server's log, for its moderators only."""
    async with sessions() as session:
        guild_id = await require_moderator(session, actor)
        return await read_log(
            session, guild_id, user_id=user_id, actions=actions, before_id=before_id, limit=limit
        )
