"""The image storage failing to write (a full disk) mid-burst, then space coming back.

We run as root, so a read-only directory would not stop a write; a full disk is simulated with a
file-size limit (RLIMIT_FSIZE) set on the running worker's processes between two bursts: every
write past 1 KiB then fails with EFBIG, as writes to a full disk fail with ENOSPC (Python ignores
SIGXFSZ). The worker's log is a pipe (`PipedLog`), which no such limit touches.
"""

from __future__ import annotations

import re

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
)

FULL_DISK_BYTES = 1024  # smaller than any PNG the worker writes
SAYS_SAVING = re.compile(r"sav|stor|disk", re.IGNORECASE)
SAYS_REFUND = re.compile(r"refund", re.IGNORECASE)


async def burst(world, text: str):  # type: ignore[no-untyped-def]
    return [job for user in USERS for job in await world.submit(user, f"{text} {user} --q .25")]


async def test_a_full_disk_fails_jobs_with_a_refund_and_the_worker_carries_on(make_world) -> None:  # type: ignore[no-untyped-def]
    world = await make_world()
    worker = world.start_worker(piped_log=True)
    before = await burst(world, "a lighthouse before")
    await wait_all_succeeded(world, job_ids_of(before))
    pool = [process.pid for process in worker.pool()]

    worker.limit_file_size(FULL_DISK_BYTES)
    full_at = now()
    during = await burst(world, "a lighthouse on a full disk")
    failed = await wait_for_jobs(world, job_ids_of(during))
    for job in failed.values():
        assert job.status == JobStatus.FAILED and job.attempts == 1, (job.status, job.attempts)
        assert SAYS_SAVING.search(job.error or "") and SAYS_REFUND.search(job.error or ""), job.error
        assert "Traceback" not in (job.error or "")
        assert not list((world.storage.root / "jobs" / str(job.id)).glob(".tmp-*")), "a partial file was left"
    print(f"\nthe failed jobs say: {next(iter(failed.values())).error}")
    record(
        "disk full: fault -> the first job failed, refunded",
        seconds_between(full_at, min(j.finished_at for j in failed.values())),
    )

    worker.limit_file_size(None)  # space freed
    after = await burst(world, "a lighthouse after")
    await wait_all_succeeded(world, job_ids_of(after))
    assert [process.pid for process in worker.pool()] == pool  # the same worker process carried on
    await assert_all_settled(world, job_ids_of(before, during, after))
