"""PostgreSQL restarted, or down for a few seconds, while the services submit and the worker renders.

Each test injects the fault twice: first while a job is held mid-render and others wait, then
again at once after a second burst is sent, while the worker drains it (timing decides which jobs
that one hits). The pools reconnect by themselves (`pool_pre_ping`); a submission while the
database is down fails at once with an error its caller can tell apart (the bot answers it with
"the database is unreachable"), and takes nothing; every job that was submitted ends exactly once.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from db.models import Job
from tests.faults.harness import (
    USERS,
    assert_all_settled,
    job_ids_of,
    last_end,
    now,
    record,
    seconds_between,
    wait_all_succeeded,
    wait_until_running,
)
from tests.faults.servers import PrivatePostgres

OUTAGE_SECONDS = 3.0


async def jobs_of_user(world, user_id: int) -> set[uuid.UUID]:  # type: ignore[no-untyped-def]
    async with world.sessions() as session:
        return set((await session.scalars(select(Job.id).where(Job.user_id == user_id))).all())


async def submit_while_down(world, user_id: int) -> BaseException:  # type: ignore[no-untyped-def]
    """A submission while the database is down: it must fail at once, with an error the bot answers
    as "the database is unreachable" (`bot.errors`: a `DBAPIError` or a `ConnectionError`)."""
    started = time.monotonic()
    try:
        await asyncio.wait_for(world.submit(user_id, "a submission in the outage --q .25"), timeout=60)
    except (DBAPIError, ConnectionError) as error:
        print(f"\na submission while the database is down raised {type(error).__name__}: {error}")
        return error
    except TimeoutError:
        pytest.fail(f"a submission while the database is down hung for {time.monotonic() - started:.0f} s")
    pytest.fail("a submission while the database is down succeeded")


async def restart_fast(postgres: PrivatePostgres) -> None:
    """`pg_ctl restart -m fast`: every session is cut, the server is back at once."""
    await asyncio.to_thread(postgres.restart)


async def test_postgres_restarted_fast_twice(module_world, private_postgres) -> None:  # type: ignore[no-untyped-def]
    world = module_world
    held = world.hold()
    (hit,) = await world.submit(USERS[0], "a windmill in the rain --q .25")
    await wait_until_running(world, hit.id)
    queued = [job for user in USERS for job in await world.submit(user, f"a field {user} --q .25")]

    await restart_fast(private_postgres)
    back_at = now()
    # The services' own pool reconnects: submissions work again at once.
    after = [job for user in USERS for job in await world.submit(user, f"a barn {user} --q .25")]
    await held.release()
    first = await wait_all_succeeded(world, job_ids_of([hit], queued, after))
    assert first[hit.id].attempts == 1  # the worker's claim survived the restart
    record(
        "postgres restart -m fast, 1st: back -> every job ended",
        seconds_between(back_at, last_end(first.values())),
    )

    second = [job for user in USERS for job in await world.submit(user, f"a silo {user} --q .25")]
    await restart_fast(private_postgres)  # while the worker drains the second burst
    back_at = now()
    jobs = await wait_all_succeeded(world, job_ids_of(second))
    record(
        "postgres restart -m fast, 2nd: back -> every job ended",
        seconds_between(back_at, last_end(jobs.values())),
    )
    await assert_all_settled(world, [*first, *jobs])


async def test_postgres_down_for_seconds_twice(module_world, private_postgres) -> None:  # type: ignore[no-untyped-def]
    world = module_world
    held = world.hold()
    (hit,) = await world.submit(USERS[0], "a kite over the dunes --q .25")
    await wait_until_running(world, hit.id)
    queued = [job for user in USERS for job in await world.submit(user, f"a dune {user} --q .25")]
    before = await jobs_of_user(world, USERS[2])

    await asyncio.to_thread(private_postgres.stop)
    await submit_while_down(world, USERS[2])
    await held.release()  # the worker renders, then waits for the database to write the result
    await asyncio.sleep(OUTAGE_SECONDS)
    await asyncio.to_thread(private_postgres.start)
    back_at = now()
    first = await wait_all_succeeded(world, job_ids_of([hit], queued))
    record(
        "postgres down 3 s, 1st: back -> the job rendered in the outage recorded",
        seconds_between(back_at, first[hit.id].finished_at),
    )
    record(
        "postgres down 3 s, 1st: back -> every job ended", seconds_between(back_at, last_end(first.values()))
    )
    assert await jobs_of_user(world, USERS[2]) == before  # the refused submission left no job

    second = [job for user in USERS for job in await world.submit(user, f"a camel {user} --q .25")]
    await asyncio.to_thread(private_postgres.stop)  # while the worker drains the second burst
    await asyncio.sleep(OUTAGE_SECONDS)
    await asyncio.to_thread(private_postgres.start)
    back_at = now()
    jobs = await wait_all_succeeded(world, job_ids_of(second))
    record(
        "postgres down 3 s, 2nd: back -> every job ended", seconds_between(back_at, last_end(jobs.values()))
    )
    # With the balances: the refused submission held nothing, and nothing was charged twice.
    await assert_all_settled(world, [*first, *jobs])
