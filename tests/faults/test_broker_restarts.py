"""Redis (the broker) stopped and started again mid-burst, with its data or without it.

Each test injects the fault twice. First while one job is held mid-render and the others wait in
the broker, with a submission during the outage (its message cannot leave); then again at once
after a second burst is sent, while the worker drains it, where timing decides which jobs it
hits. Every job must still end exactly once with no one touching anything: kept messages are
consumed, lost and unsent ones are resent by the worker's recovery sweep.
"""

from __future__ import annotations

import pytest

from tests.faults.harness import (
    USERS,
    assert_all_settled,
    job_ids_of,
    last_end,
    load_jobs,
    now,
    record,
    seconds_between,
    wait_all_succeeded,
    wait_for_jobs,
    wait_until_running,
)


@pytest.mark.parametrize("keep_data", [True, False], ids=["with-its-data", "without-its-data"])
async def test_redis_restarted_twice_mid_burst(module_world, private_redis, keep_data: bool) -> None:  # type: ignore[no-untyped-def]
    world = module_world
    data = "with its data" if keep_data else "without its data"
    held = world.hold()
    (hit,) = await world.submit(USERS[0], "a lighthouse in a storm --q .25")
    await wait_until_running(world, hit.id)
    queued = [job for user in USERS for job in await world.submit(user, f"a harbour {user} --q .25")]

    private_redis.stop(save=keep_data)
    during = await world.submit(USERS[1], "a gull in the outage --q .25")  # the database takes it
    assert (await load_jobs(world.sessions, job_ids_of(during)))[during[0].id].enqueued_at is None
    if not keep_data:
        await held.release()  # and the worker finishes it while the broker is away
        await wait_for_jobs(world, [hit.id], what="the held job to end while Redis is down")
        private_redis.lose_data()
    private_redis.start()
    back_at = now()
    if keep_data:
        await held.release()
    first = await wait_all_succeeded(world, job_ids_of([hit], queued, during))
    sent = "kept" if keep_data else "lost"
    record(
        f"redis restarted {data}, 1st: back -> the jobs whose messages Redis {sent} ended",
        seconds_between(back_at, last_end(first[job.id] for job in queued)),
    )
    record(
        f"redis restarted {data}, 1st: back -> the job submitted in the outage ended",
        seconds_between(back_at, first[during[0].id].finished_at),
    )

    second = [job for user in USERS for job in await world.submit(user, f"a pier {user} --q .25")]
    private_redis.restart(keep_data=keep_data)  # while the worker drains the second burst
    back_at = now()
    jobs = await wait_all_succeeded(world, job_ids_of(second))
    record(
        f"redis restarted {data}, 2nd: back -> every job ended",
        seconds_between(back_at, last_end(jobs.values())),
    )
    await assert_all_settled(world, [*first, *jobs])
