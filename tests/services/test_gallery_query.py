"""The gallery query on Postgres and SQLite: sort (new, top), period, search, the user and
"liked by" filters, and cursor pages with no duplicates or gaps while results and ❤ arrive."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Job
from sojourn.clock import FixedClock, use_clock
from sojourn.errors import UserError
from sojourn.services.gallery import BadCursor, search_words
from tests.conftest import PINNED_START
from tests.services.gallery_helpers import db, like, make_result, new_id, page, shown

__all__ = ["db"]

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(autouse=True)
def clock() -> Iterator[FixedClock]:
    with use_clock(FixedClock(PINNED_START)) as pinned:
        assert isinstance(pinned, FixedClock)
        yield pinned


async def _results(db: Sessions, clock: FixedClock, count: int, **made: object) -> list[uuid.UUID]:
    """`count` results a minute apart, oldest first."""
    ids = []
    for _ in range(count):
        clock.advance(minutes=1)
        ids.append(await make_result(db, **made))  # type: ignore[arg-type]
    return ids


async def test_new_is_newest_first(db: Sessions, clock: FixedClock) -> None:
    guild = new_id()
    made = await _results(db, clock, 4, guild_id=guild)
    assert await shown(db, guild_id=guild) == made[::-1]


async def test_top_is_most_liked_first_and_a_grid_counts_each_person_once(
    db: Sessions, clock: FixedClock
) -> None:
    guild = new_id()
    quiet, loved, liked = await _results(db, clock, 3, guild_id=guild)
    fans = [new_id() for _ in range(3)]
    await like(db, loved, *fans, index=0)
    await like(db, loved, fans[0], index=1)  # the same person on another image: still 3
    await like(db, liked, fans[0], index=2)
    await like(db, liked, fans[1], index=4)  # two people on two images of the grid: 2
    clock.advance(seconds=1)
    result = await page(db, guild_id=guild, sort="top")
    assert [(item.job_id, item.likes) for item in result.items] == [(loved, 3), (liked, 2), (quiet, 0)]


@pytest.mark.parametrize(
    ("period", "expected"), [("day", [0]), ("week", [0, 1]), ("month", [0, 1, 2]), ("all", [0, 1, 2, 3])]
)
async def test_each_period_reaches_back_as_far_as_it_says(
    db: Sessions, clock: FixedClock, period: str, expected: list[int]
) -> None:
    guild = new_id()
    now = clock.now()
    ages = [dt.timedelta(hours=2), dt.timedelta(days=3), dt.timedelta(days=20), dt.timedelta(days=90)]
    made = [await make_result(db, guild_id=guild, finished_at=now - age) for age in ages]
    assert await shown(db, guild_id=guild, period=period) == [made[i] for i in expected]
    top = await shown(db, guild_id=guild, period=period, sort="top")  # no ❤: ties, in id order
    assert top == sorted((made[i] for i in expected), reverse=True)


async def test_search_finds_every_word_at_the_start_of_a_prompt_word(db: Sessions) -> None:
    guild = new_id()
    castle = await make_result(db, guild_id=guild, prompt="A misty Castle on a hill, oil painting")
    cats = await make_result(db, guild_id=guild, prompt="two cats in a castle-garden")
    dog = await make_result(db, guild_id=guild, prompt="a dog (watercolour)")

    async def found(text: str) -> set[uuid.UUID]:
        return set(await shown(db, guild_id=guild, search=text))

    assert await found("castle") == {castle, cats}
    assert await found("CASTLE misty") == {castle}
    assert await found("cat") == {cats}  # a prefix
    assert await found("watercolour") == {dog}
    assert await found("garden") == {cats}
    assert await found("astle") == set()  # the middle of a word is not a word
    assert await found("castle dog") == set()
    assert await found("unicorn") == set()


async def test_hostile_searches_are_only_words(db: Sessions) -> None:
    guild = new_id()
    table = await make_result(db, guild_id=guild, prompt="a table of jobs, drop shadow")
    assert await shown(db, guild_id=guild, search="'); drop table jobs; --") == [table]
    assert await shown(db, guild_id=guild, search="jobs:* | !table & 'x'") == []
    assert await shown(db, guild_id=guild, search='table" OR 1=1 --') == []
    for text in ("&|!:*", "   ", "'", "%_", "--"):
        with pytest.raises(UserError, match="at least one word"):
            await shown(db, guild_id=guild, search=text)
    async with db() as session:  # still there
        assert await session.scalar(select(func.count()).select_from(Job)) >= 1


def test_search_words_are_letters_and_digits_only() -> None:
    assert search_words("Café, 4K! cafe_au_lait") == ["café", "4k", "cafe", "au", "lait"]
    assert len(search_words(" ".join(f"w{i}" for i in range(50)))) == 8


async def test_user_and_liked_by_filters(db: Sessions, clock: FixedClock) -> None:
    guild, alice, bob, viewer = new_id(), new_id(), new_id(), new_id()
    alices = await _results(db, clock, 2, guild_id=guild, user_id=alice)
    bobs = await _results(db, clock, 2, guild_id=guild, user_id=bob)
    await like(db, alices[0], viewer, index=3)
    await like(db, bobs[1], viewer)
    assert await shown(db, guild_id=guild, user_id=alice) == alices[::-1]
    assert await shown(db, user_id=bob) == bobs[::-1]
    assert await shown(db, guild_id=guild, liked_by=viewer) == [bobs[1], alices[0]]
    assert await shown(db, liked_by=viewer, user_id=alice) == [alices[0]]


@pytest.mark.parametrize("sort", ["new", "top"])
async def test_pages_have_no_duplicates_or_gaps_while_results_and_likes_arrive(
    db: Sessions, clock: FixedClock, sort: str
) -> None:
    guild = new_id()
    made = await _results(db, clock, 23, guild_id=guild)
    for position, job in enumerate(made):  # a spread of ❤, with ties
        await like(db, job, *[new_id() for _ in range(position % 4)])
    clock.advance(minutes=1)
    expected = await shown(db, guild_id=guild, sort=sort)
    assert len(expected) == 23

    seen: list[uuid.UUID] = []
    cursor = None
    pages = 0
    while True:
        result = await page(db, guild_id=guild, sort=sort, limit=5, cursor=cursor)
        seen += [item.job_id for item in result.items]
        pages += 1
        # Between page loads: a new result, and a flood of ❤ on the newest and the oldest.
        clock.advance(minutes=1)
        newcomer = await make_result(db, guild_id=guild)
        await like(db, newcomer, *[new_id() for _ in range(5)])
        await like(db, made[0], *[new_id() for _ in range(5)])
        cursor = result.next_cursor
        if cursor is None:
            break
    assert pages == 5
    assert seen == expected


async def test_an_exact_last_page_has_no_next_cursor(db: Sessions, clock: FixedClock) -> None:
    guild = new_id()
    await _results(db, clock, 4, guild_id=guild)
    first = await page(db, guild_id=guild, limit=2)
    second = await page(db, guild_id=guild, limit=2, cursor=first.next_cursor)
    assert len(second.items) == 2 and second.next_cursor is None


def _forge(body: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


async def test_bad_cursors_are_refused_in_words(db: Sessions, clock: FixedClock) -> None:
    guild = new_id()
    await _results(db, clock, 3, guild_id=guild)
    good = (await page(db, guild_id=guild, limit=1)).next_cursor
    top = (await page(db, guild_id=guild, limit=1, sort="top")).next_cursor
    assert good and top
    padded = good + "=" * (-len(good) % 4)
    body = json.loads(base64.urlsafe_b64decode(padded))
    hostile = [
        "x",
        "not base64 !!",
        "'); drop table jobs; --",
        "A" * 5000,
        _forge([1, 2]),  # type: ignore[arg-type]
        _forge({**body, "version": 2}),
        _forge({**body, "as_of": "yesterday"}),
        _forge({**body, "as_of": "2026-11-21T12:00:00"}),  # no time zone
        _forge({**body, "key": 5}),  # a ❤ count on a "new" page
        _forge({**body, "job": "not-a-uuid"}),
        _forge({key: value for key, value in body.items() if key != "key"}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ]
    for cursor in hostile:
        with pytest.raises(BadCursor, match="first page"):
            await page(db, guild_id=guild, limit=1, cursor=cursor)
    with pytest.raises(BadCursor):  # a cursor of another query
        await page(db, guild_id=new_id(), limit=1, cursor=good)
    with pytest.raises(BadCursor):
        await page(db, guild_id=guild, limit=1, cursor=good, search="castle")
    with pytest.raises(BadCursor):
        await page(db, guild_id=guild, limit=1, cursor=top)  # a "top" cursor on a "new" page
    assert len((await page(db, guild_id=guild, limit=5, cursor=good)).items) == 2  # and the real one works


async def test_bad_sort_period_and_limit_are_refused_in_words(db: Sessions) -> None:
    with pytest.raises(UserError, match="sort must be one of new, top"):
        await page(db, sort="best")
    with pytest.raises(UserError, match="period must be one of day, week, month, all"):
        await page(db, period="year")
    for limit in (0, 101, -1):
        with pytest.raises(UserError, match="1 to 100"):
            await page(db, limit=limit)
