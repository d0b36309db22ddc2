"""Shared by the moderation service tests: a server of one's own per test, its members, finished
jobs with real files (screened by the safety check as the worker's completion is), and readers for
the log, the ledger, the whole database and `sojourn audit`."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import (
    Appeal,
    AuditEntry,
    Ban,
    Favorite,
    GuildSettings,
    HeldResult,
    Image,
    Job,
    LedgerEntry,
    LedgerKind,
    ServerWordRule,
    Strike,
    User,
)
from sojourn.queue import JobQueue
from sojourn.services import credits, lifecycle, submission
from sojourn.services.audit import audit_database
from sojourn.services.moderation import audit_log, review
from sojourn.services.moderation.permissions import Actor
from sojourn.services.submission import Origin
from sojourn.settings import Credits, ModerationSettings, Settings
from sojourn.spec import JobSpec
from sojourn.storage import LocalStorage, grid_key, image_key
from tests.services.workers import FIRST_ATTEMPT, RECOVERY, TEST_WORKER

DAILY_FREE = 40
SAFE = 0.01  # a safety score far under every threshold
_ids = itertools.count(900_000_000)


class RecordingQueue:
    """A queue that only notes what was sent: nothing runs, and a test counts what was queued."""

    def __init__(self) -> None:
        self.sent: list[uuid.UUID] = []

    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        self.sent.append(job_id)


def make_settings(database_url: str, data_dir: Path, **moderation: Any) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=None,
        data_dir=data_dir,
        storage_dir=data_dir / "images",
        credits=Credits(daily_free=DAILY_FREE),
        moderation=ModerationSettings(**moderation),
    )


def new_id() -> int:
    """A fresh Discord-like id (users, servers, channels, roles), unique in the test run."""
    return next(_ids)


def new_server(*, age_restricted: bool = False) -> Origin:
    """A server no other test touches, and a channel in it."""
    return Origin(guild_id=new_id(), channel_id=new_id(), age_restricted=age_restricted)


def moderator(origin: Origin, user_id: int | None = None) -> Actor:
    """A member with Manage Server there."""
    return Actor(user_id=user_id or new_id(), guild_id=origin.guild_id, manage_guild=True)


def member(origin: Origin, user_id: int | None = None, roles: Sequence[int] = ()) -> Actor:
    """A member with no permission, and the roles given."""
    return Actor(user_id=user_id or new_id(), guild_id=origin.guild_id, role_ids=frozenset(roles))


async def imagine(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    queue: JobQueue,
    origin: Origin,
    user_id: int,
    text: str = "a lighthouse in a storm --seed 1",
) -> Job:
    """One /imagine that makes one job."""
    (job,) = await submission.submit_prompt(
        sessions, settings, queue, user_id=user_id, text=text, origin=origin
    )
    return job


async def finish(
    sessions: async_sessionmaker[AsyncSession],
    storage: LocalStorage,
    settings: Settings,
    job: Job,
    *,
    score: float | None = SAFE,
) -> review.HoldVerdict:
    """Complete a queued job as the worker does: each file stored, each image row with its safety
    score (`score`, None: the check could not run), settled, and screened in the same transaction."""
    spec = JobSpec.model_validate(job.spec)
    async with sessions.begin() as session:
        assert await lifecycle.claim_job(session, job.id, TEST_WORKER, RECOVERY)
    indexes = [*range(1, spec.images + 1), *([0] if spec.images > 1 else [])]
    stored = []
    for index in indexes:
        key = grid_key(job.id) if index == 0 else image_key(job.id, index)
        storage.put(key, f"png {index}".encode())
        stored.append(
            lifecycle.StoredImage(
                index=index,
                seed=index,
                width=spec.width,
                height=spec.height,
                storage_key=key,
                safety_score=score,
            )
        )
    async with sessions.begin() as session:
        assert await lifecycle.complete_job(session, job.id, FIRST_ATTEMPT, stored)
        await session.flush()
        # Written here too: the scores must be on the rows the screening reads, whichever way
        # `complete_job` treats `StoredImage.safety_score`.
        await session.execute(update(Image).where(Image.job_id == job.id).values(safety_score=score))
        return await review.screen_result(session, settings.moderation, job.id)


async def finished_job(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    queue: JobQueue,
    storage: LocalStorage,
    origin: Origin,
    user_id: int | None = None,
    *,
    text: str = "a red fox --seed 10",
    score: float | None = SAFE,
) -> tuple[Job, review.HoldVerdict]:
    job = await imagine(sessions, settings, queue, origin, user_id or new_id(), text)
    return job, await finish(sessions, storage, settings, job, score=score)


async def reload(sessions: async_sessionmaker[AsyncSession], job: Job) -> Job:
    async with sessions() as session:
        found = await session.get(Job, job.id)
        assert found is not None
        return found


LogLine = tuple[str, int | None, int | None, uuid.UUID | None]


async def log_of(sessions: async_sessionmaker[AsyncSession], guild_id: int | None) -> list[AuditEntry]:
    """The server's whole log, oldest first."""
    async with sessions() as session:
        return list(reversed(await audit_log.read_log(session, guild_id, limit=1000)))


