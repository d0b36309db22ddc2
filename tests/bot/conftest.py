"""Discord-level fixtures: the real bot on simcord, real Postgres and Redis, a real Celery worker.

One database and one worker serve the whole package (a worker takes seconds to start); every
test starts from empty tables, because simcord's ids are deterministic and repeat between tests.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest
import simcord
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import SojournBot, create_bot
from db.models import (
    ACTIVE_STATUSES,
    Appeal,
    AuditEntry,
    Ban,
    Favorite,
    GuildSettings,
    HeldResult,
    Image,
    Job,
    LedgerEntry,
    ServerWordRule,
    Strike,
    User,
)
from db.session import make_engine, make_sessionmaker
from sojourn.celery_app import make_celery
from sojourn.queue import CeleryJobQueue, JobQueue
from sojourn.services.lifecycle import cancel_job
from sojourn.settings import BotSettings, ButtonSettings, RecoverySettings, Settings
from tests.conftest import create_migrated_database, running_worker, worker_settings

JOB_TIMEOUT = 120.0
REDIS_DB = 6


@pytest.fixture(scope="package")
async def bot_database_url(postgres_admin_url: str) -> str:
    return await create_migrated_database(postgres_admin_url)


@pytest.fixture(scope="package")
def bot_settings(bot_database_url: str, redis_base_url: str, tiny_models, tmp_path_factory) -> Settings:  # type: ignore[no-untyped-def]
    return worker_settings(
        bot_database_url,
        redis_base_url,
        REDIS_DB,
        tmp_path_factory.mktemp("bot-data"),
        tiny_models,
        preview_every=2,
        bot=BotSettings(shard_count=1),
        # 2048 px keeps a second upscale (to 4096 px: ~16 s and a 50 MB PNG of noise on a CPU)
        # out of the Discord suite; its refusal is tested here, 4096-px upscales in tests/inference.
        buttons=ButtonSettings(max_upscale_side=2048, gallery_url="https://gallery.example/"),
        # `GatedQueue.hold()` keeps sent messages out of the broker on purpose: the worker's sweep
        # must not resend them as lost while a test holds them.
        recovery=RecoverySettings(lost_after=3600.0),
    )


@pytest.fixture(scope="package")
async def bot_sessions(bot_database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(bot_database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="package")
def worker(bot_settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker on the tiny models, as `sojourn worker` runs it."""
    with running_worker(bot_settings) as process:
        yield process


class GatedQueue:
    """The real queue, with a gate a test can close: a held job stays queued (in the database) and
    reaches the worker only on `release()`, so nothing depends on how fast the worker is."""

    def __init__(self, queue: JobQueue) -> None:
        self._queue = queue
        self._held: list[tuple[uuid.UUID, str, int]] | None = None

    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        if self._held is not None:
            self._held.append((job_id, mode, dispatch))
        else:
            await self._queue.enqueue(job_id, mode, dispatch)

    def hold(self) -> None:
        self._held = self._held if self._held is not None else []

    async def release(self) -> None:
        held, self._held = self._held or [], None
        for job_id, mode, dispatch in held:
            await self._queue.enqueue(job_id, mode, dispatch)


@pytest.fixture
def queue(bot_settings: Settings) -> GatedQueue:
    return GatedQueue(CeleryJobQueue(make_celery(bot_settings)))


async def empty_tables(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Cancel what a previous test left running (the worker stops it), then delete every row."""
    async with sessions.begin() as session:
        for job_id in (
            await session.execute(select(Job.id).where(Job.status.in_(ACTIVE_STATUSES)))
        ).scalars():
            await cancel_job(session, job_id)
    async with sessions.begin() as session:
        # Children before parents (appeals name strikes; strikes, held results and bans name jobs, users).
        for table in (
            Appeal, Strike, HeldResult, Ban, ServerWordRule, AuditEntry,
            Favorite, GuildSettings, Image, LedgerEntry, Job, User,
        ):  # fmt: skip
            await session.execute(delete(table))


async def start_env(bot: SojournBot) -> simcord.Env:
    env = simcord.Env(bot, settle_timeout=30.0)
    bot.instrumentation.wait_hook = env.external_wait  # Redis waits are external input, not stuck work
    await env.start()
    return env


async def restart_bot(env: simcord.Env, settings: Settings, queue: JobQueue) -> SojournBot:
    """A new bot process takes over from the running one (as after a deploy or a crash)."""
    new_bot = create_bot(settings, queue=queue)
    new_bot.instrumentation.wait_hook = env.external_wait
    await env.restart_bot(new_bot)
    return new_bot


async def stop_env(env: simcord.Env) -> None:
    bot = env.bot
    try:
        await env.shutdown()
    finally:
        assert isinstance(bot, SojournBot)
        await bot.delivery.close()
        await bot.engine.dispose()


@pytest.fixture
async def env(
    bot_settings: Settings, bot_sessions: async_sessionmaker[AsyncSession], queue: GatedQueue
) -> AsyncIterator[simcord.Env]:
    await empty_tables(bot_sessions)
    bot = create_bot(bot_settings, queue=queue)
    env = await start_env(bot)
    try:
        yield env
    finally:
        await stop_env(env)
    env.raise_errors()


@dataclass
class World:
    """A guild with a #art channel and two members."""

    env: simcord.Env
    guild: simcord.GuildHandle
    channel: simcord.ChannelHandle
    alice: simcord.MemberActor
    bob: simcord.MemberActor


@pytest.fixture
def world(env: simcord.Env) -> World:
    guild = env.create_guild("Sojourners")
    channel = guild.create_text_channel("art")
    alice = guild.add_member(env.create_user("alice"))
    bob = guild.add_member(env.create_user("bob"))
    return World(env, guild, channel, alice, bob)


async def eventually(
    check: Callable[[], bool | Awaitable[bool]],
    *,
    what: str,
    timeout: float = JOB_TIMEOUT,  # noqa: ASYNC109 (a deadline for polling another process)
    every: float = 0.05,
) -> None:
    """Wait (really: the worker is another process) until `check()` holds."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(every)


async def jobs_of(sessions: async_sessionmaker[AsyncSession], user_id: int) -> list[Job]:
    async with sessions() as session:
        query = select(Job).where(Job.user_id == user_id).order_by(Job.queued_at)
        return list((await session.execute(query)).scalars())


async def balance_of(sessions: async_sessionmaker[AsyncSession], user_id: int) -> int:
    async with sessions() as session:
        user = await session.get(User, user_id)
        return user.balance if user else 0
