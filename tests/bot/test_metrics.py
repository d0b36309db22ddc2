"""The bot's `/metrics` on simcord with a real worker: an /imagine rendered and delivered, a prompt
the word filter blocks, then one scrape over HTTP (the collector's details: tests/test_metrics.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import simcord
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import SojournBot, create_bot
from db.models import JobStatus
from sojourn.settings import MetricsSettings, Settings
from tests.bot.conftest import GatedQueue, World, empty_tables, jobs_of, start_env, stop_env
from tests.bot.helpers import reload, wait_for_result
from tests.scrape import free_port, scrape, value

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def metrics_settings(bot_settings: Settings) -> Settings:
    return bot_settings.model_copy(update={"metrics": MetricsSettings(bot_port=free_port())})


@pytest.fixture
async def env(
    metrics_settings: Settings, bot_sessions: async_sessionmaker[AsyncSession], queue: GatedQueue
) -> AsyncIterator[simcord.Env]:
    """The package's `env`, with the bot's metrics on."""
    await empty_tables(bot_sessions)
    bot = create_bot(metrics_settings, queue=queue)
    env = await start_env(bot)
    try:
        yield env
    finally:
        await stop_env(env)  # simcord detaches the bot without `close()`: its endpoint is closed here
        if bot.metrics is not None:
            bot.metrics.close()
    env.raise_errors()


async def test_the_bot_serves_the_cluster_and_its_delivery_lag(
    world: World, bot_sessions: async_sessionmaker[AsyncSession], metrics_settings: Settings
) -> None:
    bot = world.env.bot
    assert isinstance(bot, SojournBot) and bot.metrics is not None
    port = metrics_settings.metrics.bot_port
    assert port is not None and bot.metrics.port == port
    lag_before = value(await asyncio.to_thread(scrape, port), "sojourn_delivery_lag_seconds_count") or 0

    await world.alice.slash(world.channel, "imagine", prompt="a kite over the sea --seed 3")
    (job,) = await jobs_of(bot_sessions, world.alice.id)
    await wait_for_result(world, job.id)
    blocked = await world.bob.slash(world.channel, "imagine", prompt="an nsfw poster")  # the default list
    assert blocked.ephemeral and blocked.response is not None and "blocked" in blocked.response.content

    samples = await asyncio.to_thread(scrape, port)
    delivered = await reload(bot_sessions, job.id)
    assert delivered.status == JobStatus.SUCCEEDED and delivered.delivered_at is not None
    assert value(samples, "sojourn_delivery_lag_seconds_count") == lag_before + 1
    assert value(samples, "sojourn_jobs", state="succeeded") == 1
    assert value(samples, "sojourn_jobs", state="queued") == 0
    assert value(samples, "sojourn_credits_settled_total") == job.cost > 0
    assert value(samples, "sojourn_credits_held") == 0
    assert value(samples, "sojourn_filter_blocks_total") == 1
    assert value(samples, "sojourn_queue_depth", queue="fast") == 0
    assert value(samples, "sojourn_queue_depth", queue="relax") == 0
    assert value(samples, "sojourn_source_up", source="database") == 1
