"""The real bot on simcord in a process of its own, for a test that kills it and starts another.

simcord's Discord lives inside the bot's process, so a killed bot takes its Discord with it. The
next process builds the same Discord again: a guild with a pinned id, then its channel and its
members in the same order, which simcord numbers deterministically from its fixed clock (both
processes report the ids they got, and the test compares them). It talks to the test in JSON
lines on stdout:

    python -m tests.faults.bot_process CONFIG

CONFIG is JSON: database_url, redis_url, data_dir, storage_dir, mode, and
- mode "submit": prompts, one /imagine per member; reports the jobs, then waits to be killed;
- mode "deliver": jobs, the ids whose results it waits for; reports every message in the
  channel, then stops.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import simcord
from sqlalchemy import select

from bot import create_bot
from db.models import Job
from sojourn.celery_app import make_celery
from sojourn.queue import CeleryJobQueue
from sojourn.settings import BotSettings, Settings
from tests.bot.conftest import stop_env
from tests.faults.harness import FAULT_TIMEOUT, CheapQueue

GUILD_ID = 1_187_000_000_000_000_001
MEMBERS = ("alice", "bob", "carol")


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def custom_ids(message: Any) -> list[str]:
    return [
        child.custom_id
        for row in message.components
        for child in getattr(row, "children", [])
        if getattr(child, "custom_id", None)
    ]


async def main(config: dict[str, Any]) -> None:
    settings = Settings(
        database_url=config["database_url"],
        redis_url=config["redis_url"],
        data_dir=Path(config["data_dir"]),
        storage_dir=Path(config["storage_dir"]),
        bot=BotSettings(shard_count=1),
    )
    bot = create_bot(settings, queue=CeleryJobQueue(make_celery(settings)))
    bot.queue = CheapQueue(bot.queue, bot.sessions)  # the jobs stay cheap, as in every fault test
    env = simcord.Env(bot, settle_timeout=30.0)
    bot.instrumentation.wait_hook = env.external_wait  # Redis waits are external input, not stuck work
    # Discord before the bot: a restarted bot connects to a Discord that has its guild and channel.
    guild = env.create_guild("Sojourners", id=GUILD_ID)
    channel = guild.create_text_channel("art")
    members = [guild.add_member(env.create_user(name)) for name in MEMBERS]
    await env.start()
    emit("ready", guild=guild.id, channel=channel.id, members=[member.id for member in members])

    if config["mode"] == "submit":
        for member, prompt in zip(members, config["prompts"], strict=True):
            result = await member.slash(channel, "imagine", prompt=prompt)
            emit("answered", member=member.id, content=result.response.content if result.response else None)
        async with bot.sessions() as session:
            jobs = (await session.scalars(select(Job.id).where(Job.guild_id == guild.id))).all()
        emit("submitted", jobs=[str(job_id) for job_id in jobs], waiting=len(channel.history()))
        await asyncio.Event().wait()  # until the test kills this process
        return

    wanted = [uuid.UUID(job_id) for job_id in config["jobs"]]
    deadline = time.monotonic() + FAULT_TIMEOUT
    while True:  # the bot delivers at start-up by itself; this only watches the database
        async with bot.sessions() as session:
            pending = (
                await session.scalars(select(Job.id).where(Job.id.in_(wanted), Job.delivered_at.is_(None)))
            ).all()
        if not pending:
            break
        if time.monotonic() > deadline:
            emit("timeout", pending=[str(job_id) for job_id in pending])
            break
        await asyncio.sleep(0.1)
    await env.settle()
    for message in channel.history():
        emit("message", id=message.id, content=message.content, custom_ids=custom_ids(message))
    posts = [
        r for r in env.http_requests if r.method == "POST" and r.path == f"/channels/{channel.id}/messages"
    ]
    emit("done", posts=len(posts))
    await stop_env(env)
    env.raise_errors()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
