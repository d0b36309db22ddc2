from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import user_errors_as_replies
from bot.exts.gallery._showcase import post_if_due
from bot.exts.gallery._views import GalleryFilters, gallery_message

if TYPE_CHECKING:
    from bot.bot import SojournBot


class Gallery(commands.Cog):
    def __init__(self, bot: SojournBot) -> None:
        self.bot = bot

    @app_commands.command(name="gallery", description="Browse this server's public results, one at a time")
    @app_commands.describe(
        sort="new: newest first; top: most ❤ first",
        period="only results finished in the last day, week or month",
        user="only this person's results (pick yourself for yours)",
        search="words of the prompt",
        liked="only results you ❤",
    )
    async def gallery(
        self,
        interaction: discord.Interaction,
        sort: Literal["new", "top"] = "new",
        period: Literal["day", "week", "month", "all"] = "all",
        user: discord.User | None = None,
        search: app_commands.Range[str, 1, 200] | None = None,
        liked: bool = False,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with user_errors_as_replies(interaction):
            filters = GalleryFilters.of(sort, period, user.id if user else None, liked, search)
            await (await gallery_message(self.bot, interaction, filters, 0)).send(interaction)

    @commands.Cog.listener()
    async def on_favorite_added(self, job_id: uuid.UUID) -> None:
        """A ❤ under a result message (`bot.exts.buttons`): it may now be due for the showcase."""
        await post_if_due(self.bot, job_id)

    @commands.Cog.listener()
    async def on_result_delivered(self, job_id: uuid.UUID) -> None:
        """A result was shown (`bot.delivery`): a showcase of 0 ❤ takes every public upscale."""
        await post_if_due(self.bot, job_id)
