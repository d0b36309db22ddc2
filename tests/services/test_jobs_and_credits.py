"""Submission, the credit ledger and the job lifecycle on a real Postgres and Redis (no worker)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from db.models import Ban, Job, JobStatus, LedgerEntry, LedgerKind, User
from sojourn.broker_census import RedisBrokerCensus
from sojourn.celery_app import make_celery
from sojourn.clock import FixedClock, use_clock, utcnow
from sojourn.errors import Banned, InsufficientCredits, TooManyJobs
from sojourn.prompt import PromptError
from sojourn.queue import CeleryJobQueue, message_id
from sojourn.services import credits, lifecycle, submission
from sojourn.services.pricing import job_cost
from sojourn.services.recovery import recover_jobs
from sojourn.settings import Credits, Limits, Settings
from sojourn.spec import JobSpec, PromptPart
from tests.services.workers import FIRST_ATTEMPT, RECOVERY, TEST_WORKER

_user_ids = itertools.count(10_000)
TODAY = dt.date(2026, 11, 21)  # passed explicitly to the ledger
pytestmark = pytest.mark.usefixtures("pinned_clock")


@pytest.fixture(scope="module")
def redis_url(redis_base_url: str) -> str:
    url = redis_base_url.rsplit("/", 1)[0] + "/3"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="module")
def settings(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("data"),
        credits=Credits(daily_free=40),
        limits=Limits(max_running_per_user=3, max_queued_per_user=10),
    )


@pytest.fixture(scope="module")
def queue(settings: Settings) -> CeleryJobQueue:
    return CeleryJobQueue(make_celery(settings))


def new_user() -> int:
    return next(_user_ids)


async def ledger_of(sessions, user_id: int) -> list[LedgerEntry]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return list(
            (
                await session.execute(
                    select(LedgerEntry).where(LedgerEntry.user_id == user_id).order_by(LedgerEntry.id)
                )
            ).scalars()
        )


async def balance_matches_ledger(sessions, user_id: int) -> int:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        user = await session.get(User, user_id)
        assert user is not None
        assert user.balance == await credits.ledger_sum(session, user_id), (
            "cached balance drifted from the ledger"
        )
        return user.balance


async def test_submit_holds_credits_inserts_and_enqueues(sessions, settings, queue, redis_url) -> None:  # type: ignore[no-untyped-def]
    user_id = new_user()
    jobs = await submission.submit_prompt(
        sessions, settings, queue, user_id=user_id, text="a lighthouse in a storm --ar 16:9 --seed 7"
    )
    assert len(jobs) == 1
    job = jobs[0]
    assert job.status == JobStatus.QUEUED
    assert job.spec["width"] == 1344 and job.spec["height"] == 768 and job.spec["seed"] == 7
    assert job.cost == job_cost(JobSpec.model_validate(job.spec), settings.credits)
    assert "--seed 7" in job.prompt
    assert message_id(job.id, 0) in await RedisBrokerCensus(redis_url).held_message_ids()

    entries = await ledger_of(sessions, user_id)
    assert [(e.kind, e.amount) for e in entries] == [(LedgerKind.DAILY, 40), (LedgerKind.HOLD, -job.cost)]
    assert await balance_matches_ledger(sessions, user_id) == 40 - job.cost
    async with sessions() as session:
        stored = await session.get(Job, job.id)
        assert stored is not None and stored.enqueued_at is not None


async def test_a_seed_is_drawn_and_stored_when_not_given(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    jobs = await submission.submit_prompt(sessions, settings, queue, user_id=new_user(), text="a cat")
    assert isinstance(jobs[0].spec["seed"], int)
    assert f"--seed {jobs[0].spec['seed']}" in jobs[0].prompt


async def test_permutations_and_repeat_are_separate_billed_jobs(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    user_id = new_user()
    jobs = await submission.submit_prompt(
        sessions, settings, queue, user_id=user_id, text="a {red, blue} bird --repeat 2 --seed 1"
    )
    assert len(jobs) == 4
    assert sorted(j.prompt.split(" --")[0] for j in jobs) == ["a blue bird"] * 2 + ["a red bird"] * 2
    assert await balance_matches_ledger(sessions, user_id) == 40 - sum(j.cost for j in jobs)


async def test_bad_prompt_charges_nothing_and_queues_nothing(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    user_id = new_user()
    with pytest.raises(PromptError) as error:
        await submission.submit_prompt(sessions, settings, queue, user_id=user_id, text="a cat --ar 9:1")
    assert "--ar 9:1" in error.value.message
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Job).where(Job.user_id == user_id)) == 0
    assert await ledger_of(sessions, user_id) == []


async def test_insufficient_credits_is_a_clear_error_before_anything_is_queued(
    sessions, settings, queue
) -> None:  # type: ignore[no-untyped-def]
    user_id = new_user()
    poor = settings.model_copy(update={"credits": Credits(daily_free=1)})
    with pytest.raises(InsufficientCredits) as error:
        await submission.submit_prompt(sessions, poor, queue, user_id=user_id, text="a cat --q 2")
    assert "needs 8 credits and you have 1" in error.value.message
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Job).where(Job.user_id == user_id)) == 0


async def test_banned_users_are_refused(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    user_id = new_user()
    async with sessions.begin() as session:
        await credits.ensure_user(session, user_id)
        session.add(Ban(user_id=user_id, guild_id=None, reason="spam"))  # from every server
    with pytest.raises(Banned, match="Reason: spam"):
        await submission.submit_prompt(sessions, settings, queue, user_id=user_id, text="a cat")
    assert await ledger_of(sessions, user_id) == []


async def test_job_limit_holds_and_rejects_without_charging(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    user_id = new_user()
    async with sessions.begin() as session:
        await credits.grant(session, user_id, 1000, key=f"test-grant:{user_id}")
    cheap = "a dot --q .25 --seed 3"
    for _ in range(13):  # 3 running + 10 queued
        await submission.submit_prompt(sessions, settings, queue, user_id=user_id, text=cheap)
    balance = await balance_matches_ledger(sessions, user_id)
    with pytest.raises(TooManyJobs) as error:
        await submission.submit_prompt(sessions, settings, queue, user_id=user_id, text=cheap)
    assert "the limit is 13" in error.value.message
    assert await balance_matches_ledger(sessions, user_id) == balance


async def test_concurrent_submissions_never_overdraw(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    user_id = new_user()  # 40 free credits; each grid at --q 1 costs 4: at most 10 succeed
    results = await asyncio.gather(
        *(
            submission.submit_prompt(sessions, settings, queue, user_id=user_id, text="a cat --seed 1")
            for _ in range(13)
        ),
        return_exceptions=True,
    )
    succeeded = [r for r in results if isinstance(r, list)]
    refused = [r for r in results if isinstance(r, InsufficientCredits)]
    assert len(succeeded) == 10 and len(refused) == 3, results
    assert await balance_matches_ledger(sessions, user_id) == 0


async def test_daily_grant_is_given_once_per_day(sessions) -> None:  # type: ignore[no-untyped-def]
    user_id = new_user()
    async with sessions.begin() as session:
        await credits.ensure_user(session, user_id)
    for day in (TODAY, TODAY, TODAY + dt.timedelta(days=1)):
        async with sessions.begin() as session:
            await credits.grant_daily_if_due(session, user_id, 40, day)
    assert await balance_matches_ledger(sessions, user_id) == 80


async def test_the_daily_grant_follows_the_clock_the_services_read(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    user_id = new_user()
    day_one = dt.datetime(2031, 2, 28, 23, 59, tzinfo=dt.UTC)
    with use_clock(FixedClock(day_one)) as clock:
        await submission.submit_prompt(sessions, settings, queue, user_id=user_id, text="a cat --q .25")
        await submission.submit_prompt(sessions, settings, queue, user_id=user_id, text="a cat --q .25")
        assert await balance_matches_ledger(sessions, user_id) == 40 - 2 - 2
        assert isinstance(clock, FixedClock)
        clock.advance(minutes=2)  # past midnight: a new UTC day, a new grant
        await submission.submit_prompt(sessions, settings, queue, user_id=user_id, text="a cat --q .25")
    assert await balance_matches_ledger(sessions, user_id) == 80 - 2 - 2 - 2
    dailies = [e for e in await ledger_of(sessions, user_id) if e.kind == LedgerKind.DAILY]
    assert [e.idempotency_key.rsplit(":", 1)[1] for e in dailies] == ["2031-02-28", "2031-03-01"]


async def test_admin_grant_is_idempotent(sessions) -> None:  # type: ignore[no-untyped-def]
    user_id = new_user()
    for _ in range(3):
        async with sessions.begin() as session:
            await credits.grant(session, user_id, 25, key="grant:retry-safe", note="contest prize")
    assert await balance_matches_ledger(sessions, user_id) == 25


async def _submitted(sessions, settings, queue) -> tuple[int, Job]:  # type: ignore[no-untyped-def]
    user_id = new_user()
    jobs = await submission.submit_prompt(sessions, settings, queue, user_id=user_id, text="a cat --seed 5")
    return user_id, jobs[0]


async def test_failure_refunds_once_and_settle_cannot_follow(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    user_id, job = await _submitted(sessions, settings, queue)
    async with sessions.begin() as session:
        assert await lifecycle.claim_job(session, job.id, TEST_WORKER, RECOVERY)
    for _ in range(2):
        async with sessions.begin() as session:
            await lifecycle.fail_job(session, job.id, "boom")
    async with sessions.begin() as session:
        assert not await lifecycle.complete_job(session, job.id, FIRST_ATTEMPT, [])
    assert await balance_matches_ledger(sessions, user_id) == 40
    kinds = [e.kind for e in await ledger_of(sessions, user_id)]
    assert kinds == [LedgerKind.DAILY, LedgerKind.HOLD, LedgerKind.REFUND]


async def test_success_settles_once_and_refund_cannot_follow(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    user_id, job = await _submitted(sessions, settings, queue)
    async with sessions.begin() as session:
        assert await lifecycle.claim_job(session, job.id, TEST_WORKER, RECOVERY)
    image = lifecycle.StoredImage(
        index=1, seed=5, width=1024, height=1024, storage_key=f"jobs/{job.id}/image-1.png"
    )
    async with sessions.begin() as session:
        assert await lifecycle.complete_job(session, job.id, FIRST_ATTEMPT, [image])
    for operation in (lifecycle.fail_job, lifecycle.cancel_job):
        async with sessions.begin() as session:
            args = (session, job.id, "late") if operation is lifecycle.fail_job else (session, job.id)
            assert not await operation(*args)
    assert await balance_matches_ledger(sessions, user_id) == 40 - job.cost
    assert [e.kind for e in await ledger_of(sessions, user_id)][-1] == LedgerKind.SETTLE


async def test_cancel_refunds_a_queued_job(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    user_id, job = await _submitted(sessions, settings, queue)
    async with sessions.begin() as session:
        assert await lifecycle.cancel_job(session, job.id)
    async with sessions.begin() as session:  # a worker picking it up afterwards does nothing
        assert await lifecycle.claim_job(session, job.id, TEST_WORKER, RECOVERY) is None
    assert await balance_matches_ledger(sessions, user_id) == 40


async def test_recovery_resends_unsent_jobs_and_fails_exhausted_ones(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    user_id, unsent = await _submitted(sessions, settings, queue)
    _, exhausted = await _submitted(sessions, settings, queue)
    old = utcnow() - dt.timedelta(hours=1)
    async with sessions.begin() as session:
        (await session.get(Job, unsent.id)).enqueued_at = None  # type: ignore[union-attr]
        (await session.get(Job, unsent.id)).queued_at = old  # type: ignore[union-attr]
        stuck = await session.get(Job, exhausted.id)
        stuck.status, stuck.heartbeat_at, stuck.attempts = JobStatus.RUNNING, old, 3  # type: ignore[union-attr]
    resent = await recover_jobs(sessions, queue, settings.model_copy(update={"max_attempts": 3}))
    assert unsent.id in resent and exhausted.id not in resent
    async with sessions() as session:
        failed = await session.get(Job, exhausted.id)
        assert failed is not None and failed.status == JobStatus.FAILED
    assert await balance_matches_ledger(sessions, user_id) == 40 - unsent.cost


def test_cost_follows_the_work() -> None:
    spec = JobSpec(prompt=(PromptPart(text="x"),), seed=1)
    prices = Credits()
    assert job_cost(spec, prices) == 4
    assert job_cost(spec.model_copy(update={"steps": 60}), prices) == 8
    assert job_cost(spec.model_copy(update={"stop": 50}), prices) == 2
    assert job_cost(spec.model_copy(update={"steps": 8}), prices) == 2
    assert job_cost(spec.model_copy(update={"width": 1344, "height": 768}), prices) == 4


_ = Path
