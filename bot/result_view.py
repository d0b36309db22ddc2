"""The buttons under a result: U1–U4, V1–V4 and 🔄, persistent across restarts.

Each is a `DynamicItem` whose custom_id carries the action, the job id and the image index
(`sj:u:<job hex>:1`), so any instance of the bot can answer a click on any result message,
whenever it was posted. The custom_id is hostile input: the template admits only those shapes,
and the job is reloaded from the database on every click.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import discord

from bot.errors import errors_as_replies, send_ephemeral
from db.models import Job

log = logging.getLogger(__name__)

_ACTIONS = {
    "u": "Upscales",
    "v": "Variations",
    "r": "Re-rolls",
}
_WHAT_IT_WILL_DO = {
    "u": "make image {index} of this grid larger and sharper",
    "v": "make four new images in the style and composition of image {index}",
    "r": "run this prompt again with new seeds",
}
COMING_SOON = "{action} are coming soon: this button will {what}. Nothing was charged."


def result_custom_id(action: str, job_id: uuid.UUID, index: int | None = None) -> str:
    return f"sj:{action}:{job_id.hex}" + (f":{index}" if index is not None else "")


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"sj:(?P<action>[uvr]):(?P<job>[0-9a-f]{32})(?::(?P<index>[1-4]))?",
):
    def __init__(self, action: str, job_id: uuid.UUID, index: int | None = None, *, job: Job | None = None):
        if action == "r":
            label, emoji, row, index = None, "🔄", 2, None
        else:
            label, emoji, row = f"{action.upper()}{index}", None, 0 if action == "u" else 1
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
        self.job = job

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ResultButton:
        action = match["action"]
        index = int(match["index"]) if match["index"] else None
        if (action == "r") != (index is None):
            raise ValueError(f"malformed result button {match.group(0)!r}")  # never one of ours
        job_id = uuid.UUID(hex=match["job"])
        job = None
        try:
            async with interaction.client.sessions() as session:  # type: ignore[attr-defined]
                job = await session.get(Job, job_id)
        except Exception:  # the callback says so; discord.py would only log it
            log.exception("could not load job %s for a button", job_id)
        return cls(action, job_id, index, job=job)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        async with errors_as_replies(interaction):
            if self.job is None:
                await send_ephemeral(
                    interaction, f"Job {self.job_id} no longer exists (or could not be read)."
                )
                return
            what = _WHAT_IT_WILL_DO[self.action].format(index=self.index)
            await send_ephemeral(interaction, COMING_SOON.format(action=_ACTIONS[self.action], what=what))


def result_view(job_id: uuid.UUID) -> discord.ui.View:
    """U1–U4 on the first row, V1–V4 on the second, 🔄 on the third."""
    view = discord.ui.View(timeout=None)
    for action in ("u", "v"):
        for index in range(1, 5):
            view.add_item(ResultButton(action, job_id, index))
    view.add_item(ResultButton("r", job_id))
    return view


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (ResultButton,)
