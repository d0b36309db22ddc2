"""What /show, /cancel and /delete do, between the interaction and the services."""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING

import discord

from bot.exts.buttons import result_view
from bot.messages import JobCard
from bot.uploads import DEFAULT_FILESIZE_LIMIT, grid_upload, upload_stem
from db.models import Job
from sojourn.services.buttons import favorite_count, lineage
from sojourn.services.job_queries import parse_job_id
from sojourn.services.lifecycle import cancel_user_job
from sojourn.services.moderation.removal import delete_own
from sojourn.services.results import display_key_of, job_to_show

if TYPE_CHECKING:
    from bot.bot import SojournBot


def describe_lineage(chain: list[tuple[Job, int | None]]) -> str | None:
    """ "made from image 1 of `<upscale>`, made from image 2 of `<grid>`": a result's ancestors,
    newest first (`chain` as `lineage` returns it: the job itself first); None for an original."""
    steps = [
        f"image {index} of `{ancestor.id}`" if index else f"`{ancestor.id}`" for ancestor, index in chain[1:]
    ]
    if not steps:
        return None
    oldest = chain[-1][0]
    more = ", …" if oldest.parent_job_id is not None else ""  # longer than `lineage` reads, or purged
    return "made from " + ", made from ".join(steps) + more


async def show_job(bot: SojournBot, interaction: discord.Interaction, job_text: str) -> None:
    """Re-post a finished job (the user's own, or a public one) with working buttons and its lineage."""
    job_id = parse_job_id(job_text)
    async with bot.sessions() as session:
        job = await job_to_show(session, interaction.user.id, job_id)
        favorites = await favorite_count(session, job.id, 1)
        made_from = describe_lineage(await lineage(session, job.id))
    key = display_key_of(job)
    assert key is not None
    limit = interaction.guild.filesize_limit if interaction.guild else DEFAULT_FILESIZE_LIMIT
    grid, filename = await asyncio.to_thread(grid_upload, bot.storage.get, key, limit, upload_stem(job))
    content = JobCard.of(job).done(shown_by=interaction.user.id)
    if made_from is not None:
        content += f"\n-# {made_from}"
    await interaction.response.send_message(
        content,
        file=discord.File(io.BytesIO(grid), filename),
        view=result_view(job, favorites=favorites, gallery_url=bot.settings.gallery_url),
        allowed_mentions=discord.AllowedMentions.none(),
    )


async def cancel_and_describe(bot: SojournBot, user_id: int, job_text: str | None) -> str:
    """Cancel the job (refunded in full) and let its message say so; returns the private answer."""
    job_id = parse_job_id(job_text) if job_text else None
    job = await cancel_user_job(bot.sessions, user_id, job_id)
    bot.delivery.spawn(bot.delivery.deliver(job.id))  # its message now says "cancelled"
    stage = "before it started" if job.started_at is None else f"at {job.progress} %"
    return (
        f"Cancelled job `{job.id}` {stage}: all {job.cost} credits are back "
        "(a stopped render is thrown away, so none of it is charged)."
    )


async def delete_and_describe(bot: SojournBot, user_id: int, job_text: str) -> str:
    """Delete the user's own result and its message; returns the private answer."""
    removed = await delete_own(bot.sessions, bot.storage, user_id, job_text)
    if removed.showcase_message is not None:
        await bot.delivery.remove_message(*removed.showcase_message)
    gone = "It is out of /show and the galleries"
    if removed.channel_id is not None and removed.message_id is not None:
        if await bot.delivery.remove_message(removed.channel_id, removed.message_id):
            gone = "Its message is gone, and it is out of /show and the galleries"
        else:
            gone += " (its message was already gone, or I could not delete it)"
    return f"Deleted your result `{removed.job_id}`. {gone}. Its credits stay spent."
