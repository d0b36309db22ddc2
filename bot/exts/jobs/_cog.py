from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import user_errors_as_replies
from bot.exts.jobs._show import cancel_and_describe, delete_and_describe, show_job
from db.models import ACTIVE_STATUSES, Job
from sojourn.services.gallery import set_private
from sojourn.services.gallery.showcase import showcase_message_of
from sojourn.services.job_queries import parse_job_id, recent_jobs
from sojourn.services.results import deletable_jobs, showable_jobs

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
        self,
        interaction: discord.Interaction,
        current: str,
        find: Callable[[AsyncSession, int], Awaitable[list[Job]]],
    ) -> list[app_commands.Choice[str]]:
        async with self.bot.sessions() as session:
            jobs = await find(session, interaction.user.id)
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
        return await self._job_choices(interaction, current, showable_jobs)

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
        return await self._job_choices(interaction, current, _active_jobs)

    @app_commands.command(name="delete", description="Delete one of your results: its message goes too")
    @app_commands.describe(job="The result (start typing its prompt)")
    async def delete(self, interaction: discord.Interaction, job: str) -> None:
        async with user_errors_as_replies(interaction):
            await interaction.response.defer(ephemeral=True, thinking=True)
            text = await delete_and_describe(self.bot, interaction.user.id, job)
            await interaction.followup.send(text, ephemeral=True)

    @delete.autocomplete("job")
    async def _delete_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._job_choices(interaction, current, deletable_jobs)

    @app_commands.command(
        name="visibility", description="Take one of your results out of the galleries, or back"
    )
    @app_commands.describe(
        job="The result (start typing its prompt)",
        to="private: out of every gallery and others' buttons; public: back in the galleries",
    )
    async def visibility(
        self, interaction: discord.Interaction, job: str, to: Literal["private", "public"]
    ) -> None:
        async with user_errors_as_replies(interaction):
            job_id = parse_job_id(job)
            await set_private(self.bot.sessions, interaction.user.id, job_id, to == "private")
            if to == "private":  # out of the showcase channel too
                async with self.bot.sessions() as session:
                    posted = await showcase_message_of(session, job_id)
                if posted is not None:
                    await self.bot.delivery.remove_message(*posted)
            text = (
                f"Result `{job.strip()}` is private now: it is out of every gallery, and only you can "
                "press its buttons. Its message stays where it was posted."
                if to == "private"
                else f"Result `{job.strip()}` is public again: it can be in the galleries."
            )
            await interaction.response.send_message(text, ephemeral=True)

    @visibility.autocomplete("job")
    async def _visibility_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._job_choices(interaction, current, deletable_jobs)


async def _active_jobs(session: AsyncSession, user_id: int) -> list[Job]:
    return await recent_jobs(session, user_id, statuses=ACTIVE_STATUSES)
