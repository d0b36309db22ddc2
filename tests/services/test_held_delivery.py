"""Delivery's bookkeeping of held results, on a real Postgres: an approved result awaits delivery
again until its message shows it, whichever order the notice and the approval come in."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import HeldResult, HoldStatus, Job, JobKind, JobStatus
from sojourn.clock import utcnow
from sojourn.services import credits, delivery
from sojourn.services.moderation import review
from sojourn.services.moderation.permissions import Actor

_user_ids = itertools.count(90_000)
_guild_ids = itertools.count(9_000)
CHANNEL = 555


async def held_job(sessions: async_sessionmaker[AsyncSession]) -> Job:
    """A succeeded job asked for in a channel, that the safety check held."""
    user_id, guild_id = next(_user_ids), next(_guild_ids)
    job = Job(
        id=uuid.uuid4(),
        user_id=user_id,
        kind=JobKind.IMAGINE,
        prompt="a test",
        spec={},
        status=JobStatus.SUCCEEDED,
        cost=4,
        queued_at=utcnow(),
        finished_at=utcnow(),
        guild_id=guild_id,
        channel_id=CHANNEL,
    )
    async with sessions.begin() as session:
        await credits.ensure_user(session, user_id)
        session.add(job)
        await session.flush()
        session.add(
            HeldResult(job_id=job.id, user_id=user_id, guild_id=guild_id, reason="safety score 0.95 ≥ 0.7")
        )
    return job


async def awaiting(sessions: async_sessionmaker[AsyncSession], job: Job) -> bool:
    async with sessions() as session:
        listed = job.id in await delivery.undelivered_jobs(session, guild_ids=[job.guild_id or 0])
        outcome = await delivery.outcome_of(session, job.id)
    assert outcome is not None and outcome.awaiting_delivery == listed
    return listed


def moderator_of(job: Job) -> Actor:
    return Actor(user_id=1, guild_id=job.guild_id, manage_guild=True)


async def test_a_notice_delivered_then_approved_awaits_delivery_until_the_result_is_shown(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    job = await held_job(sessions)
    assert await awaiting(sessions, job)
    async with sessions.begin() as session:
        assert await delivery.mark_delivered(session, job.id, 1, held_notice=True)
    assert not await awaiting(sessions, job)  # the notice is what a held result shows

    await review.approve(sessions, moderator_of(job), job.id)
    assert await awaiting(sessions, job)
    async with sessions() as session:
        outcome = await delivery.outcome_of(session, job.id)
    assert outcome is not None and outcome.redelivery and outcome.hold == HoldStatus.APPROVED

    async with sessions.begin() as session:
        assert await delivery.mark_delivered(session, job.id, 1)
    assert not await awaiting(sessions, job)
    async with sessions.begin() as session:  # once: a second mark finds nothing to mark
        assert not await delivery.mark_delivered(session, job.id, 1)


async def test_an_approval_while_the_notice_was_being_posted_leaves_the_result_awaiting(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    job = await held_job(sessions)
    async with sessions() as session:
        outcome = await delivery.outcome_of(session, job.id)
    assert outcome is not None and outcome.hold == HoldStatus.HELD  # the bot posts the notice…

    await review.approve(sessions, moderator_of(job), job.id)  # …and a moderator approves meanwhile
    async with sessions.begin() as session:
        assert await delivery.mark_delivered(session, job.id, 1, held_notice=True)

    assert await awaiting(sessions, job)  # the stale notice is replaced by the result


@pytest.mark.parametrize("status", [HoldStatus.HELD, HoldStatus.REMOVED])
async def test_held_and_removed_results_do_not_await_delivery_once_their_notice_is_shown(
    sessions: async_sessionmaker[AsyncSession], status: HoldStatus
) -> None:
    job = await held_job(sessions)
    async with sessions.begin() as session:
        held = await session.get(HeldResult, job.id)
        assert held is not None
        held.status, held.decided_at = status, utcnow()
    async with sessions.begin() as session:
        assert await delivery.mark_delivered(session, job.id, 1, held_notice=status == HoldStatus.HELD)
    assert not await awaiting(sessions, job)
