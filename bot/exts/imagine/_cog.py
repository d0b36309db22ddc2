from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import user_errors_as_replies
from bot.exts.imagine._submit import Submitted, submit_imagine

if TYPE_CHECKING:
    from bot.bot import SojournBot


class Imagine(commands.Cog):
    def __init__(self, bot: SojournBot) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Create four images from a prompt")
    @app_commands.describe(
        prompt="What to imagine, then parameters, e.g. a lighthouse in a storm --ar 16:9 --seed 7",
        image="A picture to start from (PNG, JPEG or WebP; at most 10 MB and 4096 px a side)",
    )
    @app_commands.guild_only()
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: str,
        image: discord.Attachment | None = None,
    ) -> None:
        # Acknowledge first (Discord allows 3 s; what follows needs the database). Privately, so a
        # mistake in the prompt is answered privately too; the jobs' messages follow publicly.
        await interaction.response.defer(ephemeral=True, thinking=True)
        self.bot.instrumentation.mark("deferred", interaction.id)
        submitted: Submitted | None = None
        async with user_errors_as_replies(interaction):
            submitted = await submit_imagine(self.bot, interaction, prompt, image)
        if submitted is not None:  # queued and paid for: from here on nothing is an error reply
            await self.bot.delivery.confirm_and_announce(
                submitted.jobs, interaction, submitted.confirmation()
            )
