"""`/mod log`: the audit log, newest first, ten to a page, paged by buttons.

The buttons keep no state: a custom_id carries the filters and the cursor
(`sj:mod:log:<user id or 0>:<kind or nothing>:<before id or 0>`), each press checks the presser
is a moderator here and reads the page again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.errors import errors_as_replies
from bot.exts.moderation._actor import actor_of
from bot.exts.moderation._page import Page
from bot.exts.moderation._text import MAX_DESCRIPTION, excerpt, fit_lines
from db.models import AuditEntry
from sojourn.errors import UserError
from sojourn.services.moderation.audit_log import AuditAction, moderator_log
from sojourn.services.moderation.permissions import Actor

if TYPE_CHECKING:
    from bot.bot import SojournBot

PAGE_SIZE = 10
LOG_TEMPLATE = r"sj:mod:log:(?P<user>[0-9]{1,20}):(?P<kind>[a-z_]{0,20}):(?P<before>[0-9]{1,20})"


@dataclass(frozen=True)
class LogQuery:
    user_id: int | None = None
    kind: str = ""  # an `AuditAction` value; "": every kind
    before_id: int | None = None  # None: the newest page

    def custom_id(self) -> str:
        return f"sj:mod:log:{self.user_id or 0}:{self.kind}:{self.before_id or 0}"

    def action(self) -> AuditAction | None:
        try:
            return AuditAction(self.kind) if self.kind else None
        except ValueError:  # a custom_id from an older version, or made up
            raise UserError("That log page is out of date: run /mod log again.") from None


class LogPageButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=LOG_TEMPLATE):
    def __init__(self, query: LogQuery, label: str = "Older", *, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                label=label,
                custom_id=query.custom_id(),
                disabled=disabled,
            )
        )
        self.query = query

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> LogPageButton:
        return cls(LogQuery(int(match["user"]) or None, match["kind"], int(match["before"]) or None))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("SojournBot", interaction.client)
        async with errors_as_replies(interaction):
            await interaction.response.defer()
            await (await log_page(bot, actor_of(interaction), self.query)).replace(interaction)


def _line(entry: AuditEntry) -> str:
    by = f"<@{entry.actor_id}>" if entry.actor_id is not None else "sojourn"
    parts = [f"`#{entry.id}` <t:{int(entry.created_at.timestamp())}:f> **{entry.action}** by {by}"]
    if entry.target_user_id is not None:
        parts.append(f"→ <@{entry.target_user_id}>")
    if entry.job_id is not None:
        parts.append(f"· job `{entry.job_id}`")
    if entry.detail:
        parts.append(f"· {excerpt(entry.detail, 200)}")
    if entry.reason:
        parts.append(f"· reason: {excerpt(entry.reason, 100)}")
    return " ".join(parts)


def render_log(entries: Sequence[AuditEntry], query: LogQuery) -> Page:
    """A page of entries (read one more than shown, to know whether there are older ones)."""
    shown = entries[:PAGE_SIZE]
    filters = [
        *([f"about <@{query.user_id}>"] if query.user_id else []),
        *([f"{query.kind} only"] if query.kind else []),
    ]
    if shown:
        description = fit_lines([_line(entry) for entry in shown], MAX_DESCRIPTION)
    elif query.before_id is not None:
        description = "Nothing older."
    else:
        description = "Nothing is logged on this server yet" + (" with these filters." if filters else ".")
    embed = discord.Embed(
        title="Moderation log" + (f" ({', '.join(filters)})" if filters else ""),
        description=description,
        colour=discord.Colour.orange(),
    )
    embed.set_footer(text="Newest first. Times are in your own time zone.")
    view = discord.ui.View(timeout=None)
    newest = LogQuery(query.user_id, query.kind)
    if shown or query.before_id is not None:
        view.add_item(LogPageButton(newest, "Newest", disabled=query.before_id is None))
    if shown:  # the cursor is the last id shown: never 0, so never the Newest button's id
        older = LogQuery(query.user_id, query.kind, shown[-1].id)
        view.add_item(LogPageButton(older, "Older", disabled=len(entries) <= PAGE_SIZE))
    return Page(embeds=[embed], view=view if view.children else None)


async def log_page(bot: SojournBot, actor: Actor, query: LogQuery) -> Page:
    action = query.action()
    entries = await moderator_log(
        bot.sessions,
        actor,
        user_id=query.user_id,
        actions=[action] if action else None,
        before_id=query.before_id,
        limit=PAGE_SIZE + 1,  # one more than shown: whether there are older ones
    )
    return render_log(entries, query)
