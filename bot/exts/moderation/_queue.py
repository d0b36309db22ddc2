"""`/mod queue`: the server's running and waiting jobs, each with a Cancel button.

A button's custom_id carries only the job (`sj:mod:cancel:<job hex>`); the press is checked and
done by `members.cancel_as_moderator` (a moderator of the job's own server, the job still active),
and the page is read again from the database.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.errors import errors_as_replies
from bot.exts.moderation._actor import actor_of
from bot.exts.moderation._page import Page
from bot.exts.moderation._text import MAX_DESCRIPTION, age, excerpt, fit_lines
from db.models import JobStatus
from sojourn.services.moderation.members import QueueEntry, cancel_as_moderator, server_queue
from sojourn.services.moderation.permissions import Actor

if TYPE_CHECKING:
    from bot.bot import SojournBot

MAX_SHOWN = 25  # Discord's limit on buttons in one message: one Cancel each
PER_ROW = 5
PROMPT_CHARS = 60
CANCEL_TEMPLATE = r"sj:mod:cancel:(?P<job>[0-9a-f]{32})"


class CancelJobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CANCEL_TEMPLATE):
    def __init__(self, job_id: uuid.UUID, number: int = 1) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.danger,
                label=f"Cancel {number}",
                custom_id=f"sj:mod:cancel:{job_id.hex}",
                row=(number - 1) // PER_ROW,
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CancelJobButton:
        return cls(uuid.UUID(hex=match["job"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("SojournBot", interaction.client)
        async with errors_as_replies(interaction):
            await interaction.response.defer()
            actor = actor_of(interaction)
            job = await cancel_as_moderator(
                bot.sessions, actor, self.job_id, reason="cancelled in /mod queue"
            )
            note = f"Cancelled `{job.id}` of <@{job.user_id}>: refunded in full ({job.cost} credits)."
            await (await queue_page(bot, actor, note=note)).replace(interaction)


def _line(number: int, entry: QueueEntry) -> str:
    job = entry.job
    if job.status == JobStatus.RUNNING:
        where = f"running on {excerpt(job.worker_id or 'a worker', 40)}"
    else:
        where = f"queued, position {entry.position}" if entry.position else "queued"
    return (
        f"`{number}.` <@{job.user_id}> · {where} · {age(entry.age_seconds)} old · "
        f"“{excerpt(job.prompt, PROMPT_CHARS)}” · `{job.id}`"
    )


def render_queue(entries: Sequence[QueueEntry], *, note: str = "") -> Page:
    head = f"{note}\n" if note else ""
    if not entries:
        return Page(content=head + "Nothing is running or waiting on this server.")
    shown = entries[:MAX_SHOWN]
    embed = discord.Embed(
        title="This server's queue",
        description=fit_lines(
            [_line(number, entry) for number, entry in enumerate(shown, 1)], MAX_DESCRIPTION
        ),
        colour=discord.Colour.orange(),
    )
    embed.set_footer(
        text="Running first, then oldest first. Cancel refunds the job in full; its owner sees it cancelled."
        + (f" Only the first {MAX_SHOWN} are shown." if len(entries) > MAX_SHOWN else "")
    )
    view = discord.ui.View(timeout=None)
    for number, entry in enumerate(shown, 1):
        view.add_item(CancelJobButton(entry.job.id, number))
    return Page(content=head, embeds=[embed], view=view)


async def queue_page(bot: SojournBot, actor: Actor, *, note: str = "") -> Page:
    return render_queue(await server_queue(bot.sessions, actor, limit=MAX_SHOWN + 1), note=note)
