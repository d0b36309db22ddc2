from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import user_errors_as_replies
from bot.exts.info._embeds import account_embed
from sojourn.services.account import account_overview

if TYPE_CHECKING:
    from bot.bot import SojournBot


class Info(commands.Cog):
    def __init__(self, bot: SojournBot) -> None:
        self.bot = bot

    @app_commands.command(name="info", description="Your credits, your queue, your mode and defaults")
    async def info(self, interaction: discord.Interaction) -> None:
        async with user_errors_as_replies(interaction):
            overview = await account_overview(
                self.bot.sessions, self.bot.settings, interaction.user.id, interaction.guild_id
            )
            await interaction.response.send_message(embed=account_embed(overview), ephemeral=True)
