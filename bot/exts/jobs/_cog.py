from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import user_errors_as_replies
from bot.exts.jobs._show import cancel_and_describe, show_job
from db.models import ACTIVE_STATUSES, JobStatus
from sojourn.services.job_queries import recent_jobs

if TYPE_CHECKING:
    from bot.bot import SojournBot

CHOICE_PROMPT_CHARS = 60


def _choice(job_id: str, status: str, prompt: str) -> app_commands.Choice[str]:
    text = prompt.split(" --", 1)[0]
    text = text if len(text) <= CHOICE_PROMPT_CHARS else text[: CHOICE_PROMPT_CHARS - 1] + "…"
    return app_commands.Choice(name=f"{text} · {status} · {job_id[:8]}"[:100], value=job_id)


class Jobs(commands.Cog):
    def __init__(self, bot: SojournBot) -> None:
        self.bot = bot

    async def _job_choices(
        self, interaction: discord.Interaction, current: str, statuses: tuple[JobStatus, ...]
    ) -> list[app_commands.Choice[str]]:
        async with self.bot.sessions() as session:
            jobs = await recent_jobs(session, interaction.user.id, statuses=statuses, limit=100)
        typed = current.strip().lower()
        return [
            _choice(str(job.id), job.status.value, job.prompt)
            for job in jobs
            if not typed or typed in str(job.id) or typed in job.prompt.lower()
        ][:25]

    @app_commands.command(name="show", description="Post one of your results again, with its buttons")
    @app_commands.describe(job_id="The job (start typing its prompt)")
    @app_commands.guild_only()
    async def show(self, interaction: discord.Interaction, job_id: str) -> None:
        async with user_errors_as_replies(interaction):
            await show_job(self.bot, interaction, job_id)

    @show.autocomplete("job_id")
    async def _show_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._job_choices(interaction, current, (JobStatus.SUCCEEDED,))

    @app_commands.command(name="cancel", description="Stop a job that is waiting or running (refunded)")
    @app_commands.describe(job_id="The job (start typing its prompt); your latest one if left out")
    async def cancel(self, interaction: discord.Interaction, job_id: str | None = None) -> None:
        async with user_errors_as_replies(interaction):
            text = await cancel_and_describe(self.bot, interaction.user.id, job_id)
            await interaction.response.send_message(text, ephemeral=True)

    @cancel.autocomplete("job_id")
    async def _cancel_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._job_choices(interaction, current, ACTIVE_STATUSES)
