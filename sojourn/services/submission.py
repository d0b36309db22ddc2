"""Submitting work: parse, check limits, hold credits, insert the job rows, then enqueue them.

One transaction per submission: the user's row is locked first (`lock_standing`), so two
submissions by one user (from any number of processes) see each other's jobs when the limits are
checked, and a ban committed meanwhile.
Jobs are enqueued after the commit; a job whose message never left is resent by the recovery
sweep (`sojourn.services.recovery`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ACTIVE_STATUSES, Job, JobKind, JobStatus
from sojourn.batching import Coalescer
from sojourn.clock import today, utcnow
from sojourn.errors import PromptBlocked, TooManyJobs
from sojourn.prompt import PromptError, PromptRules, parse_prompt, to_canonical
from sojourn.prompt.text import format_number
from sojourn.queue import JobQueue
from sojourn.services import credits
from sojourn.services.moderation import bans, strikes, words
from sojourn.services.moderation.server_settings import check_imagine_channel, server_moderation
from sojourn.services.pricing import job_cost
from sojourn.services.users import expand_prompt
from sojourn.settings import Settings
from sojourn.spec import SEED_MAX, JobSpec, image_prompt_strength

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Origin:
    """Where a job was asked for, so the result can be delivered there."""

    guild_id: int | None = None
    channel_id: int | None = None
    message_id: int | None = None
    age_restricted: bool = False  # an age-restricted (NSFW) channel
    channel_public: bool = False  # @everyone can view the channel (only such results enter galleries)


def defaults_as_parameters(defaults: dict[str, object]) -> str:
    """A user's saved defaults as the parameter string the parser merges."""
    return str(defaults.get("parameters", "")).strip()


def draw_seed() -> int:
    """A fresh random seed (every job stores one, so every job is reproducible)."""
    return secrets.randbelow(SEED_MAX + 1)


def check_image_prompt(spec: JobSpec, *, has_image: bool, can_attach: bool = True) -> None:
    """`--iw` needs an image prompt, and `--stop` must leave the image prompt something to do.

    `can_attach`: whether the user can still attach an image (in /imagine, not in a remix).
    """
    if not has_image:
        if spec.image_weight != 1.0:
            fix = "attach an image (the image option), or remove --iw" if can_attach else "remove --iw"
            raise PromptError(f"--iw weighs an image prompt, and there is none: {fix}")
        return
    starts_at = round((1 - image_prompt_strength(spec.image_weight)) * 100)
    if spec.stop <= starts_at:
        raise PromptError(
            f"--stop {spec.stop} ends before an image prompt at --iw "
            f"{format_number(spec.image_weight)} even starts (at {starts_at} %): "
            f"raise --stop above {starts_at} or lower --iw"
        )


async def submit_prompt(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    queue: JobQueue,
    *,
    user_id: int,
    text: str,
    origin: Origin = Origin(),
    rules: PromptRules | None = None,
    image_key: str | None = None,
    excused: frozenset[str] = frozenset(),
    check_channel: bool = True,
) -> list[Job]:
    """Parse, screen, check credits and limits, hold credits, insert the jobs and enqueue them.

    The user's /prefer suffix and options are applied to `text` first, and their saved defaults
    sit under it. `image_key` is an image prompt already validated and stored (see
    `image_prompts`). Raises a `UserError` (bad prompt, banned, a blocked word, not in this
    channel, no credits, too many jobs) before anything is charged or queued; a blocked prompt is
    recorded as a strike (`PromptBlocked.strike_id`). `excused`: word rules a moderator accepted
    for this prompt (an appeal); `check_channel`: False where a moderator runs it.
    """
    try:
        async with sessions.begin() as session:
            jobs = await insert_prompt_jobs(
                session,
                settings,
                user_id=user_id,
                text=text,
                origin=origin,
                rules=rules,
                image_key=image_key,
                excused=excused,
                check_channel=check_channel,
            )
    except words.WordsBlocked as blocked:
        raise await record_blocked_prompt(sessions, settings, user_id, origin, text, blocked) from None

    await enqueue_jobs(sessions, queue, jobs)
    return jobs


