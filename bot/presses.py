"""A click on a result's button (or a remix modal's submit), between the interaction and the service.

Nothing here trusts the custom_id beyond its shape: `sojourn.services.buttons` reloads the job
and checks the press (does the job and image exist, may this user press, is it a repeat).
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import TYPE_CHECKING, Any

import discord

from bot.channels import check_can_post
from bot.result_view import single_image_view
from sojourn.services.buttons import (
    ACTION_NAMES,
    Action,
    Press,
    check_may_press,
    load_pressable_job,
    press_button,
    toggle_favorite,
)
from sojourn.services.jobs import Origin
from sojourn.services.users import load_preferences

if TYPE_CHECKING:
    from bot.bot import SojournBot

log = logging.getLogger(__name__)

REMIX_MODAL_TEMPLATE = re.compile(r"sj:m:(?P<action>v|r|vs|vt):(?P<job>[0-9a-f]{32}):(?P<index>[0-4])")
REMIX_PROMPT_ID = "prompt"
MAX_REMIX_PROMPT = 2000


class RemixModal(discord.ui.Modal):
    """The prompt, editable before a variation or re-roll (remix mode).

    Its submit is handled statelessly by the buttons extension's listener, from the custom_id
    and the submitted text, so a bot restart while the modal is open loses nothing.
    """

    def __init__(self, action: Action, job_id: uuid.UUID, index: int | None, prompt: str) -> None:
        super().__init__(
            title=f"Remix: {ACTION_NAMES[action]}"[:45],
            custom_id=f"sj:m:{action.value}:{job_id.hex}:{index or 0}",
            # Only bounds how long discord.py keeps this object; the listener answers later submits.
            timeout=15 * 60,
        )
        self.add_item(
            discord.ui.TextInput(
                label="Prompt (edit it, parameters included)",
                style=discord.TextStyle.paragraph,
                default=prompt[:MAX_REMIX_PROMPT],
                max_length=MAX_REMIX_PROMPT,
                custom_id=REMIX_PROMPT_ID,
            )
        )

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        return None  # answered by the listener (bot/exts/buttons), which also works after a restart


def submitted_remix_text(data: dict[str, Any]) -> str | None:
    """The prompt typed into a remix modal, from the raw submit payload (None if it is not there)."""
    for row in data.get("components", []):
        for component in row.get("components", [row.get("component")] if "component" in row else []):
            if isinstance(component, dict) and component.get("custom_id") == REMIX_PROMPT_ID:
                value = component.get("value")
                return str(value) if value is not None else None
    return None


def _message_link(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str | None:
    if channel_id is None or message_id is None:
        return None
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


async def handle_press(
    bot: SojournBot,
    interaction: discord.Interaction[Any],
    action: Action,
    job_id: uuid.UUID,
    index: int | None,
    *,
    remix_text: str | None = None,
) -> None:
    press = Press(
        action=action,
        job_id=job_id,
        index=index,
        presser_id=interaction.user.id,
        origin=Origin(guild_id=interaction.guild_id, channel_id=interaction.channel_id),
        remix_text=remix_text,
    )
    if action == Action.FAVORITE:
        await _toggle_favorite(bot, interaction, press)
        return
    if remix_text is None and action.remixable:
        async with bot.sessions() as session:
            remix = (await load_preferences(session, interaction.user.id)).defaults.remix
            if remix:  # the job is checked (and its prompt read) only for the modal
                job = await load_pressable_job(session, press)
                await check_may_press(session, job, press)  # no modal for someone who may not press
        if remix:
            await interaction.response.send_modal(RemixModal(action, job_id, index, job.prompt))
            return
    check_can_post(interaction)
    await interaction.response.defer(ephemeral=True, thinking=True)
    outcome = await press_button(bot.sessions, bot.settings, bot.queue, press, rules=bot.rules)
    job = outcome.job
    what = ACTION_NAMES[action] + (f" of image {index}" if action.on_grid and index else "")
    if not outcome.created:
        where = _message_link(job.guild_id, job.channel_id, job.message_id)
        shown = f" [here]({where})" if where else ""
        await interaction.followup.send(
            f"You already asked for {what} of this result: job `{job.id}` ({job.status.value}){shown}. "
            "Nothing was charged again.",
            ephemeral=True,
        )
        return
    channel = interaction.channel
    if isinstance(channel, discord.abc.Messageable):
        bot.delivery.expect_posts([job.id])
        try:
            await bot.delivery.post_waiting(job, channel)
        except Exception:
            log.exception("could not show job %s yet; its result will still be delivered", job.id)
    await interaction.followup.send(f"{what}: queued `{job.id}` ({job.cost} credits held).", ephemeral=True)


async def _toggle_favorite(bot: SojournBot, interaction: discord.Interaction[Any], press: Press) -> None:
    favorite, count = await toggle_favorite(bot.sessions, press)
    view = single_image_view(press.job_id, favorites=count, gallery_url=bot.settings.buttons.gallery_url)
    await interaction.response.edit_message(view=view)  # the ❤ button shows the new count
    text = "Added to your favorites ❤️" if favorite else "Removed from your favorites"
    await interaction.followup.send(f"{text} ({count} in all).", ephemeral=True)
