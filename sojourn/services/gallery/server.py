"""`/server gallery`: whether a server's results may be in the galleries, and its showcase."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import GuildSettings
from sojourn.clock import utcnow
from sojourn.errors import UserError
from sojourn.services.moderation.permissions import Actor

MAX_SHOWCASE_LIKES = 10_000


def require_manage_server(actor: Actor) -> int:
    """The server's id, or a refusal in words (nothing is changed before this passes)."""
    if actor.guild_id is None:
        raise UserError("Gallery settings belong to a server: use this in a server channel.")
    if not actor.manage_guild:
        raise UserError(
            "Only members with Manage Server can change the gallery settings. Nothing was changed."
        )
    return actor.guild_id


async def _row(session: AsyncSession, guild_id: int) -> GuildSettings:
    row = await session.get(GuildSettings, guild_id, with_for_update=True)
    if row is None:
        row = GuildSettings(guild_id=guild_id, anyone_can_press=False, imagine_channels=[])
        session.add(row)
    row.updated_at = utcnow()
    return row


async def set_web_gallery(sessions: async_sessionmaker[AsyncSession], actor: Actor, on: bool) -> None:
    """`/server gallery web:on|off`: off takes every result made here out of the galleries at once."""
    guild_id = require_manage_server(actor)
    async with sessions.begin() as session:
        (await _row(session, guild_id)).web_gallery = on


async def set_showcase(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, channel_id: int | None, likes: int = 0
) -> None:
    """`/server gallery channel: likes:`: post results reaching `likes` ❤ to `channel_id` (0: every
    public upscale, as it is delivered); a `channel_id` of None turns the showcase off."""
    guild_id = require_manage_server(actor)
    if not 0 <= likes <= MAX_SHOWCASE_LIKES:
        raise UserError(
            f"A showcase needs 0 to {MAX_SHOWCASE_LIKES} ❤ (0: every public upscale). Nothing was changed."
        )
    async with sessions.begin() as session:
        row = await _row(session, guild_id)
        row.showcase_channel_id = channel_id
        row.showcase_likes = likes if channel_id is not None else None
