"""A worker killed mid-render: the job is taken up again, by itself, and ends once.

The hit job is held mid-render by a `HeldImagePrompt`, so the SIGKILL always lands while it runs;
the burst behind it (three users) waits in the broker meanwhile. A worker stores a job's images
while it renders the next one (`inference.runner`): before each kill the test waits until none of
the jobs behind is running (being stored), so the kill lands on the hit job alone.
"""

from __future__ import annotations

from db.models import JobStatus
from tests.faults.harness import (
    USERS,
    assert_all_settled,
    job_ids_of,
    now,
    record,
    seconds_between,
    wait_all_succeeded,
    wait_for_jobs,
    wait_until_running,
)


async def submit_burst(world, hit_prompt: str):  # type: ignore[no-untyped-def]
    """The hit job (held mid-render) from the first user, then a job from each user behind it."""
    held = world.hold()
    (hit,) = await world.submit(USERS[0], hit_prompt)
    behind = [job for user in USERS for job in await world.submit(user, f"a queued sketch {user} --q .25")]
    return held, hit, behind


async def wait_until_only_the_hit_runs(world, behind) -> None:  # type: ignore[no-untyped-def]
    """None of the jobs behind is running: each is queued, or stored and ended."""
    await wait_for_jobs(
        world,
        [job.id for job in behind],
        until=lambda job: job.status != JobStatus.RUNNING,
        what="the jobs behind the hit one to be queued or ended",
    )


async def test_a_pool_process_killed_twice_on_one_job(make_world) -> None:  # type: ignore[no-untyped-def]
    world = await make_world()
    worker = world.start_worker()
    held, hit, behind = await submit_burst(world, "a phoenix --q .25 --seed 1")

    await wait_until_running(world, hit.id, attempts=1)
    await wait_until_only_the_hit_runs(world, behind)
    worker.kill_pool()
    killed_at = now()
    again = await wait_until_running(world, hit.id, attempts=2)
    record("pool process SIGKILL, 1st -> the job runs again", seconds_between(killed_at, again.started_at))
    await wait_until_only_the_hit_runs(world, behind)
    worker.kill_pool()
    killed_at = now()
    again = await wait_until_running(world, hit.id, attempts=3)
    record("pool process SIGKILL, 2nd -> the job runs again", seconds_between(killed_at, again.started_at))
    await held.release()

    ids = job_ids_of([hit], behind)
    jobs = await wait_all_succeeded(world, ids)
    assert jobs[hit.id].attempts == 3  # one try per kill, then the one that finished
    assert all(jobs[job.id].attempts == 1 for job in behind)
    record(
        "pool process SIGKILL, 2nd -> the hit job ended", seconds_between(killed_at, jobs[hit.id].finished_at)
    )
    await assert_all_settled(world, ids)


async def test_a_whole_worker_killed_and_a_new_one_started(make_world) -> None:  # type: ignore[no-untyped-def]
    world = await make_world()
    first = world.start_worker()
    held, hit, behind = await submit_burst(world, "a salamander --q .25 --seed 2")

    await wait_until_running(world, hit.id, attempts=1)
    await wait_until_only_the_hit_runs(world, behind)
    first.kill_all()
    killed_at = now()
    world.start_worker()  # the same settings, so the same node name: a restart after a crash
    again = await wait_until_running(world, hit.id, attempts=2)
    record(
        "whole worker SIGKILL + new worker -> the job runs again",
        seconds_between(killed_at, again.started_at),
    )
    await held.release()

    ids = job_ids_of([hit], behind)
    jobs = await wait_all_succeeded(world, ids)
    assert jobs[hit.id].attempts == 2
    assert all(jobs[job.id].attempts == 1 for job in behind)
    record(
        "whole worker SIGKILL + new worker -> the hit job ended",
        seconds_between(killed_at, jobs[hit.id].finished_at),
    )
    await assert_all_settled(world, ids)
