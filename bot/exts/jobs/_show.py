"""What /show and /cancel do, between the interaction and the services."""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING

import discord

from bot.delivery import DEFAULT_FILESIZE_LIMIT, grid_upload, upload_stem
from bot.messages import JobCard
from bot.result_view import result_view
from sojourn.services.buttons import favorite_count
from sojourn.services.jobs import cancel_user_job, parse_job_id
from sojourn.services.results import display_key_of, job_to_show

if TYPE_CHECKING:
    from bot.bot import SojournBot


async def show_job(bot: SojournBot, interaction: discord.Interaction, job_text: str) -> None:
    """Re-post a finished job (the user's own, or a public one) with working buttons."""
    job_id = parse_job_id(job_text)
    async with bot.sessions() as session:
        job = await job_to_show(session, interaction.user.id, job_id)
        favorites = await favorite_count(session, job.id, 1)
    key = display_key_of(job)
    assert key is not None
    limit = interaction.guild.filesize_limit if interaction.guild else DEFAULT_FILESIZE_LIMIT
    grid, filename = await asyncio.to_thread(grid_upload, bot.storage.get, key, limit, upload_stem(job))
    content = JobCard.of(job).done(shown_by=interaction.user.id)
    if job.parent_job_id is not None:  # lineage: what this result was made from
        source = f"image {job.parent_image_index} of " if job.parent_image_index else ""
        content += f"\n-# made from {source}`{job.parent_job_id}`"
    await interaction.response.send_message(
        content,
        file=discord.File(io.BytesIO(grid), filename),
        view=result_view(job, favorites=favorites, gallery_url=bot.settings.buttons.gallery_url),
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
