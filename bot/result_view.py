"""The buttons under a result, persistent across restarts.

On a grid: U1–U4, V1–V4 and 🔄. On a single (upscaled) image: Vary (Strong), Vary (Subtle),
Upscale (2×), Zoom Out 1.5× / 2×, ❤ Favorite and, when a gallery is configured, 🔗 Web (a link).
Each is a `DynamicItem` whose custom_id carries the action, the job id and the image index
(`sj:u:<job hex>:1`), so any instance of the bot answers a click on any result message, whenever
it was posted. The custom_id is hostile input: the template admits only those shapes, and the
press is checked against the job reloaded from the database (`sojourn.services.buttons`).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import discord

from bot.errors import errors_as_replies
from db.models import Job
from sojourn.services.buttons import Action
from sojourn.services.results import is_single_image

_ACTIONS = "|".join(sorted((action.value for action in Action), key=len, reverse=True))
CUSTOM_ID_TEMPLATE = rf"sj:(?P<action>{_ACTIONS}):(?P<job>[0-9a-f]{{32}})(?::(?P<index>[1-4]))?"

# label, emoji, row of each button on a single image.
_SINGLE_IMAGE_BUTTONS: dict[Action, tuple[str | None, str | None, int]] = {
    Action.VARY_STRONG: ("Vary (Strong)", "🪄", 0),
    Action.VARY_SUBTLE: ("Vary (Subtle)", "🪄", 0),
    Action.UPSCALE_AGAIN: ("Upscale (2×)", "⬆️", 0),
    Action.ZOOM_OUT_2: ("Zoom Out 2×", "🔍", 1),
    Action.ZOOM_OUT_15: ("Zoom Out 1.5×", "🔍", 1),
}


def result_custom_id(action: Action, job_id: uuid.UUID, index: int | None = None) -> str:
    return f"sj:{action.value}:{job_id.hex}" + (f":{index}" if index is not None else "")


def _looks(action: Action, index: int | None, favorites: int) -> tuple[str | None, str | None, int]:
    if action == Action.UPSCALE:
        return f"U{index}", None, 0
    if action == Action.VARY:
        return f"V{index}", None, 1
    if action == Action.REROLL:
        return None, "🔄", 2
    if action == Action.FAVORITE:
        return (str(favorites) if favorites else None), "❤️", 2
    return _SINGLE_IMAGE_BUTTONS[action]


class ResultButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CUSTOM_ID_TEMPLATE):
    def __init__(self, action: Action, job_id: uuid.UUID, index: int | None = None, *, favorites: int = 0):
        label, emoji, row = _looks(action, index, favorites)
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                label=label,
                emoji=emoji,
                custom_id=result_custom_id(action, job_id, index),
                row=row,
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
        return cls(Action(match["action"]), uuid.UUID(hex=match["job"]), index)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        from bot.presses import handle_press

        async with errors_as_replies(interaction):
            await handle_press(interaction.client, interaction, self.action, self.job_id, self.index)


def grid_view(job_id: uuid.UUID) -> discord.ui.View:
    """U1–U4 on the first row, V1–V4 on the second, 🔄 on the third."""
    view = discord.ui.View(timeout=None)
    for action in (Action.UPSCALE, Action.VARY):
        for index in range(1, 5):
            view.add_item(ResultButton(action, job_id, index))
    view.add_item(ResultButton(Action.REROLL, job_id))
    return view


def single_image_view(
    job_id: uuid.UUID, *, favorites: int = 0, gallery_url: str | None = None
) -> discord.ui.View:
    """Vary (Strong) / (Subtle) / Upscale (2×); Zoom Out 2× / 1.5×; ❤ (with its count) and 🔗 Web."""
    view = discord.ui.View(timeout=None)
    for action in _SINGLE_IMAGE_BUTTONS:
        view.add_item(ResultButton(action, job_id, 1))
    view.add_item(ResultButton(Action.FAVORITE, job_id, 1, favorites=favorites))
    if gallery_url:
        url = f"{gallery_url.rstrip('/')}/jobs/{job_id}"
        view.add_item(
            discord.ui.Button(style=discord.ButtonStyle.link, label="Web", emoji="🔗", url=url, row=2)
        )
    return view


def result_view(job: Job, *, favorites: int = 0, gallery_url: str | None = None) -> discord.ui.View:
    """The buttons for a finished job: a grid's, or a single image's."""
    if is_single_image(job):
        return single_image_view(job.id, favorites=favorites, gallery_url=gallery_url)
    return grid_view(job.id)


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (ResultButton,)
