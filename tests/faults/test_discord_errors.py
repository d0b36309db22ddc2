"""Discord answering 429 and 503 for a while as the results are delivered: each is posted once.

The real bot on simcord, in this process. Three members ask for a grid; the first job is held
mid-render while Discord starts refusing new messages in the channel (rate limits, then server
errors), then let go: every job ends, delivery fails, and the bot's delivery sweep retries
(simcord's clock stands for the real one: the sweep runs every `delivery_sweep_interval` of it)
until each result is in the channel exactly once.

Under simcord, discord.py's own HTTP retries (it sleeps out a 429 and retries a 5xx up to five
times) do not run: simcord replaces the HTTP client, so every refusal reaches the bot, and this
test exercises the bot's own retry, the one that remains when discord.py's give up.
"""

from __future__ import annotations

import time
import uuid

import pytest
import simcord
from sqlalchemy import select

from bot import create_bot
from db.models import Job
from sojourn.settings import BotSettings
from tests.bot.conftest import start_env, stop_env
from tests.faults.harness import (
    FAULT_TIMEOUT,
    assert_all_settled,
    load_jobs,
    record,
    wait_for_jobs,
    wait_until_running,
)

REFUSALS = ((429, "You are being rate limited."), (503, "Service Unavailable"))
TIMES_EACH = 3


def results_in(channel: simcord.ChannelHandle, job_id: uuid.UUID) -> int:
    """How many messages in the channel carry this job's buttons (its result)."""
    return sum(
        any(
            f":{job_id.hex}" in (getattr(child, "custom_id", None) or "")
            for row in message.components
            for child in getattr(row, "children", [])
        )
        for message in channel.history()
    )


async def test_discord_refusing_for_a_while_during_delivery(make_world) -> None:  # type: ignore[no-untyped-def]
    world = await make_world(bot=BotSettings(shard_count=1))
    world.start_worker()
    bot = create_bot(world.settings, queue=world.queue)
    env = await start_env(bot)
    try:
        guild = env.create_guild("Sojourners")
        channel = guild.create_text_channel("art")
        members = [guild.add_member(env.create_user(name)) for name in ("alice", "bob", "carol")]
        held = world.hold()
        for index, member in enumerate(members):
            answer = await member.slash(channel, "imagine", prompt=f"a paper boat {index} --q .25")
            assert answer.response is not None and answer.response.content.startswith("Queued 1 job")
        async with world.sessions() as session:
            query = select(Job.id).where(Job.user_id.in_([m.id for m in members])).order_by(Job.queued_at)
            ids = list((await session.scalars(query)).all())
        await wait_until_running(world, ids[0])  # every "Waiting…" message is posted by now

        path = f"/channels/{channel.id}/messages"
        for status, message in REFUSALS:
            env.inject_error("POST", path, status=status, message=message, times=TIMES_EACH)
        refusing_since = env.now()
        await held.release()
        await wait_for_jobs(world, ids)

        deadline = time.monotonic() + FAULT_TIMEOUT
        while any(job.delivered_at is None for job in (await load_jobs(world.sessions, ids)).values()):
            if time.monotonic() > deadline:
                pytest.fail(f"the results were not delivered:\n{env.transcript()[-4000:]}")
            await env.advance_time(world.settings.bot.delivery_sweep_interval)  # the next sweep
        await env.settle()
        record(
            "discord 429 x3 then 503 x3 on results -> every result posted (simulated clock)",
            (env.now() - refusing_since).total_seconds(),
        )
        assert not env.backend.faults, "some injected refusals were never met"
        assert {job_id: results_in(channel, job_id) for job_id in ids} == dict.fromkeys(ids, 1)
        await assert_all_settled(world, ids, delivered=True)
    finally:
        await stop_env(env)
    env.raise_errors()
