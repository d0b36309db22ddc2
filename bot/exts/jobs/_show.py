"""What /show and /cancel do, between the interaction and the services."""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING

import discord

from bot.delivery import DEFAULT_FILESIZE_LIMIT, grid_upload
from bot.messages import JobCard
from bot.result_view import result_view
from sojourn.services.jobs import cancel_user_job, parse_job_id
from sojourn.services.results import grid_key_of, job_to_show

if TYPE_CHECKING:
    from bot.bot import SojournBot


async def show_job(bot: SojournBot, interaction: discord.Interaction, job_text: str) -> None:
    """Re-post a finished job (the user's own, or a public one) with working buttons."""
    job_id = parse_job_id(job_text)
    async with bot.sessions() as session:
        job = await job_to_show(session, interaction.user.id, job_id)
    key = grid_key_of(job)
    assert key is not None
    limit = interaction.guild.filesize_limit if interaction.guild else DEFAULT_FILESIZE_LIMIT
    grid, filename = await asyncio.to_thread(grid_upload, bot.storage.get, key, limit)
    card = JobCard.of(job.prompt, job.user_id, job.spec)
    await interaction.response.send_message(
        card.done(shown_by=interaction.user.id),
        file=discord.File(io.BytesIO(grid), filename),
        view=result_view(job.id),
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
