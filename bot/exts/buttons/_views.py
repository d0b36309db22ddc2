"""The buttons under a result, persistent across restarts, all read from `sojourn.actions.ACTIONS`.

On a grid: U1–U4, V1–V4 and 🔄. On a single (upscaled) image: Vary (Strong) / (Subtle),
Upscale (2×), Zoom Out 2× / 1.5×, ❤ Favorite and, when a gallery is configured, 🔗 Web (a link).
Each is a `DynamicItem` whose custom_id carries the action's code, the job id and the image
(`sj:<code>:<job hex>:<image>`), so any instance of the bot answers a click on any result message, whenever
it was posted. The custom_id is hostile input: the template admits only those shapes, and the
press is checked against the job reloaded from the database (`sojourn.services.buttons`).
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.errors import errors_as_replies
from bot.exts.buttons._presses import favorite_text, handle_favorite, handle_press
from db.models import Job
from sojourn.actions import ACTIONS, ButtonAction, Placement, action_for, actions_on, codes_pattern
from sojourn.services.results import is_single_image
from sojourn.spec import IMAGES_ON, IMAGES_PER_JOB

if TYPE_CHECKING:
    from bot.bot import SojournBot

CUSTOM_ID_TEMPLATE = (
    rf"sj:(?P<action>{codes_pattern(ACTIONS)}):(?P<job>[0-9a-f]{{32}})(?::(?P<index>[1-{IMAGES_PER_JOB}]))?"
)


def result_custom_id(action: ButtonAction, job_id: uuid.UUID, index: int | None = None) -> str:
    return f"sj:{action.code}:{job_id.hex}" + (f":{index}" if index is not None else "")


def _counts(action: ButtonAction) -> bool:
    """A button that makes no job toggles something (❤) and shows how many did."""
    return not action.makes_job


def _count_label(count: int) -> str | None:
    return str(count) if count else None


class ResultButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CUSTOM_ID_TEMPLATE):
    def __init__(self, action: ButtonAction, job_id: uuid.UUID, index: int | None = None, *, count: int = 0):
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                label=_count_label(count) if _counts(action) else action.button_label(index),
                emoji=action.emoji,
                custom_id=result_custom_id(action, job_id, index),
                row=action.row,
            )
        )
        self.action = action
        self.job_id = job_id
        self.index = index

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ResultButton:
        # Only the shape is read here; the press is checked against the database when handled.
        index = int(match["index"]) if match["index"] else None
        return cls(action_for(match["action"]), uuid.UUID(hex=match["job"]), index)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("SojournBot", interaction.client)
        async with errors_as_replies(interaction):
            if not _counts(self.action):
                await handle_press(bot, interaction, self.action, self.job_id, self.index)
                return
            favorite, count = await handle_favorite(bot, interaction, self.action, self.job_id, self.index)
            self.item.label = _count_label(count)  # the rest of the message's buttons stay as they are
            await interaction.response.edit_message(view=self.view)
            await interaction.followup.send(favorite_text(favorite, count), ephemeral=True)


def buttons_on(placement: Placement, job_id: uuid.UUID, *, count: int = 0) -> list[ResultButton]:
    """Every button of the table for that placement, one per image where the action is per image."""
    return [
        ResultButton(action, job_id, index, count=count)
        for action in actions_on(placement)
        for index in (range(1, IMAGES_ON[placement] + 1) if action.per_image else [None])
    ]


def _view(buttons: list[ResultButton]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(button)
    return view


def grid_view(job_id: uuid.UUID) -> discord.ui.View:
    """U1–U4 on the first row, V1–V4 on the second, 🔄 on the third."""
    return _view(buttons_on("grid", job_id))


def single_image_view(
    job_id: uuid.UUID, *, favorites: int = 0, gallery_url: str | None = None
) -> discord.ui.View:
    """Vary (Strong) / (Subtle) / Upscale (2×); Zoom Out 2× / 1.5×; ❤ (with its count) and 🔗 Web."""
    buttons = buttons_on("single", job_id, count=favorites)
    view = _view(buttons)
    if gallery_url:
        url = f"{gallery_url.rstrip('/')}/jobs/{job_id}"
        last_row = max(button.action.row for button in buttons)
        view.add_item(
            discord.ui.Button(style=discord.ButtonStyle.link, label="Web", emoji="🔗", url=url, row=last_row)
        )
    return view


def result_view(job: Job, *, favorites: int = 0, gallery_url: str | None = None) -> discord.ui.View:
    """The buttons for a finished job: a grid's, or a single image's."""
    if is_single_image(job):
        return single_image_view(job.id, favorites=favorites, gallery_url=gallery_url)
    return grid_view(job.id)
