"""The showcase channel: a result that reaches its server's ❤ threshold is posted there once."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from typing import TYPE_CHECKING

import discord
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.exts.buttons import result_view
from bot.messages import JobCard
from bot.uploads import grid_upload, upload_stem
from db.models import GuildSettings, Job
from sojourn.services.gallery import record_showcase_message, record_showcase_post, showcase_due
from sojourn.services.results import display_key_of

if TYPE_CHECKING:
    from bot.bot import SojournBot

log = logging.getLogger(__name__)


def message_link(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str | None:
    if channel_id is None or message_id is None:
        return None
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


async def post_if_due(bot: SojournBot, job_id: uuid.UUID) -> bool:
    """Post the result to its server's showcase if it is due now; True if this call posted it.

    The post is claimed (`record_showcase_post`) before it is sent, so two ❤ at once, or a ❤
    taken back and given again, post it once; a post that fails is not retried.
    """
    async with bot.sessions.begin() as session:
        if not await showcase_due(session, job_id):
            return False
        job = (
            await session.execute(select(Job).where(Job.id == job_id).options(selectinload(Job.images)))
        ).scalar_one()
        server = await session.get(GuildSettings, job.guild_id)
        assert server is not None and server.showcase_channel_id is not None  # `showcase_due` checked
        channel_id = server.showcase_channel_id
        if not await record_showcase_post(session, job_id, channel_id):
            return False
    key = display_key_of(job)
    if key is None:
        return False
    limit = bot.delivery.channels.filesize_limit(job.guild_id)
    content = JobCard.of(job).done()
    original = message_link(job.guild_id, job.channel_id, job.message_id)
    if original is not None:
        content += f"\n-# ❤ showcase · [original message]({original})"
    try:
        image, filename = await asyncio.to_thread(grid_upload, bot.storage.get, key, limit, upload_stem(job))
        channel = bot.get_partial_messageable(channel_id, guild_id=job.guild_id)
        message = await channel.send(
            content,
            file=discord.File(io.BytesIO(image), filename),
            view=result_view(job, gallery_url=bot.settings.gallery_url),
            allowed_mentions=discord.AllowedMentions.none(),
        )
    except (OSError, discord.HTTPException):
        log.warning("could not post job %s to the showcase channel %s", job_id, channel_id, exc_info=True)
        return False
    await record_showcase_message(bot.sessions, job_id, message.id)
    return True
