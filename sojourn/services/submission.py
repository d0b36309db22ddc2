"""Submitting work: parse, check limits, hold credits, insert the job rows, then enqueue them.

Each submission is all or nothing: its jobs, holds and balance commit together. Submissions made
at the same moment in one process share their transaction (a group commit, `_SUBMISSIONS`): the
users' rows are locked first (`lock_standings`), so two submissions by one user (from any number
of processes) see each other's jobs when the limits are checked, and a ban committed meanwhile.
Jobs are enqueued after the commit; a job whose message never left (its caller was cancelled, the
broker was down) is resent by the recovery sweep (`sojourn.services.recovery`)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ACTIVE_STATUSES, Ban, Job, JobKind, JobStatus, User
from sojourn.batching import Coalescer
from sojourn.clock import today, utcnow
from sojourn.errors import Banned, PromptBlocked, TooManyJobs, UserError
from sojourn.prompt import PromptError, PromptRules, parse_prompt, to_canonical
from sojourn.prompt.text import format_number
from sojourn.queue import JobQueue
from sojourn.services import credits
from sojourn.services.moderation import bans, strikes, words
from sojourn.services.moderation.server_settings import check_imagine_channel
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


@dataclass(frozen=True)
class PromptRequest:
    """One prompt to submit for a user (see `submit_prompt` for the fields)."""

    user_id: int
    text: str
    origin: Origin = Origin()
    rules: PromptRules | None = None
    image_key: str | None = None
    excused: frozenset[str] = frozenset()
    check_channel: bool = True


# What became of one request in a batch: its jobs, or why it was refused (or failed).
Outcome = list[Job] | Exception


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

    Concurrent calls in one process are written in one transaction (`_SUBMISSIONS`); each is still
    all or nothing, and refused or failed alone.
    """
    request = PromptRequest(user_id, text, origin, rules, image_key, excused, check_channel)
    (outcome,) = await _SUBMISSIONS.submit([(sessions, settings, request)])
    if isinstance(outcome, words.WordsBlocked):
        raise await record_blocked_prompt(sessions, settings, user_id, origin, text, outcome) from None
    if isinstance(outcome, Exception):
        raise outcome
    await enqueue_jobs(sessions, queue, outcome)
    return outcome


async def _submit_batch(
    submissions: list[tuple[async_sessionmaker[AsyncSession], Settings, PromptRequest]],
) -> list[Outcome]:
    """Every submission asked for meanwhile, one transaction per database (a group commit)."""
    by_database: dict[tuple[int, int], list[int]] = {}
    for index, (sessions, settings, _) in enumerate(submissions):
        by_database.setdefault((id(sessions), id(settings)), []).append(index)
    outcomes: list[Outcome] = [[] for _ in submissions]
    for indices in by_database.values():
        sessions, settings, _ = submissions[indices[0]]
        requests = [submissions[index][2] for index in indices]
        for index, outcome in zip(indices, await _submit_together(sessions, settings, requests), strict=True):
            outcomes[index] = outcome
    return outcomes


async def _submit_together(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, requests: list[PromptRequest]
) -> list[Outcome]:
    try:
        async with sessions.begin() as session:
            return await insert_prompt_batch(session, settings, requests)
    except Exception as error:
        if len(requests) == 1:
            return [error]
    # An error no check foresaw (a constraint, a lost connection) rolls the shared transaction
    # back: each request then runs in a transaction of its own, so only its own submission fails.
    return [
        outcome for request in requests for outcome in await _submit_together(sessions, settings, [request])
    ]


# Two batches at once, of up to 100: one batch's statements run on Postgres while the next one's
# prompts are parsed (a 200-burst's last answer: 227 -> 197 ms, BENCHMARKS "Submission path");
# their sends and their "sent" marks go two at once too (233 -> 204 ms).
_SUBMISSIONS: Coalescer[tuple[async_sessionmaker[AsyncSession], Settings, PromptRequest], Outcome] = (
    Coalescer(_submit_batch, max_batch=100, concurrency=2)
)


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
    request = PromptRequest(user_id, text, origin, rules, image_key, excused, check_channel)
    (outcome,) = await insert_prompt_batch(session, settings, [request])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def insert_prompt_batch(
    session: AsyncSession, settings: Settings, requests: Sequence[PromptRequest]
) -> list[Outcome]:
    """Insert and hold the jobs of every request that passes its checks, in the caller's transaction.

    A refused request's outcome is its `UserError` (or `words.WordsBlocked`, whose strike the caller
    records) and it writes nothing; the others are checked as if submitted one after another, in
    order. Every user's row is locked first, then each server's settings and words are read once:
    a batch costs the same few statements as a single submission.
    """
    locked = await lock_standings(session, [request.user_id for request in requests])
    servers = {
        guild_id: await words.server_words(session, settings.moderation, guild_id)
        for guild_id in dict.fromkeys(request.origin.guild_id for request in requests)
    }
    standings = dict(locked)  # each user's, after their requests accepted so far
    outcomes: list[Outcome] = []
    accepted: dict[int, list[Job]] = {}
    warned: list[tuple[PromptRequest, list[words.WordMatch], list[Job]]] = []
    for request in requests:
        try:
            jobs, warnings = _plan_request(settings, request, standings[request.user_id], servers)
            standings[request.user_id] = admit(settings, standings[request.user_id], jobs)
        except (UserError, words.WordsBlocked) as refused:
            outcomes.append(refused)
            continue
        outcomes.append(jobs)
        accepted.setdefault(request.user_id, []).extend(jobs)
        if warnings:
            warned.append((request, warnings, jobs))
    # Each user's jobs are held against the row as locked: `admit` checked their running sum.
    await _insert_and_hold(
        session, settings, [(locked[user_id].account, jobs) for user_id, jobs in accepted.items()]
    )
    for request, warnings, jobs in warned:
        await words.log_warnings(
            session,
            warnings,
            guild_id=request.origin.guild_id,
            user_id=request.user_id,
            job_ids=[job.id for job in jobs],
        )
    return outcomes


