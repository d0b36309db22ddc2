"""The Discord front's latencies, measured inside the real bot on simcord with real Postgres + Redis.

1. Arrival → defer, with N simultaneous /imagine (default 200, each from its own member): the
   time from the INTERACTION_CREATE payload entering the bot (simcord's gateway hands it to
   discord.py's parsers synchronously) to the bot's deferral returning. All N payloads are fed
   in one go before the event loop runs any of them, the worst case for the last one. simcord's
   actor verbs (`member.slash`) settle after each interaction, so the burst is built with its
   payload helpers (`simcord.interactions`), which are not public API.
2. Worker "done" → result sent, with a real Celery worker on the tiny models: from the bot
   receiving the `succeeded` event (and, using the event's stamp, from the worker publishing
   it) to the moment the bot hands the result message to Discord. The upload itself (in-process
   on simcord, network-bound on Discord) is excluded and reported apart.

The burst also reports when its "Waiting to start…" messages were posted. simcord's settle
loop, which the run waits in, scans every pending task each time one ends (quadratic in a
burst); `--poll` waits for the messages by polling first, so that scan is not in their time.

Run: `scripts/with-services.sh .venv/bin/python bench/discord_latency.py [--burst 200] [--jobs 20] [--poll]`
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import redis
import simcord
from simcord import interactions as sim_interactions
from sqlalchemy import func, select, update

from bot import create_bot
from bot.instrumentation import Instrumentation
from db.models import Job, JobStatus
from sojourn.bootstrap import ensure_runnable_models, start_worker, stop_child, wait_until_ready
from sojourn.celery_app import make_celery
from sojourn.queue import CeleryJobQueue
from sojourn.settings import BotSettings, Settings
from tests.conftest import create_migrated_database

REDIS_DB = 10


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


def describe(label: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"{label:<52} n={len(ms):<4} median {statistics.median(ms):8.2f} ms   "
        f"p99 {percentile(ms, 99):8.2f} ms   max {max(ms):8.2f} ms"
    )


async def burst(env: simcord.Env, timings: Instrumentation, count: int, *, poll: bool = False) -> None:
    guild = env.create_guild("Bench")
    channel = guild.create_text_channel("art")
    members = [guild.add_member(env.create_user(f"user{i}")) for i in range(count)]
    backend = env.backend
    command = backend.find_command("imagine", guild.id)
    assert command is not None, "the commands were not synced"
    payloads = []
    for number, member in enumerate(members):
        options, _ = sim_interactions.build_options(
            member, "imagine", command, {"prompt": f"a lighthouse {number} --ar 16:9"}, channel_id=channel.id
        )
        data = {"id": command["id"], "name": "imagine", "type": 1, "options": options}
        record, payload = sim_interactions.base_payload(
            backend, type=2, channel_id=channel.id, guild_id=guild.id, user_id=member.id, data=data
        )
        payloads.append((record.id, payload))

    arrivals: dict[int, float] = {}
    started = time.perf_counter()
    for interaction_id, payload in payloads:  # all of them before the loop runs any handler
        arrivals[interaction_id] = time.perf_counter()
        backend.emit("INTERACTION_CREATE", payload)
    if poll:  # simcord's settle scans every pending task each time one ends: O(n²) in a burst
        # The bot's instrumentation only records marks: there is no event to wait on.
        while len(timings.marks["waiting_posted"]) < count and time.perf_counter() - started < 60:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    try:
        await env.settle(timeout=60)  # longer would also wait for asyncpg's 300 s statement-cache timers
    except TimeoutError:  # simcord's bookkeeping of a big burst outlasts it: the deferrals still count
        print(f"simcord did not settle within 60 s of the first arrival (burst of {count})")
    settled = time.perf_counter() - started

    deferred = timings.marks["deferred"]
    missing = [i for i in arrivals if i not in deferred]
    assert not missing, f"{len(missing)} interactions were never deferred"
    describe(
        f"arrival → defer, {count} simultaneous /imagine", [deferred[i][0] - arrivals[i] for i in arrivals]
    )
    posted = timings.marks["waiting_posted"]
    shown = [when - started for when, _ in posted.values()] or [float("nan")]
    print(
        f"{'':<52} {len(posted)} waiting messages (Waiting to start…) posted: half by "
        f"{statistics.median(shown):.2f} s, the last {max(shown):.2f} s after the first arrival; "
        f"the bot idle again after {settled:.2f} s"
    )


async def deliveries(env: simcord.Env, timings: Instrumentation, settings: Settings, jobs: int) -> None:
    bot = env.bot
    guild = env.create_guild("Bench results")
    channel = guild.create_text_channel("results")
    artists = [guild.add_member(env.create_user(f"artist{i}")) for i in range(jobs + 1)]
    # Warm-up: the worker loads its models on its first job.
    await artists[0].slash(channel, "imagine", prompt="a warm-up sketch --q .25")
    for number, artist in enumerate(artists[1:]):  # one each: per-user limits do not get in the way
        await artist.slash(channel, "imagine", prompt=f"a quick sketch {number} --q .25 --seed {number}")
    # The worker renders them one by one; the bot delivers each while the next renders.
    deadline = time.monotonic() + 60 * 10
    while True:
        async with bot.sessions() as session:  # type: ignore[attr-defined]
            pending = await session.scalar(
                select(func.count())
                .select_from(Job)
                .where(
                    Job.user_id.in_([artist.id for artist in artists]),
                    (Job.delivered_at.is_(None)) | (Job.status != JobStatus.SUCCEEDED),
                )
            )
        if not pending:
            break
        if time.monotonic() > deadline:
            raise SystemExit("the jobs did not finish in 10 minutes")
        await asyncio.sleep(0.2)
    await env.settle(timeout=60)

    received = {
        key[0]: value for key, value in timings.marks["event_received"].items() if key[1] == "succeeded"
    }
    published = {
        key[0]: value for key, value in timings.marks["event_published"].items() if key[1] == "succeeded"
    }
    sends, sents = timings.marks["final_send"], timings.marks["final_sent"]
    ids = [job_id for job_id in sends if str(job_id) in received][1:]  # without the warm-up
    assert len(ids) == jobs, f"{len(ids)} of {jobs} results were delivered on their done event"
    describe(
        "done event received → result sent (no upload)", [sends[i][0] - received[str(i)][0] for i in ids]
    )
    describe(
        "done event published → result sent (no upload)", [sends[i][1] - published[str(i)][1] for i in ids]
    )
    describe("  (the upload itself, in-process on simcord)", [sents[i][0] - sends[i][0] for i in ids])


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument(
        "--poll",
        action="store_true",
        help="wait for the burst's waiting messages by polling, not inside simcord's settle loop",
    )
    args = parser.parse_args()

    database_url = await create_migrated_database(os.environ["SOJOURN_TEST_DATABASE_URL"])
    redis_url = os.environ["SOJOURN_TEST_REDIS_URL"].rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    data_dir = Path(tempfile.mkdtemp(prefix="sojourn-discord-bench-"))
    settings = ensure_runnable_models(
        Settings(
            database_url=database_url,
            redis_url=redis_url,
            data_dir=data_dir,
            bot=BotSettings(shard_count=1),
        )
    )

    timings = Instrumentation(recording=True)
    bot = create_bot(settings, queue=CeleryJobQueue(make_celery(settings)), instrumentation=timings)
    env = simcord.Env(bot, settle_timeout=120.0)
    timings.wait_hook = env.external_wait
    await env.start()
    try:
        await burst(env, timings, args.burst, poll=args.poll)
        # The burst's jobs are not for rendering: drop them (as delivered), then time real deliveries.
        async with bot.sessions.begin() as session:
            await session.execute(
                update(Job)
                .where(Job.status == JobStatus.QUEUED)
                .values(status=JobStatus.CANCELLED, delivered_at=func.now())
            )
        redis.Redis.from_url(redis_url).flushdb()
        if args.jobs:
            worker = start_worker(settings)
            try:
                wait_until_ready(settings, worker)
                await deliveries(env, timings, settings, args.jobs)
            finally:
                stop_child(worker, timeout=30)
    finally:
        await env.shutdown()
        await bot.delivery.close()
        await bot.engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
