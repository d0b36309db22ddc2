"""`make run` with DISCORD_TOKEN on embedded defaults: SQLite, the filesystem broker, a worker child,
and no Redis, so the bot learns about jobs by polling the jobs table."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot import create_bot
from db.migrate import upgrade_async
from db.models import JobStatus
from db.session import make_engine, make_sessionmaker
from sojourn.bootstrap import stop_child
from sojourn.celery_app import make_celery
from sojourn.queue import CeleryJobQueue
from sojourn.settings import BotSettings, Settings
from tests.bot.conftest import eventually, jobs_of, start_env, stop_env
from tests.bot.helpers import attachment_image, result_message
from tests.conftest import start_test_worker


@pytest.fixture(scope="module")
def embedded_settings(tiny_models, tmp_path_factory: pytest.TempPathFactory) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        data_dir=tmp_path_factory.mktemp("embedded"),
        redis_url=None,
        models=tiny_models,
        bot=BotSettings(shard_count=1, event_poll_interval=0.5),
    )


@pytest.fixture(scope="module")
async def embedded_worker(embedded_settings: Settings) -> AsyncIterator[object]:
    await upgrade_async(embedded_settings.resolved_database_url)
    process = start_test_worker(embedded_settings)
    yield process
    stop_child(process)


async def test_embedded_mode_polls_the_table_and_delivers(embedded_settings, embedded_worker) -> None:  # type: ignore[no-untyped-def]
    bot = create_bot(embedded_settings, queue=CeleryJobQueue(make_celery(embedded_settings)))
    env = await start_env(bot)
    engine = make_engine(embedded_settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    try:
        guild = env.create_guild()
        channel = guild.create_text_channel("art")
        alice = guild.add_member(env.create_user("alice"))
        result = await alice.slash(channel, "imagine", prompt="a windmill --q .25 --seed 2")
        assert result.response is not None and result.response.content.startswith("Queued 1 job")
        (job,) = await jobs_of(sessions, alice.id)

        async def delivered() -> bool:
            # The poll's pauses are simulated time: move the clock on, as a running bot's would.
            await env.advance_time(embedded_settings.bot.event_poll_interval)
            return result_message(channel, job.id) is not None

        await eventually(delivered, what="the result, found by polling", every=0.1)
        message = result_message(channel, job.id)
        assert message is not None and (await attachment_image(message)).size == (1024, 1024)
        async with sessions() as session:
            stored = await session.get(type(job), job.id)
        assert stored is not None and stored.status == JobStatus.SUCCEEDED and stored.delivered_at is not None
    finally:
        await stop_env(env)
        await engine.dispose()
    env.raise_errors()
