"""A moderator's private answer: sent once for a command, then replaced in place by its buttons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import discord

from bot.errors import user_errors_as_replies
from bot.exts.moderation._text import MAX_CONTENT


@dataclass
class Page:
    content: str = ""
    embeds: list[discord.Embed] = field(default_factory=list)
    view: discord.ui.View | None = None
    files: list[discord.File] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.content = self.content.strip()
        if len(self.content) > MAX_CONTENT:
            self.content = self.content[: MAX_CONTENT - 1] + "…"

    async def send(self, interaction: discord.Interaction[Any]) -> None:
        """Privately, as the answer to a command (deferred or not)."""
        view = self.view if self.view is not None else discord.utils.MISSING
        if interaction.response.is_done():
            await interaction.followup.send(
                self.content or discord.utils.MISSING,
                embeds=self.embeds,
                files=self.files,
                view=view,
                ephemeral=True,
            )
        else:
            await interaction.response.send_message(
                self.content or None, embeds=self.embeds, files=self.files, view=view, ephemeral=True
            )

    async def replace(self, interaction: discord.Interaction[Any]) -> None:
        """In place of the message whose button was pressed (the press was deferred)."""
        await interaction.edit_original_response(
            content=self.content or None, embeds=self.embeds, attachments=self.files, view=self.view
        )


@asynccontextmanager
async def answering(interaction: discord.Interaction[Any]) -> AsyncIterator[None]:
    """A `/mod` command's work: acknowledged privately at once (it reads the database), and a
    `UserError` (not a moderator, a bad value) answered privately as its message."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    async with user_errors_as_replies(interaction):
        yield
