"""A click on a result's button (or a remix modal's submit), between the interaction and the service.

Nothing here trusts the custom_id beyond its shape: `sojourn.services.buttons` reloads the job
and checks the press (does the job and image exist, may this user press, is it a repeat).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import discord

from bot.channels import check_can_post, origin_of
from bot.exts.buttons._remix import RemixModal
from sojourn.actions import ButtonAction
from sojourn.services.buttons import Press, check_may_press, load_pressable_job, press_button, toggle_favorite
from sojourn.services.users import load_preferences

if TYPE_CHECKING:
    from bot.bot import SojournBot


def _press(
    interaction: discord.Interaction[Any],
    action: ButtonAction,
    job_id: uuid.UUID,
    index: int | None,
    remix_text: str | None = None,
) -> Press:
    return Press(
        action=action,
        job_id=job_id,
        index=index,
        presser_id=interaction.user.id,
        origin=origin_of(interaction),
        remix_text=remix_text,
    )


def _described(action: ButtonAction, index: int | None) -> str:
    """ "Upscale of image 2", "Re-roll", "Zoom Out 2×": what the press asked for, in confirmations."""
    on_one_of_four = action.on == "grid" and action.per_image and index is not None
    return action.name + (f" of image {index}" if on_one_of_four else "")


def _message_link(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str | None:
    if channel_id is None or message_id is None:
        return None
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


async def _open_remix_modal(bot: SojournBot, interaction: discord.Interaction[Any], press: Press) -> bool:
    """In remix mode, show the prompt for editing first; False when the user is not in remix mode."""
    async with bot.sessions() as session:
        if not (await load_preferences(session, interaction.user.id)).defaults.remix:
            return False
        job = await load_pressable_job(session, press)  # checked (and its prompt read) only for the modal
        await check_may_press(session, job, press)  # no modal for someone who may not press
    await interaction.response.send_modal(RemixModal(press.action, press.job_id, press.index, job.prompt))
    return True


async def handle_press(
    bot: SojournBot,
    interaction: discord.Interaction[Any],
    action: ButtonAction,
    job_id: uuid.UUID,
    index: int | None,
    *,
    remix_text: str | None = None,
) -> None:
    """Make the job the button asks for (or open the remix modal first) and say so privately."""
    press = _press(interaction, action, job_id, index, remix_text)
    if remix_text is None and action.remixable and await _open_remix_modal(bot, interaction, press):
        return
    check_can_post(interaction)
    await interaction.response.defer(ephemeral=True, thinking=True)
    outcome = await press_button(bot.sessions, bot.settings, bot.queue, press, rules=bot.rules)
    job, what = outcome.job, _described(action, index)
    if not outcome.created:
        where = _message_link(job.guild_id, job.channel_id, job.message_id)
        shown = f" [here]({where})" if where else ""
        await interaction.followup.send(
            f"You already asked for {what} of this result: job `{job.id}` ({job.status.value}){shown}. "
            "Nothing was charged again.",
            ephemeral=True,
        )
        return
    await bot.delivery.confirm_and_announce(
        [job], interaction, f"{what}: queued `{job.id}` ({job.cost} credits held)."
    )


async def handle_favorite(
    bot: SojournBot,
    interaction: discord.Interaction[Any],
    action: ButtonAction,
    job_id: uuid.UUID,
    index: int | None,
) -> tuple[bool, int]:
    """Toggle the presser's favorite on the image; returns (favorite now, how many favor it).

    A new ❤ is announced as `favorite_added` (the gallery's showcase listens for it)."""
    favorite, count = await toggle_favorite(bot.sessions, _press(interaction, action, job_id, index))
    if favorite:
        bot.dispatch("favorite_added", job_id)
    return favorite, count


def favorite_text(favorite: bool, count: int) -> str:
    text = "Added to your favorites ❤️" if favorite else "Removed from your favorites"
    return f"{text} ({count} in all)."
