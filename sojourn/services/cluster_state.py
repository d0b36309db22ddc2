"""The cluster's state as the database records it, for the metrics (`sojourn.metrics`): read-only."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ACTIVE_STATUSES, Job, JobStatus, Strike, StrikeSource
from sojourn.queue import QUEUES  # the modes, one queue each


@dataclass(frozen=True)
class ClusterState:
    jobs: dict[JobStatus, int]  # every status, 0 included
    active_jobs: dict[tuple[JobStatus, str], int]  # (queued or running, mode), 0 included
    credits_held: int  # the open holds: what the queued and running jobs cost
    credits_settled: int  # what the succeeded jobs cost (their holds became charges)
    filter_blocks: int  # prompts the word filter blocked, each recorded as a strike


async def read_cluster_state(session: AsyncSession) -> ClusterState:
    """Three grouped queries; only the active jobs' specs are read (the status index finds them)."""
    jobs = dict.fromkeys(JobStatus, 0)
    costs = dict.fromkeys(JobStatus, 0)
    for status, count, cost in await session.execute(
        select(Job.status, func.count(), func.coalesce(func.sum(Job.cost), 0)).group_by(Job.status)
    ):
        jobs[status], costs[status] = int(count), int(cost)

    mode = func.coalesce(Job.spec["mode"].as_string(), "fast").label("mode")  # a spec without one is fast
    active = {(status, name): 0 for status in ACTIVE_STATUSES for name in QUEUES}
    for status, name, count in await session.execute(
        select(Job.status, mode, func.count())
        .where(Job.status.in_(ACTIVE_STATUSES))
        .group_by(Job.status, "mode")  # the label: its JSON path is a bound parameter
    ):
        active[(status, name)] = int(count)

    blocks = await session.scalar(
        select(func.count()).select_from(Strike).where(Strike.source == StrikeSource.WORDS)
    )
    return ClusterState(
        jobs=jobs,
        active_jobs=active,
        credits_held=sum(costs[status] for status in ACTIVE_STATUSES),
        credits_settled=costs[JobStatus.SUCCEEDED],
        filter_blocks=int(blocks or 0),
    )
