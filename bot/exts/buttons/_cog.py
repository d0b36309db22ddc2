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
from sojourn.services.gallery import set_showcase, set_web_gallery
from sojourn.services.gallery.server import MAX_SHOWCASE_LIKES
from sojourn.services.moderation.permissions import Actor

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

    @server.command(name="gallery", description="The galleries and the showcase channel for this server")
    @app_commands.describe(
        web="on: public results made here may be in the galleries; off: none of them are",
        channel="post results that reach enough ❤ in this channel, once each",
        likes="how many ❤ a result needs for the showcase channel (0, the default: every public upscale)",
        showcase="off: post nothing more in the showcase channel",
    )
    async def gallery(
        self,
        interaction: discord.Interaction,
        web: Literal["on", "off"] | None = None,
        channel: discord.TextChannel | None = None,
        likes: app_commands.Range[int, 0, MAX_SHOWCASE_LIKES] = 0,
        showcase: Literal["off"] | None = None,
    ) -> None:
        async with user_errors_as_replies(interaction):
            # The gallery service checks Manage Server: Discord's default permissions can be changed.
            actor = Actor(interaction.user.id, interaction.guild_id, interaction.permissions.manage_guild)
            if web is None and channel is None and showcase is None:
                raise UserError(
                    "Say what to change: web (on or off), a showcase channel and its likes, or showcase:off."
                )
            if channel is not None and showcase is not None:
                raise UserError("Give a showcase channel or showcase:off, not both. Nothing was changed.")
            said = []
            if channel is not None:
                await set_showcase(self.bot.sessions, actor, channel.id, likes)
                said.append(
                    f"Every public upscale will be posted once in {channel.mention}."
                    if likes == 0
                    else f"Results that reach {likes} ❤ will be posted once in {channel.mention}."
                )
            if showcase is not None:
                await set_showcase(self.bot.sessions, actor, None)
                said.append("Nothing more will be posted in the showcase channel.")
            if web is not None:
                await set_web_gallery(self.bot.sessions, actor, web == "on")
                said.append(
                    "Public results made here may be in the galleries."
                    if web == "on"
                    else "No result made here is in the galleries now."
                )
            await interaction.response.send_message(" ".join(said), ephemeral=True)

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
