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
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, and_, case, exists, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from db.models import Favorite, Image, Job, JobKind
from sojourn.clock import utcnow
from sojourn.errors import UserError
from sojourn.services.gallery.cursor import Cursor, decode_cursor, encode_cursor, fingerprint
from sojourn.services.gallery.search import prompt_matches, search_words
from sojourn.services.gallery.visibility import visible_in_gallery

MAX_LIMIT = 100
SortKey = ColumnElement[Any] | QueryableAttribute[Any]  # a column of jobs, or a count for each row
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
    """A job's ❤ as they were at `as_of`: people who favorited any of its images by then, each once."""
    return (
        select(func.count(func.distinct(Favorite.user_id)))
        .where(Favorite.job_id == Job.id, Favorite.created_at <= as_of)
        .scalar_subquery()
    )


def shown_index(kind: SortKey) -> ColumnElement[int]:
    """`sojourn.services.results.shown_index_of` in SQL, read from the job's kind (an upscale is the
    one single-image kind), which needs no JSON in the gallery's query."""
    return case((kind == JobKind.UPSCALE, 1), else_=0)


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

    conditions = [visible_in_gallery(), Job.finished_at <= as_of]
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

    if sort == Sort.NEW:
        rows = await _rows(session, conditions, Job.finished_at, cursor, query.limit + 1)
    else:
        rows = await _top_rows(session, conditions, as_of, cursor, query.limit + 1)
    found = [GalleryItem(**row._asdict()) for row in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last = found[-1]
        last_key = last.finished_at if sort == Sort.NEW else last.likes
        next_cursor = encode_cursor(Cursor(as_of=as_of, key=last_key, job_id=last.job_id), query_print)
    return GalleryPage(items=found, next_cursor=next_cursor)


async def _rows(
    session: AsyncSession,
    conditions: list[ColumnElement[bool]],
    key: SortKey,
    cursor: Cursor | None,
    limit: int,
    likes: SortKey = Job.likes,
) -> list[Row[Any]]:
    """Visible results by `key` then id, both descending, after the cursor; one row per result.

    The page's jobs are chosen first (on the jobs' own indexes), then joined to the image each
    shows: joined before the limit, Postgres misjudged how many rows the join keeps and sorted
    every visible job instead of reading an index in order.
    """
    chosen = select(
        Job.id.label("job_id"),
        Job.kind,
        Job.prompt,
        Job.user_id,
        Job.queued_at.label("created_at"),
        Job.finished_at,
        likes.label("likes"),
        key.label("sort_key"),
    ).where(*conditions)
    if cursor is not None:  # a row comparison: the index on (key, id) starts right after it
        chosen = chosen.where(tuple_(key, Job.id) < tuple_(cursor.key, cursor.job_id))
    page = chosen.order_by(key.desc(), Job.id.desc()).limit(limit).subquery("page")
    statement = (
        select(
            page.c.job_id,
            Image.index.label("image_index"),
            Image.storage_key,
            Image.width,
            Image.height,
            page.c.prompt,
            page.c.user_id,
            page.c.created_at,
            page.c.finished_at,
            page.c.likes,
        )
        .join(Image, and_(Image.job_id == page.c.job_id, Image.index == shown_index(page.c.kind)))
        .order_by(page.c.sort_key.desc(), page.c.job_id.desc())
    )
    return [*(await session.execute(statement)).all()]


async def _top_rows(
    session: AsyncSession,
    conditions: list[ColumnElement[bool]],
    as_of: dt.datetime,
    cursor: Cursor | None,
    limit: int,
) -> list[Row[Any]]:
    """Most ❤ first, counting ❤ as they were when the first page was read.

    The stored count (`jobs.likes`, indexed) is that count for every result nobody has favorited
    since; the few favorited since are counted as of then, one by one, and the two lists merged.
    A ❤ taken back since is the one change that can move a result by a place between pages.
    """
    if cursor is None:
        return await _rows(session, conditions, Job.likes, None, limit)
    since = select(Favorite.job_id).where(Favorite.created_at > as_of)
    then = likes_as_of(as_of)
    unchanged = await _rows(session, [*conditions, Job.id.not_in(since)], Job.likes, cursor, limit)
    changed = await _rows(session, [*conditions, Job.id.in_(since)], then, cursor, limit, likes=then)
    merged = sorted([*unchanged, *changed], key=lambda row: (row.likes, row.job_id), reverse=True)
    return merged[:limit]
