from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import user_errors_as_replies
from bot.exts.imagine._submit import submit_imagine

if TYPE_CHECKING:
    from bot.bot import SojournBot


log = logging.getLogger(__name__)


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
        # mistake in the prompt is answered privately too: the public message is the bot's own.
        await interaction.response.defer(ephemeral=True, thinking=True)
        self.bot.instrumentation.mark("deferred", interaction.id)
        async with self.bot.submission_slots, user_errors_as_replies(interaction):
            confirmation = await submit_imagine(self.bot, interaction, prompt, image)
            try:
                await interaction.followup.send(confirmation, ephemeral=True)
            except discord.HTTPException:  # the jobs are queued and shown in the channel anyway
                log.warning("could not confirm /imagine to user %s", interaction.user.id, exc_info=True)