async def insert_prompt_jobs(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    text: str,
    origin: Origin,
    rules: PromptRules | None = None,
    image_key: str | None = None,
    excused: frozenset[str] = frozenset(),
    check_channel: bool = True,
) -> list[Job]:
    """`submit_prompt`'s work inside the caller's transaction: the jobs are inserted and held, not
    sent. Raises `words.WordsBlocked` (the caller records the strike) or a `UserError`."""
    rules = rules or PromptRules.from_settings(settings)
    standing = await lock_standing(session, user_id, origin.guild_id)
    if check_channel:
        server = await server_moderation(session, settings.moderation, origin.guild_id)
        check_imagine_channel(server, origin.channel_id)
    account = standing.account
    expanded = expand_prompt(text, account.prefer_options, account.prefer_suffix)
    specs = parse_prompt(expanded, rules, defaults=defaults_as_parameters(account.defaults))
    for spec in specs:
        check_image_prompt(spec, has_image=image_key is not None)
    texts = [expanded, *(piece for spec in specs for piece in words.spec_texts(spec))]
    warnings = await words.screen_prompt(
        session, settings.moderation, origin.guild_id, texts, excused=excused
    )
    jobs = _plan_jobs(settings, user_id, specs, image_key, origin)
    await hold_and_insert(session, settings, user_id, jobs, standing=standing)
    await words.log_warnings(
        session, warnings, guild_id=origin.guild_id, user_id=user_id, job_ids=[job.id for job in jobs]
    )
    return jobs


async def record_blocked_prompt(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    user_id: int,
    origin: Origin,
    text: str,
    blocked: words.WordsBlocked,
) -> PromptBlocked:
    """Record a blocked prompt as a strike (its own transaction); the error to show, with its id."""
    strike_id = await strikes.record_block(
        sessions,
        settings.moderation,
        user_id=user_id,
        guild_id=origin.guild_id,
        channel_id=origin.channel_id,
        prompt=text,
        matches=blocked.matches,
    )
    return PromptBlocked([match.describe() for match in blocked.matches], strike_id)


def _plan_jobs(
    settings: Settings, user_id: int, specs: Sequence[JobSpec], image_key: str | None, origin: Origin
) -> list[Job]:
    """One job per permutation and repeat, each with its seed drawn."""
    planned = [
        spec.model_copy(
            update={"image_key": image_key, "seed": draw_seed() if spec.seed is None else spec.seed}
        )
        for spec in specs
        for _ in range(spec.repeat)
    ]
    return [
        new_job(user_id, JobKind.IMAGINE, spec, job_cost(spec, settings.credits), origin) for spec in planned
    ]


def new_job(user_id: int, kind: JobKind, spec: JobSpec, cost: int, origin: Origin, **extra: object) -> Job:
    """A queued job row for `spec` (not added to a session yet)."""
    return Job(
        id=uuid.uuid4(),
        user_id=user_id,
        kind=kind,
        prompt=to_canonical(spec),
        spec=spec.model_dump(mode="json"),
        status=JobStatus.QUEUED,
        cost=cost,
        progress=0,
        attempts=0,
        dispatch=0,
        queued_at=utcnow(),
        guild_id=origin.guild_id,
        channel_id=origin.channel_id,
        message_id=origin.message_id,
        age_restricted=origin.age_restricted,
        channel_public=origin.channel_public,
        private=spec.private,
        **extra,
    )


@dataclass(frozen=True)
class Standing:
    """What a submission checks under the user's row lock: their account and active jobs."""

    account: credits.Account
    active_jobs: int  # queued or running


