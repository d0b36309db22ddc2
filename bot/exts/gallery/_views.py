"""The private gallery message: one result at a time, and its buttons.

Every button keeps its state in its custom_id, so a page answers after a restart:
◀ ▶ carry the filters and the position to show (`sj:gal:p:<sort><period>:<user or 0>:<liked>:
<position>:<search words joined by +>`) and read the gallery again up to there; ❤ and Show carry
the job (`sj:gal:like:<job hex>`, `sj:gal:show:<job hex>`). Positions, not cursors: a cursor does
not fit in 100 characters, and paging is by one result at a time.
"""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast

import discord

from bot.channels import origin_of
from bot.errors import errors_as_replies
from bot.exts.gallery._showcase import post_if_due
from bot.exts.jobs._show import show_job
from bot.uploads import grid_upload
from sojourn.actions import FAVORITE
from sojourn.errors import UserError
from sojourn.services.gallery import GalleryItem, GalleryQuery, Period, Sort, gallery_page, toggle_like
from sojourn.services.gallery import search_words as parse_search

if TYPE_CHECKING:
    from bot.bot import SojournBot

MAX_POSITION = 999  # one result at a time: past this many, narrow the gallery with its filters
READ_AT_ONCE = 100  # the gallery service's largest page
MAX_CUSTOM_ID = 100
SORTS = {Sort.NEW: "n", Sort.TOP: "t"}
PERIODS = {Period.DAY: "d", Period.WEEK: "w", Period.MONTH: "m", Period.ALL: "a"}
PERIOD_WORDS = {
    Period.DAY: "today",
    Period.WEEK: "this week",
    Period.MONTH: "this month",
    Period.ALL: "all time",
}
PAGE_TEMPLATE = (
    r"sj:gal:p:(?P<sort>[nt])(?P<period>[dwma]):(?P<user>[0-9]{1,20}):(?P<liked>[01]):"
    r"(?P<position>[0-9]{1,3}):(?P<search>[^\W_]{1,40}(?:\+[^\W_]{1,40}){0,7})?"
)
JOB_TEMPLATE = r"sj:gal:(?P<action>like|show):(?P<job>[0-9a-f]{32})"
LIKES_FIELD = "❤"


@dataclass(frozen=True)
class GalleryFilters:
    """What a /gallery message browses; the viewer and server come from each interaction."""

    sort: Sort = Sort.NEW
    period: Period = Period.ALL
    user_id: int | None = None
    liked: bool = False  # only what the viewer ❤
    words: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, sort: str, period: str, user_id: int | None, liked: bool, search: str | None
    ) -> GalleryFilters:
        """From the command's options; a search too long to page through is refused in words."""
        filters = cls(
            Sort(sort), Period(period), user_id, liked, tuple(parse_search(search)) if search else ()
        )
        if len(filters.custom_id(MAX_POSITION)) > MAX_CUSTOM_ID:
            raise UserError("That search is too long to page through: search for fewer or shorter words.")
        return filters

    def custom_id(self, position: int) -> str:
        return (
            f"sj:gal:p:{SORTS[self.sort]}{PERIODS[self.period]}:{self.user_id or 0}:{int(self.liked)}:"
            f"{position}:{'+'.join(self.words)}"
        )

    def query(self, viewer_id: int, guild_id: int | None) -> GalleryQuery:
        return GalleryQuery(
            guild_id=guild_id,
            sort=self.sort,
            period=self.period,
            user_id=self.user_id,
            liked_by=viewer_id if self.liked else None,
            search=" ".join(self.words) or None,
        )

    def describe(self) -> str:
        parts = ["Most ❤" if self.sort == Sort.TOP else "Newest", PERIOD_WORDS[self.period]]
        if self.liked:
            parts.append("liked by you")
        if self.words:
            parts.append(f"search: {' '.join(self.words)}")
        return " · ".join(parts)


def _filters_of(match: re.Match[str]) -> GalleryFilters:
    sort = next(sort for sort, code in SORTS.items() if code == match["sort"])
    period = next(period for period, code in PERIODS.items() if code == match["period"])
    words = tuple(match["search"].split("+")) if match["search"] else ()
    return GalleryFilters(sort, period, int(match["user"]) or None, match["liked"] == "1", words)


@dataclass
class GalleryMessage:
    content: str | None
    embed: discord.Embed | None
    files: list[discord.File]
    view: discord.ui.View | None

    async def send(self, interaction: discord.Interaction[Any]) -> None:
        """Privately, as the answer to /gallery (deferred)."""
        await interaction.followup.send(
            self.content or discord.utils.MISSING,
            embed=self.embed or discord.utils.MISSING,
            files=self.files,
            view=self.view or discord.utils.MISSING,
            ephemeral=True,
        )

    async def replace(self, interaction: discord.Interaction[Any]) -> None:
        """In place of the message whose ◀ ▶ was pressed (the press was deferred)."""
        await interaction.edit_original_response(
            content=self.content, embed=self.embed, attachments=self.files, view=self.view
        )


async def item_at(bot: SojournBot, query: GalleryQuery, position: int) -> tuple[GalleryItem | None, bool]:
    """The result at `position` (0: the first) and whether another follows it."""
    cursor, seen = None, 0
    async with bot.sessions() as session:
        while True:
            limit = min(READ_AT_ONCE, position + 2 - seen)  # up to the one after it
            page = await gallery_page(session, replace(query, cursor=cursor, limit=limit))
            if seen + len(page.items) > position:
                offset = position - seen
                return page.items[offset], offset + 1 < len(page.items) or page.next_cursor is not None
            if page.next_cursor is None:
                return None, False
            seen, cursor = seen + len(page.items), page.next_cursor


