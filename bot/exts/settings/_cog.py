from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import user_errors_as_replies
from bot.exts.settings._views import panel_embed, panel_view
from sojourn.services.users import load_preferences

if TYPE_CHECKING:
    from bot.bot import SojournBot


class Settings(commands.Cog):
    def __init__(self, bot: SojournBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="settings", description="Your defaults for every prompt: quality, stylize, mode…"
    )
    async def settings(self, interaction: discord.Interaction) -> None:
        async with user_errors_as_replies(interaction):
            async with self.bot.sessions() as session:
                preferences = await load_preferences(session, interaction.user.id)
            await interaction.response.send_message(
                embed=panel_embed(preferences.defaults), view=panel_view(preferences.defaults), ephemeral=True
            )