async def lock_standing(session: AsyncSession, user_id: int, guild_id: int | None) -> Standing:
    """Lock the user's row, then refuse a banned user and count their active jobs: two statements.

    Read after the lock, both stay true until the commit: a ban, and a submission from another
    process, take the same lock first (see `bans`).
    """
    account = await credits.lock_account(session, user_id)
    banned, active = (
        await session.execute(
            select(
                exists().where(*bans.bans_in_force(user_id, guild_id)),
                select(func.count())
                .select_from(Job)
                .where(Job.user_id == user_id, Job.status.in_(ACTIVE_STATUSES))
                .scalar_subquery(),
            )
        )
    ).one()
    if banned:
        await bans.check_not_banned(session, user_id, guild_id)  # loads the ban, for its reason and end
    return Standing(account, active or 0)


async def hold_and_insert(
    session: AsyncSession,
    settings: Settings,
    user_id: int,
    jobs: Sequence[Job],
    *,
    standing: Standing | None = None,
) -> None:
    """Check the credits and the limits, insert the jobs, grant today's credits if due and hold the
    jobs' cost. `standing`: from `lock_standing` in this transaction, if the caller took it."""
    if standing is None:
        standing = await lock_standing(session, user_id, jobs[0].guild_id if jobs else None)
    daily_free, now = settings.credits.daily_free, today()
    standing.account.require(sum(job.cost for job in jobs), daily_free, now)
    allowed = settings.limits.max_running_per_user + settings.limits.max_queued_per_user
    if standing.active_jobs + len(jobs) > allowed:
        raise TooManyJobs(active=standing.active_jobs, adding=len(jobs), allowed=allowed)
    if not jobs:
        return
    # Core, one executemany: the ORM's unit of work cost more than the insert itself.
    await session.execute(insert(Job.table()), [_job_row(job) for job in jobs])
    await credits.hold_for_jobs(
        session, standing.account, [(job.id, job.cost) for job in jobs], daily_free=daily_free, today=now
    )


def _job_row(job: Job) -> dict[str, object]:
    """A new job's column values, as `new_job` set them (its attributes are named as its columns)."""
    return {name: value for name, value in vars(job).items() if not name.startswith("_")}


async def enqueue_jobs(
    sessions: async_sessionmaker[AsyncSession], queue: JobQueue, jobs: Sequence[Job]
) -> None:
    """Send jobs to the queue, then note that they were sent (the recovery sweep resends the rest).

    Concurrent calls in one process share their trips to the broker and to the database (see
    `sojourn.batching`): a burst of submissions sends and marks its jobs in a few batches.
    """
    outcomes = await asyncio.gather(
        *(queue.enqueue(job.id, job.spec.get("mode", "fast"), job.dispatch) for job in jobs),
        return_exceptions=True,
    )
    sent = [job.id for job, outcome in zip(jobs, outcomes, strict=True) if outcome is None]
    failures = [outcome for outcome in outcomes if outcome is not None]
    if failures:  # the broker is down: one line, not a traceback per job
        log.warning(
            "could not enqueue %d job(s) (%s); the recovery sweep will retry", len(failures), failures[0]
        )
    await _SENT_MARKS.submit([(sessions, job_id) for job_id in sent])


async def _mark_sent(
    sent: list[tuple[async_sessionmaker[AsyncSession], uuid.UUID]],
) -> list[None]:
    """One UPDATE per database for every job sent since the last one."""
    by_database: dict[async_sessionmaker[AsyncSession], list[uuid.UUID]] = {}
    for sessions, job_id in sent:
        by_database.setdefault(sessions, []).append(job_id)
    for sessions, job_ids in by_database.items():
        try:
            async with sessions.begin() as session:
                await session.execute(
                    update(Job.table()).where(Job.table().c.id.in_(job_ids)).values(enqueued_at=utcnow())
                )
        except (DBAPIError, OSError):
            # The jobs are committed and their messages sent: the submissions succeeded. Unmarked,
            # they look unsent, and the sweep resends them; a worker runs one copy, once.
            log.warning("could not mark %d jobs as sent; the recovery sweep will resend them", len(job_ids))
    return [None] * len(sent)


_SENT_MARKS: Coalescer[tuple[async_sessionmaker[AsyncSession], uuid.UUID], None] = Coalescer(_mark_sent)
