"""The gallery's pages: visible results, newest or most liked, filtered, a page at a time.

An item is a result's image: a grid job's grid (index 0), or an upscale's one image. Its ❤ count
is the number of people who favorited any image of the job (the grid or any of its four), each
counted once, so liking all four images of a grid is one ❤ for it, as for an upscale.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.models import Favorite, Image, Job
from sojourn.clock import utcnow
from sojourn.errors import UserError
from sojourn.services.gallery.cursor import Cursor, decode_cursor, encode_cursor, fingerprint
from sojourn.services.gallery.search import prompt_matches, search_words
from sojourn.services.gallery.visibility import visible_in_gallery

MAX_LIMIT = 100
E = TypeVar("E", bound=enum.StrEnum)


class Sort(enum.StrEnum):
    NEW = "new"  # finished most recently first
    TOP = "top"  # most ❤ first


class Period(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    ALL = "all"


PERIOD_LENGTH = {
    Period.DAY: dt.timedelta(days=1),
    Period.WEEK: dt.timedelta(days=7),
    Period.MONTH: dt.timedelta(days=30),
    Period.ALL: None,
}


@dataclass(frozen=True)
class GalleryQuery:
    """One gallery page: `guild_id` for a server's (Discord), None for every server's (web)."""

    guild_id: int | None = None
    sort: Sort | str = Sort.NEW
    period: Period | str = Period.ALL
    user_id: int | None = None  # only this person's results
    liked_by: int | None = None  # only results this person ❤ ("liked by me")
    search: str | None = None  # words of the prompt
    cursor: str | None = None  # from the previous page's `next_cursor`
    limit: int = 24


@dataclass(frozen=True)
class GalleryItem:
    job_id: uuid.UUID
    image_index: int
    storage_key: str
    width: int
    height: int
    prompt: str
    user_id: int
    created_at: dt.datetime
    finished_at: dt.datetime
    likes: int


@dataclass(frozen=True)
class GalleryPage:
    items: list[GalleryItem]
    next_cursor: str | None  # None: this was the last page


def likes_as_of(as_of: dt.datetime) -> ColumnElement[int]:
    """A job's ❤: people who favorited any of its images by `as_of`, each once."""
    return (
        select(func.count(func.distinct(Favorite.user_id)))
        .where(Favorite.job_id == Job.id, Favorite.created_at <= as_of)
        .scalar_subquery()
    )


def shown_image() -> ColumnElement[bool]:
    """The image a result shows: its grid, or its only image where it has no grid (an upscale)."""
    grid = aliased(Image)
    return or_(
        Image.index == 0,
        and_(Image.index == 1, ~exists().where(grid.job_id == Job.id, grid.index == 0)),
    )


def _choice(kind: type[E], value: E | str, what: str) -> E:
    try:
        return kind(value)
    except ValueError:
        raise UserError(f"{what} must be one of {', '.join(kind)}.") from None


async def gallery_page(session: AsyncSession, query: GalleryQuery) -> GalleryPage:
    """One page of the gallery; `next_cursor` continues it with no duplicates and no gaps."""
    sort = _choice(Sort, query.sort, "The sort")
    period = _choice(Period, query.period, "The period")
    if not 1 <= query.limit <= MAX_LIMIT:
        raise UserError(f"A page holds 1 to {MAX_LIMIT} results.")
    words = search_words(query.search) if query.search is not None else []
    query_print = fingerprint(query.guild_id, sort, period, query.user_id, query.liked_by, words)
    cursor = decode_cursor(query.cursor, query_print, key_is_time=sort == Sort.NEW) if query.cursor else None
    as_of = cursor.as_of if cursor else utcnow()

    likes = likes_as_of(as_of).label("likes")
    conditions = [visible_in_gallery(), shown_image(), Job.finished_at <= as_of]
    length = PERIOD_LENGTH[period]
    if length is not None:
        conditions.append(Job.finished_at > as_of - length)
    if query.guild_id is not None:
        conditions.append(Job.guild_id == query.guild_id)
    if query.user_id is not None:
        conditions.append(Job.user_id == query.user_id)
    if query.liked_by is not None:
        conditions.append(exists().where(Favorite.job_id == Job.id, Favorite.user_id == query.liked_by))
    if words:
        conditions.append(prompt_matches(words, session.get_bind().dialect.name))
    items = (
        select(
            Job.id.label("job_id"),
            Image.index.label("image_index"),
            Image.storage_key,
            Image.width,
            Image.height,
            Job.prompt,
            Job.user_id,
            Job.queued_at.label("created_at"),
            Job.finished_at,
            likes,
        )
        .join_from(Job, Image, Image.job_id == Job.id)
        .where(*conditions)
        .subquery("items")
    )
    key = items.c.finished_at if sort == Sort.NEW else items.c.likes
    statement: Select[tuple[object, ...]] = (
        select(items).order_by(key.desc(), items.c.job_id.desc()).limit(query.limit + 1)
    )
    if cursor is not None:
        statement = statement.where(
            or_(key < cursor.key, and_(key == cursor.key, items.c.job_id < cursor.job_id))
        )
    rows = (await session.execute(statement)).all()
    found = [GalleryItem(**row._asdict()) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = found[-1]
        last_key = last.finished_at if sort == Sort.NEW else last.likes
        next_cursor = encode_cursor(Cursor(as_of=as_of, key=last_key, job_id=last.job_id), query_print)
    return GalleryPage(items=found, next_cursor=next_cursor)
