"""`/mod review`: the results the image safety check held, one at a time, blurred, with
Approve / Remove / Skip.

A button's custom_id carries the decision and the job (`sj:mod:review:<decision>:<job hex>`).
Nothing else is kept: the press is checked by `review` against the hold reloaded from the
database (a moderator of its server, still waiting), so the buttons work after a restart and a
decision another moderator made first is reported, not repeated.
"""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.errors import errors_as_replies
from bot.exts.moderation._actor import actor_of
from bot.exts.moderation._page import Page
from bot.exts.moderation._text import excerpt
from bot.uploads import DEFAULT_FILESIZE_LIMIT, grid_upload, upload_stem
from sojourn.services.moderation import review
from sojourn.services.moderation.permissions import Actor
from sojourn.services.results import display_key_of

if TYPE_CHECKING:
    from bot.bot import SojournBot

DECISIONS = ("approve", "remove", "skip")
REVIEW_TEMPLATE = rf"sj:mod:review:(?P<decision>{'|'.join(DECISIONS)}):(?P<job>[0-9a-f]{{32}})"
_BUTTONS = {
    "approve": ("Approve", discord.ButtonStyle.success),
    "remove": ("Remove", discord.ButtonStyle.danger),
    "skip": ("Skip", discord.ButtonStyle.secondary),
}


class ReviewButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=REVIEW_TEMPLATE):
    def __init__(self, decision: str, job_id: uuid.UUID) -> None:
        label, style = _BUTTONS[decision]
        super().__init__(
            discord.ui.Button(style=style, label=label, custom_id=f"sj:mod:review:{decision}:{job_id.hex}")
        )
        self.decision = decision
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ReviewButton:
        return cls(match["decision"], uuid.UUID(hex=match["job"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("SojournBot", interaction.client)
        async with errors_as_replies(interaction):
            await interaction.response.defer()
            actor = actor_of(interaction)
            after: uuid.UUID | None = None
            if self.decision == "approve":
                job = await review.approve(bot.sessions, actor, self.job_id)
                await bot.delivery.redeliver(job.id)
                note = (
                    f"Approved `{job.id}` of <@{job.user_id}>: its result is posted in <#{job.channel_id}>."
                )
            elif self.decision == "remove":
                job = await review.remove(bot.sessions, bot.settings.moderation, actor, self.job_id)
                await bot.delivery.redeliver(job.id)  # the held notice says it was removed
                note = f"Removed `{job.id}`: <@{job.user_id}> got its {job.cost} credits back, and a strike."
            else:
                after, note = self.job_id, ""
            page, shown = await review_page(bot, actor, interaction.guild, after=after, note=note)
            if after is not None and shown == self.job_id:
                page.content = "This is the only result waiting for review."
            await page.replace(interaction)


async def review_page(
    bot: SojournBot,
    actor: Actor,
    guild: discord.Guild | None,
    *,
    after: uuid.UUID | None = None,
    note: str = "",
) -> tuple[Page, uuid.UUID | None]:
    """The next held result (the one after `after`, for Skip) and its job, or that nothing waits."""
    item = await review.next_held(bot.sessions, actor, after=after)
    head = f"{note}\n" if note else ""
    if item is None:
        return Page(content=head + "Nothing is waiting for review on this server."), None
    held, job = item.held, item.job
    score = f"{held.score:.2f}" if held.score is not None else "none: the check could not run"
    embed = discord.Embed(
        title=f"Held for review ({item.waiting} waiting)",
        description=excerpt(job.prompt, 1500),
        colour=discord.Colour.orange(),
    )
    embed.add_field(name="Owner", value=f"<@{job.user_id}>")
    embed.add_field(name="Score", value=score)
    embed.add_field(name="Held", value=f"<t:{int(held.created_at.timestamp())}:R>")
    embed.add_field(name="Why", value=excerpt(held.reason, 300) or "—", inline=False)
    embed.add_field(name="Job", value=f"`{job.id}` in <#{job.channel_id}>", inline=False)
    embed.set_footer(
        text="Approve: posted as if it had never been held. Remove: refunded, and a strike for its owner. "
        "The image is blurred: click it to look."
    )
    files = []
    key = display_key_of(job)
    limit = guild.filesize_limit if guild is not None else DEFAULT_FILESIZE_LIMIT
    try:
        if key is None:
            raise OSError("no image recorded")
        data, filename = await asyncio.to_thread(grid_upload, bot.storage.get, key, limit, upload_stem(job))
        files.append(discord.File(io.BytesIO(data), filename, spoiler=True))
    except OSError:
        head += "Its image is missing from storage: decide from the score, or Skip it.\n"
    view = discord.ui.View(timeout=None)
    for decision in DECISIONS:
        view.add_item(ReviewButton(decision, job.id))
    return Page(content=head, embeds=[embed], view=view, files=files), job.id
