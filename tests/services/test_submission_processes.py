"""Several bot processes submitting for one user at once: the user's row lock and the ledger's
unique keys keep the limits and the credits exact whatever the interleaving (real Postgres, Redis,
and two real processes, started together at a barrier)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from db.models import Job, JobStatus, LedgerEntry, LedgerKind
from sojourn.services import credits
from sojourn.settings import Credits, Limits, Settings

ROOT = Path(__file__).resolve().parents[2]
USER = 77_000
PER_PROCESS = 20


@pytest.fixture(scope="module")
def redis_url(redis_base_url: str) -> str:
    url = redis_base_url.rsplit("/", 1)[0] + "/4"
    redis.Redis.from_url(url).flushdb()
    return url


async def test_two_processes_submitting_for_one_user_keep_its_limit_and_credits(
    sessions, database_url: str, redis_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=tmp_path,
        credits=Credits(daily_free=0),
        limits=Limits(max_running_per_user=3, max_queued_per_user=10),
    )
    allowed = settings.limits.max_running_per_user + settings.limits.max_queued_per_user
    async with sessions.begin() as session:
        await credits.grant(session, USER, 1_000, key="test:two-processes")

    barrier = f"barrier:{uuid.uuid4()}"
    command = [sys.executable, "-m", "tests.services.submitting_process"]
    arguments = [settings.model_dump_json(), str(USER), str(PER_PROCESS), barrier]
    processes = [
        await asyncio.create_subprocess_exec(
            *command, *arguments, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    broker = redis.Redis.from_url(redis_url)
    for _ in processes:  # both connected to the database, then both let go at once
        ready = await asyncio.to_thread(broker.blpop, [f"{barrier}:ready"], 120)
        assert ready is not None, "a submitting process did not start"
    broker.rpush(f"{barrier}:go", *([1] * len(processes)))
    results = []
    for process in processes:
        out, err = await asyncio.wait_for(process.communicate(), timeout=300)
        assert process.returncode == 0, err.decode()
        results.append(json.loads(out))

    accepted = [job_id for result in results for job_id in result["accepted"]]
    assert all(not result["other"] for result in results), results
    assert len(accepted) == allowed, results  # exactly the limit, across both processes
    assert sum(result["too_many"] for result in results) == 2 * PER_PROCESS - allowed

    async with sessions() as session:
        jobs = (await session.execute(select(Job).where(Job.user_id == USER))).scalars().all()
        holds = await session.scalar(
            select(func.count()).where(LedgerEntry.user_id == USER, LedgerEntry.kind == LedgerKind.HOLD)
        )
        balance = await credits.balance_of(session, USER)
        assert balance == await credits.ledger_sum(session, USER), "cached balance drifted from the ledger"
    assert sorted(str(job.id) for job in jobs) == sorted(accepted)
    assert all(job.status == JobStatus.QUEUED for job in jobs)
    assert holds == len(jobs)  # one hold per job, none for a refused submission
    assert balance == 1_000 - sum(job.cost for job in jobs)
