"""The relax queue's fair share, on Postgres and SQLite: fast first, then the member with the
least recent GPU time; a relax message runs the job next in line and its own job gets a new one."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Job, JobKind, JobStatus
from sojourn.clock import FixedClock, use_clock
from sojourn.services import credits
from sojourn.services.fair_share import claim_turn, next_in_line
from sojourn.services.workers import WorkerProcess
from sojourn.settings import RecoverySettings
from tests.conftest import PINNED_START
from tests.services.gallery_helpers import db, new_id

__all__ = ["db"]

Sessions = async_sessionmaker[AsyncSession]
WORKER = WorkerProcess(name="sojourn@test", incarnation=uuid.uuid4(), pid=os.getpid())


@pytest.fixture(autouse=True)
def clock() -> Iterator[FixedClock]:
    with use_clock(FixedClock(PINNED_START)) as pinned:
        assert isinstance(pinned, FixedClock)
        yield pinned


_ticks = iter(range(10**9))


async def queue(db: Sessions, user_id: int, mode: str, count: int = 1, **extra: object) -> list[uuid.UUID]:
    """`count` queued jobs of the member in this mode, each queued after every job made before."""
    made = []
    async with db.begin() as session:
        await credits.ensure_user(session, user_id)
        for n in range(count):
            job = Job(
                id=uuid.uuid4(),
                user_id=user_id,
                kind=JobKind.IMAGINE,
                prompt=f"a cat {n}",
                spec={"mode": mode},
                cost=2,
                queued_at=PINNED_START + dt.timedelta(seconds=next(_ticks)),
                **{"status": JobStatus.QUEUED, **extra},
            )
            session.add(job)
            made.append(job.id)
    return made


async def used(db: Sessions, user_id: int, seconds: float, clock: FixedClock) -> None:
    """A finished job of the member that ran `seconds` of GPU time just now."""
    await queue(
        db,
        user_id,
        "relax",
        status=JobStatus.SUCCEEDED,
        started_at=clock.now() - dt.timedelta(seconds=seconds),
        finished_at=clock.now(),
    )


async def next_job(db: Sessions) -> uuid.UUID | None:
    async with db() as session:
        return await next_in_line(session, PINNED_START + dt.timedelta(hours=1))


async def test_one_members_fifty_relax_jobs_do_not_starve_anothers_one(
    db: Sessions, clock: FixedClock
) -> None:
    heavy, light = new_id(), new_id()
    await used(db, heavy, 30, clock)  # the heavy member's first relax job has run
    heavy_jobs = await queue(db, heavy, "relax", 50)
    (light_job,) = await queue(db, light, "relax")  # queued last
    assert await next_job(db) == light_job

    # The heavy member's first job's message is the turn: it runs the light member's job, and
    # the heavy member's job stays queued under a new message.
    async with db.begin() as session:
        turn = await claim_turn(session, heavy_jobs[0], WORKER, RecoverySettings(), dispatch=0)
    assert turn.job is not None and turn.job.id == light_job and turn.job.status == JobStatus.RUNNING
    assert turn.resend is not None and turn.resend.id == heavy_jobs[0]
    assert (turn.resend.status, turn.resend.dispatch) == (JobStatus.QUEUED, 1)
    # Its old message is now stale: it does nothing.
    async with db.begin() as session:
        assert (await claim_turn(session, heavy_jobs[0], WORKER, RecoverySettings(), dispatch=0)).job is None


async def test_fast_jobs_go_first_and_a_members_own_jobs_keep_their_order(
    db: Sessions, clock: FixedClock
) -> None:
    first, second = new_id(), new_id()
    mine = await queue(db, first, "relax", 3)
    await queue(db, second, "relax", 1)
    await used(db, second, 60, clock)
    assert await next_job(db) == mine[0]  # less GPU time; then its oldest
    (fast,) = await queue(db, new_id(), "fast")
    assert await next_job(db) == fast
