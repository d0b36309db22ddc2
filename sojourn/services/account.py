"""Everything /info shows about one user, read in one unit of work (a banned user may still ask)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ACTIVE_STATUSES, Ban, JobStatus
from sojourn import clock
from sojourn.services import credits, queue_info
from sojourn.services.delivery import DeliveryFailure, take_unreported_failures
from sojourn.services.job_queries import recent_jobs
from sojourn.services.moderation.bans import active_ban
from sojourn.services.users import Preferences, preferences_of
from sojourn.settings import Settings


@dataclass(frozen=True)
class ActiveJob:
    job_id: uuid.UUID
    prompt: str
    status: JobStatus
    progress: int
    mode: str
    position: int | None  # queued jobs only
    eta_seconds: float | None


@dataclass(frozen=True)
class AccountOverview:
    balance: int
    daily_free: int
    granted_today: bool
    jobs: list[ActiveJob]
    preferences: Preferences
    delivery_failures: list[DeliveryFailure]
    ban: Ban | None = None  # in force where /info was asked (this server's, or one from every server)

    @property
    def running(self) -> list[ActiveJob]:
        return [job for job in self.jobs if job.status == JobStatus.RUNNING]

    @property
    def queued(self) -> list[ActiveJob]:
        return [job for job in self.jobs if job.status == JobStatus.QUEUED]


async def account_overview(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, user_id: int, guild_id: int | None = None
) -> AccountOverview:
    """Balance (after today's free grant, which is due on any visit), jobs, preferences, failures,
    and the ban in force in `guild_id` (None: a direct message, where only a ban from every server counts).

    Undeliverable results are reported here once: they are marked reported in the same transaction.
    """
    today = clock.today()
    async with sessions.begin() as session:
        user = await credits.ensure_user(session, user_id)
        await credits.grant_daily_if_due(session, user_id, settings.credits.daily_free, today)
        await session.refresh(user)
        typical = await queue_info.typical_duration(session, settings.bot.default_eta_seconds)
        jobs = list(reversed(await recent_jobs(session, user_id, statuses=ACTIVE_STATUSES, limit=50)))
        estimates = await queue_info.estimates_for(
            session, jobs, default_seconds=settings.bot.default_eta_seconds, typical=typical
        )
        active = []
        for job in jobs:
            estimate = estimates.get(job.id)
            active.append(
                ActiveJob(
                    job_id=job.id,
                    prompt=job.prompt,
                    status=job.status,
                    progress=job.progress,
                    mode=str(job.spec.get("mode", "fast")),
                    position=estimate.position if estimate else None,
                    eta_seconds=estimate.eta_seconds if estimate else None,
                )
            )
        failures = await take_unreported_failures(session, user_id)
        ban = await active_ban(session, user_id, guild_id)
        return AccountOverview(
            balance=user.balance,
            daily_free=settings.credits.daily_free,
            granted_today=user.daily_grant_on == today,
            jobs=active,
            preferences=preferences_of(user),
            delivery_failures=failures,
            ban=ban,
        )
