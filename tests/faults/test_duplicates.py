"""A job's message delivered twice, to two workers at once: the job runs once.

Two worker processes with node names of their own consume the same queues, and every message is
sent twice (as a broker redelivering would). First a held job, so that one worker holds it
mid-render while the other receives the copy, which must leave it alone; then a burst where the
copies land wherever timing puts them.
"""

from __future__ import annotations

from db.models import JobStatus
from tests.faults.harness import (
    USERS,
    WorkerHandle,
    assert_all_settled,
    job_ids_of,
    now,
    record,
    seconds_between,
    wait_for,
    wait_for_jobs,
    wait_until_running,
)

NAMES = ("fault-a@%h", "fault-b@%h")


def finished_a_copy(worker: WorkerHandle, job_id: object) -> bool:
    """Whether the worker's log shows it has run a message of the job through to the end (the job
    itself is still held elsewhere, so that run can only have left it alone)."""
    return any(
        f"render_job[{job_id}." in line and " succeeded in " in line
        for line in worker.log_text().splitlines()
    )


async def test_a_message_sent_twice_to_two_workers_runs_its_job_once(make_world) -> None:  # type: ignore[no-untyped-def]
    world = await make_world()
    workers = [world.start_worker(name=name) for name in NAMES]
    world.queue.copies = 2

    held = world.hold()
    (hit,) = await world.submit(USERS[0], "a pair of twins --q .25")
    running = await wait_until_running(world, hit.id)
    owner = next(
        w for w in workers if running.worker_id and running.worker_id.startswith(w.name.split("@")[0])
    )
    other = next(w for w in workers if w is not owner)

    async def copy_left_alone() -> bool:
        return finished_a_copy(other, hit.id)

    await wait_for(world, copy_left_alone, what=f"the other worker to receive the copy of {hit.id}")
    released_at = now()
    await held.release()
    burst = [job for user in USERS for job in await world.submit(user, f"a mirror {user} --q .25 --repeat 2")]

    ids = job_ids_of([hit], burst)
    jobs = await wait_for_jobs(world, ids)
    assert {job.id: (job.status, job.attempts) for job in jobs.values()} == {
        job_id: (JobStatus.SUCCEEDED, 1) for job_id in ids
    }
    assert jobs[hit.id].worker_id == running.worker_id
    record(
        "message sent twice: released -> the held job ended",
        seconds_between(released_at, jobs[hit.id].finished_at),
    )
    await assert_all_settled(world, ids)  # one settle and one set of images each
