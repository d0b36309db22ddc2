"""Queue positions and ETAs, delivery bookkeeping, and user-level cancel, on a real Postgres."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

import pytest
from sqlalchemy import update

from db.models import Job, JobKind, JobStatus
from sojourn.errors import JobAlreadyEnded, JobNotFound, NotYourJob
from sojourn.prompt import PromptError
from sojourn.services import credits, delivery, queue_info
from sojourn.services.job_queries import parse_job_id
from sojourn.services.lifecycle import cancel_user_job
from sojourn.services.submission import submit_prompt
from sojourn.settings import Settings
from tests.services.gallery_helpers import db

__all__ = ["db"]

_user_ids = itertools.count(70_000)
pytestmark = pytest.mark.usefixtures("pinned_clock")
T0 = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


class Collecting:
    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        return None


@pytest.fixture(scope="module")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path_factory.mktemp("data"))


async def add_job(sessions, user_id: int, **fields) -> Job:  # type: ignore[no-untyped-def]
    values = {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "kind": JobKind.IMAGINE,
        "prompt": "a test --ar 1:1",
        "spec": {"mode": fields.pop("mode", "fast")},
        "status": JobStatus.QUEUED,
        "cost": 4,
        "queued_at": T0,
        **fields,
    }
    async with sessions.begin() as session:
        await credits.ensure_user(session, user_id)
        job = Job(**values)
        session.add(job)
    return job


@pytest.fixture(autouse=True)
async def no_other_jobs(sessions) -> None:  # type: ignore[no-untyped-def]
    # Positions count every queued job: end what earlier tests left queued or running.
    async with sessions.begin() as session:
        await session.execute(
            update(Job)
            .where(Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))
            .values(status=JobStatus.CANCELLED, finished_at=T0)
        )


async def test_position_counts_earlier_jobs_of_the_same_queue(sessions) -> None:  # type: ignore[no-untyped-def]
    user = next(_user_ids)
    first = await add_job(sessions, user, queued_at=T0)
    relax = await add_job(sessions, user, queued_at=T0 + dt.timedelta(seconds=1), mode="relax")
    second = await add_job(sessions, user, queued_at=T0 + dt.timedelta(seconds=2))
    async with sessions() as session:
        estimates = [
            await queue_info.estimate_for(session, job, default_seconds=30.0)
            for job in (first, relax, second)
        ]
    assert [e.position for e in estimates if e] == [1, 1, 2]
    # No history: each job ahead and the job itself take the default 30 s (one worker assumed).
    assert [e.eta_seconds for e in estimates if e] == [30.0, 30.0, 60.0]


async def test_the_positions_of_many_jobs_are_read_together_on_both_backends(db) -> None:  # type: ignore[no-untyped-def]
    """A burst's waiting messages ask about many jobs at once: one numbering of each queue."""
    user = next(_user_ids)
    jobs = [
        await add_job(db, user, queued_at=T0 + dt.timedelta(seconds=i % 3), mode=("fast", "relax")[i % 2])
        for i in range(7)
    ]
    await add_job(db, user, status=JobStatus.RUNNING, worker_id="a@host", started_at=T0)
    async with db() as session:
        together = await queue_info.estimates_for(session, reversed(jobs), default_seconds=10.0)
        one_by_one = {
            job.id: await queue_info.estimate_for(session, job, default_seconds=10.0) for job in jobs
        }
    assert together == one_by_one
    fast = sorted(
        (job for job in jobs if job.spec["mode"] == "fast"), key=lambda job: (job.queued_at, job.id)
    )
    assert [together[job.id].position for job in fast] == [1, 2, 3, 4]
    assert [together[job.id].eta_seconds for job in fast] == [20.0, 30.0, 40.0, 50.0]  # one running ahead


async def test_eta_uses_the_median_of_recent_jobs_and_the_busy_workers(sessions) -> None:  # type: ignore[no-untyped-def]
    user = next(_user_ids)
    for seconds in (10, 12, 400):  # one outlier: the median ignores it
        await add_job(
            sessions,
            user,
            status=JobStatus.SUCCEEDED,
            started_at=T0,
            finished_at=T0 + dt.timedelta(seconds=seconds),
        )
    for worker in ("a@host", "b@host"):
        await add_job(sessions, user, status=JobStatus.RUNNING, worker_id=worker, started_at=T0)
    waiting = [await add_job(sessions, user, queued_at=T0 + dt.timedelta(seconds=i)) for i in range(3)]
    async with sessions() as session:
        assert await queue_info.typical_duration(session, 30.0) == 12.0
        last = await queue_info.estimate_for(session, waiting[2], default_seconds=30.0)
        running = await session.get(Job, waiting[0].id)
        assert running is not None
        running.status = JobStatus.RUNNING
        assert await queue_info.estimate_for(session, running, default_seconds=30.0) is None
    # ahead: 2 queued + 2 running shared by 2 busy workers = 2 rounds, then its own round.
    assert last is not None and (last.position, last.eta_seconds) == (3, 36.0)