def _plan_request(
    settings: Settings,
    request: PromptRequest,
    standing: Standing,
    servers: dict[int | None, words.ServerWords],
) -> tuple[list[Job], list[words.WordMatch]]:
    """The request's jobs and the warn rules its prompt matched; raises why it is refused."""
    origin = request.origin
    standing.check_not_banned(origin.guild_id)
    server_words = servers[origin.guild_id]
    if request.check_channel:
        check_imagine_channel(server_words.server, origin.channel_id)
    account = standing.account
    expanded = expand_prompt(request.text, account.prefer_options, account.prefer_suffix)
    rules = request.rules or PromptRules.from_settings(settings)
    specs = parse_prompt(expanded, rules, defaults=defaults_as_parameters(account.defaults))
    for spec in specs:
        check_image_prompt(spec, has_image=request.image_key is not None)
    texts = [expanded, *(piece for spec in specs for piece in words.spec_texts(spec))]
    warnings = words.screen(server_words, texts, excused=request.excused)
    return _plan_jobs(settings, request.user_id, specs, request.image_key, origin), warnings


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
    """What a submission checks under the user's row lock: their account, active jobs and bans."""

    account: credits.Account
    active_jobs: int  # queued or running
    bans: tuple[Ban, ...] = ()  # in force, from any server

    def check_not_banned(self, guild_id: int | None) -> None:
        if (ban := bans.ban_here(self.bans, guild_id)) is not None:
            raise Banned(ban.reason, ban.ends_at)


async def lock_standings(session: AsyncSession, user_ids: Collection[int]) -> dict[int, Standing]:
    """Lock the users' rows, then read their active jobs and whether any is banned: two statements
    (a third loads the bans of those who are).

    Read after the lock, both stay true until the commit: a ban, and a submission from another
    process, take the same lock first (see `bans`).
    """
    accounts = await credits.lock_accounts(session, user_ids)
    users = User.table()
    active = (
        select(func.count())
        .select_from(Job)
        .where(Job.user_id == users.c.id, Job.status.in_(ACTIVE_STATUSES))
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            select(users.c.id, active, bans.in_force_on(users.c.id)).where(users.c.id.in_(list(accounts)))
        )
    ).all()
    banned = [user_id for user_id, _, any_ban in rows if any_ban]
    found = await bans.bans_anywhere(session, banned) if banned else {}
    return {
        user_id: Standing(accounts[user_id], count or 0, tuple(found.get(user_id, ())))
        for user_id, count, _ in rows
    }


async def lock_standing(session: AsyncSession, user_id: int, guild_id: int | None) -> Standing:
    """One user's standing (`lock_standings`); raises `Banned` if a ban applies here."""
    standing = (await lock_standings(session, [user_id]))[user_id]
    standing.check_not_banned(guild_id)
    return standing


def admit(settings: Settings, standing: Standing, jobs: Sequence[Job]) -> Standing:
    """Refuse `jobs` unless the credits and the user's limits allow them; the standing after them."""
    daily_free, now = settings.credits.daily_free, today()
    cost = sum(job.cost for job in jobs)
    standing.account.require(cost, daily_free, now)
    allowed = settings.limits.max_running_per_user + settings.limits.max_queued_per_user
    if standing.active_jobs + len(jobs) > allowed:
        raise TooManyJobs(active=standing.active_jobs, adding=len(jobs), allowed=allowed)
    return replace(
        standing,
        account=standing.account.after_holds(cost, daily_free, now),
        active_jobs=standing.active_jobs + len(jobs),
    )


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
    admit(settings, standing, jobs)
    await _insert_and_hold(session, settings, [(standing.account, jobs)] if jobs else [])


async def _insert_and_hold(
    session: AsyncSession, settings: Settings, held: Sequence[tuple[credits.Account, Sequence[Job]]]
) -> None:
    """Insert the jobs and hold their cost from each locked account: three statements in all."""
    if not held:
        return
    # Core, one executemany: the ORM's unit of work cost more than the insert itself.
    await session.execute(insert(Job.table()), [_job_row(job) for _, jobs in held for job in jobs])
    await credits.hold_for_jobs(
        session,
        [(account, [(job.id, job.cost) for job in jobs]) for account, jobs in held],
        daily_free=settings.credits.daily_free,
        today=today(),
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


_SENT_MARKS: Coalescer[tuple[async_sessionmaker[AsyncSession], uuid.UUID], None] = Coalescer(
    _mark_sent, concurrency=2
)
