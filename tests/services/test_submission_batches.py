"""Concurrent submissions in one process share one transaction (a group commit), and each is still
judged alone: refused for its own reason, or failed by its own error, while the others go through."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Ban, Job
from sojourn.errors import Banned, InsufficientCredits, PromptBlocked
from sojourn.prompt import PromptError
from sojourn.services import credits, submission
from tests.services.gallery_helpers import db
from tests.services.moderation_helpers import (
    DAILY_FREE,
    balance_of,
    ledger_of,
    new_id,
    new_server,
    queue,
    settings,
    strikes_of,
)

__all__ = ["db", "queue", "settings"]  # the shared fixtures (`gallery_helpers`, `moderation_helpers`)
pytestmark = pytest.mark.usefixtures("pinned_clock")


@pytest.fixture
def sessions(db: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """The same code path on both databases: Postgres, and the embedded default's SQLite."""
    return db


async def submit_together(sessions, settings, queue, origin, submissions) -> list[object]:  # type: ignore[no-untyped-def]
    """Start every submission in the same turn of the event loop; each one's jobs or error."""
    return await asyncio.gather(
        *(
            submission.submit_prompt(sessions, settings, queue, user_id=user_id, text=text, origin=origin)
            for user_id, text in submissions
        ),
        return_exceptions=True,
    )


async def test_a_burst_is_one_transaction_and_each_submission_is_judged_alone(
    sessions, settings, queue
) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    banned, blocked, careless = new_id(), new_id(), new_id()
    async with sessions.begin() as session:
        await credits.ensure_user(session, banned)
        session.add(Ban(user_id=banned, guild_id=here.guild_id, reason="spam"))
    newcomers = [new_id() for _ in range(5)]
    greedy = new_id()  # today's free credits pay for ten grids at --q 1: the eleventh is refused
    burst = [
        *((user_id, "a lighthouse in a storm --seed 1") for user_id in newcomers),
        (banned, "a cat"),
        (blocked, "a nude figure"),
        (careless, "a cat --ar 9:1"),
        *((greedy, "a cat --seed 2") for _ in range(11)),
    ]
    inserts: list[str] = []

    def note_job_inserts(_conn, _cursor, statement: str, *_: object) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO jobs"):
            inserts.append(statement)

    engine = sessions.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", note_job_inserts)
    try:
        outcomes = await submit_together(sessions, settings, queue, here, burst)
    finally:
        event.remove(engine, "before_cursor_execute", note_job_inserts)

    assert len(inserts) == 1, "the burst's jobs were not written together"
    accepted = [*outcomes[:5], *outcomes[8:18]]
    assert all(isinstance(jobs, list) and len(jobs) == 1 for jobs in accepted), outcomes
    assert isinstance(outcomes[5], Banned) and "spam" in outcomes[5].message
    assert isinstance(outcomes[6], PromptBlocked) and outcomes[6].strike_id is not None
    assert isinstance(outcomes[7], PromptError) and "--ar 9:1" in outcomes[7].message
    assert isinstance(outcomes[18], InsufficientCredits), "checked in order, the eleventh grid is refused"
    assert "needs 4 credits and you have 0" in outcomes[18].message
    assert sorted(queue.sent[-15:]) == sorted(jobs[0].id for jobs in accepted)  # type: ignore[index]

    for user_id in newcomers:
        assert await balance_of(sessions, user_id) == DAILY_FREE - 4
    assert await balance_of(sessions, greedy) == 0
    for user_id in (banned, blocked, careless):
        assert await ledger_of(sessions, user_id) == []
    assert len(await strikes_of(sessions, blocked)) == 1


async def test_an_unforeseen_error_fails_only_its_own_submission(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    first, last = new_id(), new_id()
    unfit = 2**63  # no Discord id, and too big for the database's BIGINT: the shared statement fails
    outcomes = await submit_together(
        sessions,
        settings,
        queue,
        here,
        [(first, "a cat --seed 3"), (unfit, "a cat"), (last, "a dog --seed 4")],
    )
    # Postgres refuses the value in the statement; SQLite's driver before it sends one.
    assert isinstance(outcomes[1], (DBAPIError, OverflowError)), outcomes
    for user_id, jobs in ((first, outcomes[0]), (last, outcomes[2])):
        assert isinstance(jobs, list) and isinstance(jobs[0], Job), outcomes
        assert await balance_of(sessions, user_id) == DAILY_FREE - 4
