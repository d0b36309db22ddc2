from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import errors_as_replies, user_errors_as_replies
from bot.exts.buttons._presses import handle_press
from bot.exts.buttons._remix import REMIX_MODAL_TEMPLATE, submitted_remix_text
from sojourn.actions import action_for
from sojourn.errors import UserError
from sojourn.services.buttons import set_anyone_can_press

if TYPE_CHECKING:
    from bot.bot import SojournBot


class Buttons(commands.Cog):
    def __init__(self, bot: SojournBot) -> None:
        self.bot = bot

    server = app_commands.Group(
        name="server",
        description="Server settings for sojourn (Manage Server)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    @server.command(name="buttons", description="Who may press the buttons under someone's result")
    @app_commands.describe(who="owner: only whoever asked; anyone: anyone in the server, who then pays")
    async def buttons(self, interaction: discord.Interaction, who: Literal["owner", "anyone"]) -> None:
        async with user_errors_as_replies(interaction):
            # Discord hides the command from others, but an admin can change that: check here too.
            if interaction.guild_id is None or not interaction.permissions.manage_guild:
                raise UserError("Only members with the Manage Server permission can change this.")
            await set_anyone_can_press(self.bot.sessions, interaction.guild_id, who == "anyone")
            text = (
                "Anyone here may now press the buttons under any public result; whoever presses pays."
                if who == "anyone"
                else "Only a result's owner may press its buttons now."
            )
            await interaction.response.send_message(text, ephemeral=True)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """A remix modal's submit: everything needed is in its custom_id and the edited prompt."""
        if interaction.type != discord.InteractionType.modal_submit:
            return
        data = dict(interaction.data or {})
        match = REMIX_MODAL_TEMPLATE.fullmatch(str(data.get("custom_id", "")))
        if match is None:
            return
        async with errors_as_replies(interaction):
            text = submitted_remix_text(data)
            if not text or not text.strip():
                raise UserError("The remixed prompt is empty: press the button again and edit the prompt.")
            await handle_press(
                self.bot,
                interaction,
                action_for(match["action"]),
                uuid.UUID(hex=match["job"]),
                int(match["index"]) or None,
                remix_text=text.strip(),
            )