def test_etas_read_naturally() -> None:
    assert [queue_info.describe_eta(s) for s in (0.2, 40, 89, 200, 5400, 7300)] == [
        "~1 s", "~40 s", "~89 s", "~3 min", "~1 h 30 min", "~2 h 2 min",
    ]  # fmt: skip


async def test_undelivered_means_ended_from_a_channel_and_not_yet_delivered(sessions) -> None:  # type: ignore[no-untyped-def]
    user = next(_user_ids)
    ended = await add_job(
        sessions, user, status=JobStatus.SUCCEEDED, finished_at=T0, channel_id=1, guild_id=10
    )
    other_guild = await add_job(
        sessions, user, status=JobStatus.FAILED, finished_at=T0, channel_id=2, guild_id=20
    )
    direct = await add_job(sessions, user, status=JobStatus.CANCELLED, finished_at=T0, channel_id=3)
    await add_job(sessions, user, status=JobStatus.SUCCEEDED, finished_at=T0)  # from the CLI: no channel
    await add_job(sessions, user, status=JobStatus.RUNNING, channel_id=1, guild_id=10)  # not ended
    async with sessions() as session:
        everything = set(await delivery.undelivered_jobs(session, limit=1000))
        mine = set(await delivery.undelivered_jobs(session, guild_ids=[10], limit=1000))
    assert {ended.id, other_guild.id, direct.id} <= everything
    assert {ended.id, direct.id} <= mine and other_guild.id not in mine

    async with sessions.begin() as session:
        assert await delivery.mark_delivered(session, ended.id, 555)
        assert not await delivery.mark_delivered(session, ended.id, 556)  # once
        assert await delivery.mark_undeliverable(session, direct.id, "the channel <#3> was deleted")
        assert not await delivery.mark_undeliverable(session, direct.id, "again")
    async with sessions() as session:
        remaining = set(await delivery.undelivered_jobs(session, limit=1000))
        delivered = await session.get(Job, ended.id)
    assert ended.id not in remaining and direct.id not in remaining
    assert delivered is not None and delivered.message_id == 555

    async with sessions.begin() as session:
        (failure,) = await delivery.take_unreported_failures(session, user)
    assert (failure.job_id, failure.reason) == (direct.id, "the channel <#3> was deleted")
    async with sessions.begin() as session:
        assert await delivery.take_unreported_failures(session, user) == []  # told once


async def test_cancel_user_job_checks_ownership_and_refunds_in_full(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    owner, stranger = next(_user_ids), next(_user_ids)
    first, second = await submit_prompt(
        sessions, settings, Collecting(), user_id=owner, text="a {red, blue} kite --q .5"
    )
    with pytest.raises(NotYourJob):
        await cancel_user_job(sessions, stranger, first.id)
    with pytest.raises(JobNotFound):
        await cancel_user_job(sessions, owner, uuid.uuid4())
    with pytest.raises(JobNotFound, match="There is no job nonsense"):
        parse_job_id("nonsense")
    assert parse_job_id(first.id.hex) == first.id

    latest = await cancel_user_job(sessions, owner, None)  # the latest active job
    assert latest.id in {first.id, second.id} and latest.status == JobStatus.CANCELLED
    other = second if latest.id == first.id else first
    async with sessions.begin() as session:  # as a worker would have it
        await session.execute(
            update(Job).where(Job.id == other.id).values(status=JobStatus.RUNNING, progress=40)
        )
    running = await cancel_user_job(sessions, owner, other.id)
    assert running.status == JobStatus.CANCELLED
    with pytest.raises(JobAlreadyEnded, match="has already cancelled"):
        await cancel_user_job(sessions, owner, other.id)
    with pytest.raises(JobNotFound, match="no job running or waiting"):
        await cancel_user_job(sessions, owner, None)
    async with sessions() as session:
        assert await credits.ledger_sum(session, owner) == settings.credits.daily_free
        user = await credits.balance_of(session, owner)
    assert user == settings.credits.daily_free


async def test_image_prompts_are_set_on_every_job_and_checked_against_stop(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    user = next(_user_ids)
    jobs = await submit_prompt(
        sessions, settings, Collecting(), user_id=user, text="a {cat, dog} --iw 1.5 --q .5",
        image_key="prompts/abc.png",
    )  # fmt: skip
    assert [(j.spec["image_key"], j.spec["image_weight"]) for j in jobs] == [("prompts/abc.png", 1.5)] * 2
    with pytest.raises(PromptError, match="--stop 30 ends before an image prompt at --iw 2 even starts"):
        await submit_prompt(
            sessions, settings, Collecting(), user_id=user, text="a cat --iw 2 --stop 30",
            image_key="prompts/abc.png",
        )  # fmt: skip
    with pytest.raises(PromptError, match="--iw weighs an image prompt, and there is none"):
        await submit_prompt(sessions, settings, Collecting(), user_id=user, text="a cat --iw 2")
