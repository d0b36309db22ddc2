"""The Appeal button under a blocked prompt's private answer, and the form it opens.

The button's custom_id carries the strike (`sj:appeal:<strike id>`), and so does the form's
(`sj:appeal-form:<strike id>`). Both are hostile input: `appeals.file_appeal` reloads the strike
and checks that it is the presser's, still in force and not appealed yet. The form's submit is
answered by a listener (`answer_appeal_form`) from its custom_id and the typed reason, so a
restart while the form is open loses nothing.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.errors import errors_as_replies
from sojourn.services.moderation.appeals import MAX_REASON_CHARS, check_appealable, file_appeal

if TYPE_CHECKING:
    from bot.bot import SojournBot

APPEAL_TEMPLATE = r"sj:appeal:(?P<strike>[0-9]{1,18})"
APPEAL_FORM_TEMPLATE = re.compile(r"sj:appeal-form:(?P<strike>[0-9]{1,18})")
REASON_ID = "reason"


class AppealButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=APPEAL_TEMPLATE):
    def __init__(self, strike_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.primary,
                label="Appeal",
                emoji="⚖️",
                custom_id=f"sj:appeal:{strike_id}",
            )
        )
        self.strike_id = strike_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AppealButton:
        return cls(int(match["strike"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        async with errors_as_replies(interaction):
            await check_appealable(
                cast("SojournBot", interaction.client).sessions, interaction.user.id, self.strike_id
            )
            await interaction.response.send_modal(AppealForm(self.strike_id))


class AppealForm(discord.ui.Modal):
    """Why the blocked prompt should be allowed, in the author's words, for the moderators."""

    def __init__(self, strike_id: int) -> None:
        super().__init__(
            title="Appeal a blocked prompt",
            custom_id=f"sj:appeal-form:{strike_id}",
            timeout=15 * 60,  # only how long discord.py keeps this object; the listener answers later
        )
        self.add_item(
            discord.ui.TextInput(
                label="Why should this prompt be allowed?",
                style=discord.TextStyle.paragraph,
                placeholder="e.g. 'shot' here means a photograph: a portrait shot of a lighthouse keeper",
                max_length=MAX_REASON_CHARS,
                custom_id=REASON_ID,
            )
        )

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        return None  # answered by `answer_appeal_form`, which also works after a restart


def appeal_view(strike_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(AppealButton(strike_id))
    return view


def _typed_reason(data: dict[str, Any]) -> str:
    """The reason typed into the form, from the raw submit payload ("" if it is not there)."""
    for row in data.get("components", []):
        for component in row.get("components", [row.get("component")] if "component" in row else []):
            if isinstance(component, dict) and component.get("custom_id") == REASON_ID:
                return str(component.get("value") or "")
    return ""


async def answer_appeal_form(interaction: discord.Interaction[Any]) -> None:
    """File the appeal of a submitted form (any other interaction is left alone)."""
    if interaction.type != discord.InteractionType.modal_submit:
        return
    data = dict(interaction.data or {})
    match = APPEAL_FORM_TEMPLATE.fullmatch(str(data.get("custom_id", "")))
    if match is None:
        return
    bot = cast("SojournBot", interaction.client)
    async with errors_as_replies(interaction):
        appeal = await file_appeal(
            bot.sessions, interaction.user.id, int(match["strike"]), _typed_reason(data)[:MAX_REASON_CHARS]
        )
        await interaction.response.send_message(
            f"Your appeal (#{appeal.id}) is with this server's moderators. Nothing runs until one of "
            "them decides; you will be told in the channel where you typed the prompt.",
            ephemeral=True,
        )
