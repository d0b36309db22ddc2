from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import user_errors_as_replies
from sojourn.services import users
from sojourn.services.users import MAX_OPTIONS

if TYPE_CHECKING:
    from bot.bot import SojournBot


class Prefer(commands.GroupCog, group_name="prefer", group_description="Your personal prompt shortcuts"):
    option = app_commands.Group(name="option", description="Parameter shortcuts: --name in a prompt")

    def __init__(self, bot: SojournBot) -> None:
        self.bot = bot
        super().__init__()

    async def option_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        async with self.bot.sessions() as session:
            preferences = await users.load_preferences(session, interaction.user.id)
        typed = current.strip().lstrip("-").lower()
        return [
            app_commands.Choice(name=f"--{name}: {value}"[:100], value=name)
            for name, value in sorted(preferences.options.items())
            if typed in name
        ][:25]

    @option.command(name="set", description="Save --name as a shortcut for some parameters")
    @app_commands.describe(
        name="The shortcut, used as --name", value="Parameters, e.g. --ar 16:9 --s 250 --no text"
    )
    async def option_set(self, interaction: discord.Interaction, name: str, value: str) -> None:
        async with user_errors_as_replies(interaction):
            saved = await users.set_option(
                self.bot.sessions, self.bot.rules, interaction.user.id, name, value
            )
            await interaction.response.send_message(
                f"Saved: `--{saved}` now means `{' '.join(value.split())}` in your prompts.", ephemeral=True
            )

    @option_set.autocomplete("name")
    async def _option_set_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.option_names(interaction, current)

    @option.command(name="list", description="Your shortcuts")
    async def option_list(self, interaction: discord.Interaction) -> None:
        async with user_errors_as_replies(interaction):
            async with self.bot.sessions() as session:
                preferences = await users.load_preferences(session, interaction.user.id)
            if not preferences.options:
                text = "You have no shortcuts yet: `/prefer option set name:mystyle value:--ar 16:9 --s 250`."
            else:
                lines = [f"`--{name}` → `{value}`" for name, value in sorted(preferences.options.items())]
                text = f"Your shortcuts ({len(lines)} of {MAX_OPTIONS}):\n" + "\n".join(lines)
            if preferences.suffix:
                text += f"\nSuffix on every prompt: `{preferences.suffix}`"
            await interaction.response.send_message(text[:2000], ephemeral=True)

    @option.command(name="delete", description="Forget a shortcut")
    @app_commands.describe(name="The shortcut to forget")
    async def option_delete(self, interaction: discord.Interaction, name: str) -> None:
        async with user_errors_as_replies(interaction):
            await users.delete_option(self.bot.sessions, interaction.user.id, name)
            await interaction.response.send_message(f"Forgot `--{name.strip().lstrip('-')}`.", ephemeral=True)

    @option_delete.autocomplete("name")
    async def _option_delete_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.option_names(interaction, current)

    @app_commands.command(
        name="suffix", description="Parameters added to the end of every prompt (empty: none)"
    )
    @app_commands.describe(text="e.g. --s 250 --no text; leave it out to clear the suffix")
    async def suffix(self, interaction: discord.Interaction, text: str = "") -> None:
        async with user_errors_as_replies(interaction):
            saved = await users.set_suffix(self.bot.sessions, self.bot.rules, interaction.user.id, text)
            message = f"Every prompt now ends with `{saved}`." if saved else "Your suffix is cleared."
            await interaction.response.send_message(message, ephemeral=True)