async def log_lines(sessions: async_sessionmaker[AsyncSession], guild_id: int | None) -> list[LogLine]:
    """The server's log as (action, actor, target, job), oldest first."""
    return [
        (entry.action, entry.actor_id, entry.target_user_id, entry.job_id)
        for entry in await log_of(sessions, guild_id)
    ]


async def ledger_of(sessions: async_sessionmaker[AsyncSession], user_id: int) -> list[tuple[LedgerKind, int]]:
    async with sessions() as session:
        rows = await session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount)
            .where(LedgerEntry.user_id == user_id)
            .order_by(LedgerEntry.id)
        )
        return [(kind, amount) for kind, amount in rows]


async def balance_of(sessions: async_sessionmaker[AsyncSession], user_id: int) -> int:
    """The cached balance, checked against the ledger's sum."""
    async with sessions() as session:
        balance = await credits.balance_of(session, user_id)
        assert balance == await credits.ledger_sum(session, user_id), "the balance drifted from the ledger"
        return balance


async def jobs_of(sessions: async_sessionmaker[AsyncSession], user_id: int) -> list[Job]:
    async with sessions() as session:
        return list(
            (
                await session.execute(select(Job).where(Job.user_id == user_id).order_by(Job.queued_at))
            ).scalars()
        )


async def strikes_of(sessions: async_sessionmaker[AsyncSession], user_id: int) -> list[Strike]:
    async with sessions() as session:
        return list(
            (
                await session.execute(select(Strike).where(Strike.user_id == user_id).order_by(Strike.id))
            ).scalars()
        )


# Every table a moderation call may write.
TABLES = (
    User,
    LedgerEntry,
    Job,
    Image,
    Favorite,
    GuildSettings,
    Ban,
    ServerWordRule,
    Strike,
    Appeal,
    HeldResult,
    AuditEntry,
)


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> dict[str, set[tuple[Any, ...]]]:
    """Every row of every table moderation writes, to compare before and after a refused call."""
    state = {}
    async with sessions() as session:
        for model in TABLES:
            table = model.__table__  # type: ignore[attr-defined]
            rows = await session.execute(select(table))
            state[table.name] = {tuple(repr(value) for value in row) for row in rows}
    return state


async def assert_audit_clean(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, storage: LocalStorage
) -> None:
    """`sojourn audit` over the whole database finds nothing wrong."""
    report = await audit_database(sessions, settings, storage)
    assert report.ok, [str(violation) for violation in report.violations]
    assert report.jobs > 0


# The fixtures every moderation test module uses: import them by name (pytest finds them there).
@pytest.fixture(scope="module")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(database_url, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def storage(settings: Settings) -> LocalStorage:
    return LocalStorage(settings.resolved_storage_dir)


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()
