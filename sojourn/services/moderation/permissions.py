"""Who is a moderator: Manage Server, or the server's moderator role (`/mod settings`).

The adapter says what Discord says about the member (their permission and roles, from the
interaction itself); the decision is made here, for every command and every button press.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import GuildSettings
from sojourn.errors import NotAModerator, UserError


@dataclass(frozen=True)
class Actor:
    """A member acting in a server, as the interaction describes them."""

    user_id: int
    guild_id: int | None
    manage_guild: bool = False
    role_ids: frozenset[int] = field(default_factory=frozenset)


async def is_moderator(session: AsyncSession, actor: Actor) -> bool:
    if actor.guild_id is None:
        return False
    if actor.manage_guild:
        return True
    row = await session.get(GuildSettings, actor.guild_id)
    return bool(row and row.moderator_role_id is not None and row.moderator_role_id in actor.role_ids)


async def require_moderator(session: AsyncSession, actor: Actor) -> int:
    """The server's id, or `NotAModerator` (nothing is changed before this passes)."""
    if actor.guild_id is None:
        raise UserError("Moderation works in a server channel, not in direct messages.")
    if not await is_moderator(session, actor):
        raise NotAModerator()
    return actor.guild_id