def _image_file(bot: SojournBot, item: GalleryItem, limit: int) -> discord.File:
    stem = "grid" if item.image_index == 0 else "image"
    data, filename = grid_upload(bot.storage.get, item.storage_key, limit, stem)
    return discord.File(io.BytesIO(data), filename)


def _embed(item: GalleryItem, filters: GalleryFilters, position: int, filename: str | None) -> discord.Embed:
    embed = discord.Embed(
        title=f"Gallery · #{position + 1}",
        description=discord.utils.escape_markdown(item.prompt)[:4000],
        colour=discord.Colour.blurple(),
        timestamp=item.finished_at,
    )
    embed.add_field(name="By", value=f"<@{item.user_id}>")
    embed.add_field(name=LIKES_FIELD, value=str(item.likes))
    embed.add_field(name="Job", value=f"`{item.job_id}`")
    if filename is not None:
        embed.set_image(url=f"attachment://{filename}")
    embed.set_footer(text=filters.describe())
    return embed


async def gallery_message(
    bot: SojournBot, interaction: discord.Interaction[Any], filters: GalleryFilters, position: int
) -> GalleryMessage:
    """The result at `position` of the viewer's gallery, with its buttons."""
    query = filters.query(interaction.user.id, interaction.guild_id)
    item, has_next = await item_at(bot, query, position)
    if item is None:
        if position == 0:
            return GalleryMessage("Nothing in the gallery matches that yet.", None, [], None)
        view = discord.ui.View(timeout=None)
        view.add_item(GalleryPageButton(filters, 0, "First"))
        return GalleryMessage("Nothing is at that place any more.", None, [], view)
    limit = bot.delivery.channels.filesize_limit(interaction.guild_id)
    try:
        file: discord.File | None = await asyncio.to_thread(_image_file, bot, item, limit)
    except OSError:  # its file is gone from storage: show the rest
        file = None
    embed = _embed(item, filters, position, file.filename if file else None)
    return GalleryMessage(
        None, embed, [file] if file else [], gallery_view(bot, item.job_id, filters, position, has_next)
    )


def gallery_view(
    bot: SojournBot, job_id: uuid.UUID, filters: GalleryFilters, position: int, has_next: bool
) -> discord.ui.View:
    """◀ ▶ ❤ Show and, when a gallery is configured, 🔗 Web."""
    view = discord.ui.View(timeout=None)
    view.add_item(GalleryPageButton(filters, max(position - 1, 0), emoji="◀️", disabled=position == 0))
    view.add_item(GalleryPageButton(filters, position + 1, emoji="▶️", disabled=not has_next))
    view.add_item(GalleryJobButton("like", job_id))
    view.add_item(GalleryJobButton("show", job_id))
    web = bot.settings.gallery_url
    if web:
        url = f"{web.rstrip('/')}/jobs/{job_id}"
        view.add_item(discord.ui.Button(style=discord.ButtonStyle.link, label="Web", emoji="🔗", url=url))
    return view


class GalleryPageButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=PAGE_TEMPLATE):
    def __init__(
        self,
        filters: GalleryFilters,
        position: int,
        label: str | None = None,
        *,
        emoji: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                label=label,
                emoji=emoji,
                custom_id=filters.custom_id(position),
                disabled=disabled,
            )
        )
        self.filters = filters
        self.position = position

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> GalleryPageButton:
        return cls(_filters_of(match), int(match["position"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("SojournBot", interaction.client)
        async with errors_as_replies(interaction):
            await interaction.response.defer()
            await (await gallery_message(bot, interaction, self.filters, self.position)).replace(interaction)


class GalleryJobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=JOB_TEMPLATE):
    """❤ (the viewer's favorite, through the favorite service) or Show (posted as /show posts it)."""

    def __init__(self, action: Literal["like", "show"], job_id: uuid.UUID) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.primary if action == "show" else discord.ButtonStyle.secondary,
                label="Show" if action == "show" else None,
                emoji=None if action == "show" else FAVORITE.emoji,
                custom_id=f"sj:gal:{action}:{job_id.hex}",
            )
        )
        self.action: Literal["like", "show"] = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> GalleryJobButton:
        return cls(cast("Literal['like', 'show']", match["action"]), uuid.UUID(hex=match["job"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("SojournBot", interaction.client)
        async with errors_as_replies(interaction):
            if self.action == "show":
                await show_job(bot, interaction, str(self.job_id))
            else:
                await self._toggle_like(bot, interaction)

    async def _toggle_like(self, bot: SojournBot, interaction: discord.Interaction[Any]) -> None:
        favorite, likes = await toggle_like(
            bot.sessions, self.job_id, interaction.user.id, origin_of(interaction)
        )
        embeds = interaction.message.embeds if interaction.message else []
        if embeds:
            embed = embeds[0]
            for number, field in enumerate(embed.fields):
                if field.name == LIKES_FIELD:
                    embed.set_field_at(number, name=LIKES_FIELD, value=str(likes), inline=field.inline)
            await interaction.response.edit_message(embed=embed)
        else:
            await interaction.response.defer()
        said = "Added to your favorites ❤️" if favorite else "Removed from your favorites"
        await interaction.followup.send(f"{said} ({likes} ❤ in all).", ephemeral=True)
        if favorite:
            await post_if_due(bot, self.job_id)


GALLERY_ITEMS = (GalleryPageButton, GalleryJobButton)
