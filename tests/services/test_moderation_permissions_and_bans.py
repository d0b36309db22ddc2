"""Who may moderate (every moderator call refuses anyone else and changes nothing), and bans: per
server or from every server, timed or not, cancelling and refunding the user's jobs there."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import inspect
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Ban, Job, JobStatus, LedgerKind
from sojourn import actions
from sojourn.clock import FixedClock, use_clock
from sojourn.errors import Banned, JobNotFound, NotAModerator, PromptBlocked, UserError
from sojourn.queue import JobQueue
from sojourn.services import credits, lifecycle, submission
from sojourn.services.buttons import Press, press_button, toggle_favorite
from sojourn.services.moderation import (
    appeals,
    audit_log,
    bans,
    members,
    permissions,
    removal,
    review,
    server_settings,
    words,
)
from sojourn.services.moderation.permissions import Actor
from sojourn.services.submission import Origin
from sojourn.settings import Settings
from sojourn.storage import LocalStorage
from tests.services.moderation_helpers import (
    DAILY_FREE,
    balance_of,
    finished_job,
    imagine,
    jobs_of,
    ledger_of,
    log_lines,
    log_of,
    member,
    moderator,
    new_id,
    new_server,
    queue,
    settings,
    snapshot,
    storage,
)
from tests.services.workers import RECOVERY, TEST_WORKER

__all__ = ["queue", "settings", "storage"]  # the shared fixtures (`moderation_helpers`)


pytestmark = pytest.mark.usefixtures("pinned_clock")


# -- who may moderate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """One server with something for every moderator call to act on."""

    origin: Origin
    admin: Actor  # Manage Server
    role_id: int  # the server's moderator role
    member_id: int  # an ordinary member, with a queued job
    queued: Job
    banned_id: int
    appeal_id: int  # a blocked prompt's appeal, pending
    held: Job  # held for review
    finished: Job  # delivered


@dataclass(frozen=True)
class Context:
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    queue: JobQueue
    storage: LocalStorage
    world: World


async def build_world(sessions, settings: Settings, queue: JobQueue, storage: LocalStorage) -> World:  # type: ignore[no-untyped-def]
    origin = new_server()
    admin = moderator(origin)
    role_id = new_id()
    await server_settings.update_server_moderation(
        sessions, settings.moderation, admin, moderator_role_id=role_id
    )
    member_id = new_id()
    queued = await imagine(sessions, settings, queue, origin, member_id)
    banned_id = new_id()
    await bans.ban_user(sessions, admin, banned_id, reason="spam")
    author = new_id()
    with pytest.raises(PromptBlocked) as blocked:
        await submission.submit_prompt(
            sessions, settings, queue, user_id=author, text="a nude statue", origin=origin
        )
    assert blocked.value.strike_id is not None
    appeal = await appeals.file_appeal(sessions, author, blocked.value.strike_id, "a museum piece")
    held, verdict = await finished_job(sessions, settings, queue, storage, origin, score=0.95)
    assert verdict.held and not verdict.removed
    finished, _ = await finished_job(sessions, settings, queue, storage, origin)
    return World(origin, admin, role_id, member_id, queued, banned_id, appeal.id, held, finished)


Call = Callable[[Context, Actor], Awaitable[object]]


def _calls() -> list[tuple[Callable[..., Awaitable[object]], Call, bool]]:
    """(the service function, a call of it, whether it writes) for every call that needs a moderator."""
    return [
        (bans.ban_user, lambda c, a: bans.ban_user(c.sessions, a, c.world.member_id, hours=2), True),
        (bans.unban_user, lambda c, a: bans.unban_user(c.sessions, a, c.world.banned_id), True),
        (
            members.grant_credits,
            lambda c, a: members.grant_credits(
                c.sessions, a, c.world.member_id, 10, reason="a prize", request_id=f"interaction-{a.user_id}"
            ),
            True,
        ),
        (
            members.member_report,
            lambda c, a: members.member_report(c.sessions, c.settings.moderation, a, c.world.member_id),
            False,
        ),
        (members.server_queue, lambda c, a: members.server_queue(c.sessions, a), False),
        (
            members.cancel_as_moderator,
            lambda c, a: members.cancel_as_moderator(c.sessions, a, c.world.queued.id),
            True,
        ),
        (words.add_words, lambda c, a: words.add_words(c.sessions, a, "zorble"), True),
        (words.allow_words, lambda c, a: words.allow_words(c.sessions, a, "zorble"), True),
        (
            words.remove_words,
            lambda c, a: words.remove_words(c.sessions, c.settings.moderation, a, "nude"),
            True,
        ),
        (words.list_words, lambda c, a: words.list_words(c.sessions, c.settings.moderation, a), False),
        (
            words.dry_run,
            lambda c, a: words.dry_run(c.sessions, c.settings.moderation, a, ["a nude statue"]),
            False,
        ),
        (appeals.pending_appeals, lambda c, a: appeals.pending_appeals(c.sessions, a), False),
        (
            appeals.accept_appeal,
            lambda c, a: appeals.accept_appeal(c.sessions, c.settings, c.queue, a, c.world.appeal_id),
            True,
        ),
        (appeals.reject_appeal, lambda c, a: appeals.reject_appeal(c.sessions, a, c.world.appeal_id), True),
        (review.next_held, lambda c, a: review.next_held(c.sessions, a), False),
        (review.approve, lambda c, a: review.approve(c.sessions, a, c.world.held.id), True),
        (
            review.remove,
            lambda c, a: review.remove(c.sessions, c.settings.moderation, a, c.world.held.id),
            True,
        ),
        (
            removal.delete_as_moderator,
            lambda c, a: removal.delete_as_moderator(c.sessions, c.storage, a, str(c.world.finished.id)),
            True,
        ),
        (audit_log.moderator_log, lambda c, a: audit_log.moderator_log(c.sessions, a), False),
        (
            server_settings.update_server_moderation,
            lambda c, a: server_settings.update_server_moderation(
                c.sessions, c.settings.moderation, a, safety_mode="block"
            ),
            True,
        ),
    ]


def _id(function: Callable[..., object]) -> str:
    return f"{function.__module__.rsplit('.', 1)[1]}.{function.__name__}"


CALLS = [pytest.param(call, writes, id=_id(function)) for function, call, writes in _calls()]


def test_every_service_call_that_takes_an_actor_is_checked_here() -> None:
    """A new moderator call is added to `_calls`, so its refusal is tested like the others'."""
    package = Path(appeals.__file__).parent
    taking_an_actor = set()
    for found in pkgutil.iter_modules([str(package)]):
        module = importlib.import_module(f"{appeals.__package__}.{found.name}")
        for name, function in inspect.getmembers(module, inspect.iscoroutinefunction):
            if function.__module__ != module.__name__ or name.startswith("_") or module is permissions:
                continue
            if "actor" in inspect.signature(function).parameters:
                taking_an_actor.add(function)
    assert {_id(f) for f in taking_an_actor} == {_id(function) for function, _, _ in _calls()}


@pytest.mark.parametrize("call", [pytest.param(call, id=_id(function)) for function, call, _ in _calls()])
async def test_every_moderator_call_refuses_a_member_and_changes_nothing(
    sessions, settings, queue, storage, call: Call
) -> None:  # type: ignore[no-untyped-def]
    world = await build_world(sessions, settings, queue, storage)
    context = Context(sessions, settings, queue, storage, world)
    elsewhere, other_role = new_server(), new_id()
    await server_settings.update_server_moderation(
        sessions, settings.moderation, moderator(elsewhere), moderator_role_id=other_role
    )
    refused = [
        member(world.origin),
        member(world.origin, roles=[other_role, new_id()]),  # a moderator there, not here
    ]
    before = await snapshot(sessions)
    sent = list(queue.sent)
    for actor in refused:
        with pytest.raises(NotAModerator) as error:
            await call(context, actor)
        assert "Nothing was changed" in error.value.message
    assert await snapshot(sessions) == before
    assert queue.sent == sent


@pytest.mark.parametrize("who", ["manage_server", "moderator_role"])
@pytest.mark.parametrize(("call", "writes"), CALLS)
async def test_every_moderator_call_admits_manage_server_and_the_moderator_role(
    sessions, settings, queue, storage, call: Call, writes: bool, who: str
) -> None:  # type: ignore[no-untyped-def]
    world = await build_world(sessions, settings, queue, storage)
    actor = (
        moderator(world.origin)
        if who == "manage_server"
        else member(world.origin, roles=[new_id(), world.role_id])
    )
    entries = len(await log_of(sessions, world.origin.guild_id))
    await call(Context(sessions, settings, queue, storage, world), actor)
    log = await log_of(sessions, world.origin.guild_id)
    if writes:
        assert len(log) == entries + 1 and log[-1].actor_id == actor.user_id
    else:
        assert len(log) == entries


async def test_another_servers_moderator_cannot_reach_this_servers_records(
    sessions, settings, queue, storage
) -> None:  # type: ignore[no-untyped-def]
    world = await build_world(sessions, settings, queue, storage)
    elsewhere = new_server()
    outsider = moderator(elsewhere)  # Manage Server, but on their own server
    before = await snapshot(sessions)
    with pytest.raises(JobNotFound):
        await members.cancel_as_moderator(sessions, outsider, world.queued.id)
    with pytest.raises(JobNotFound):
        await removal.delete_as_moderator(sessions, storage, outsider, str(world.finished.id))
    with pytest.raises(UserError, match="That appeal does not exist on this server"):
        await appeals.accept_appeal(sessions, settings, queue, outsider, world.appeal_id)
    with pytest.raises(UserError, match="That appeal does not exist on this server"):
        await appeals.reject_appeal(sessions, outsider, world.appeal_id)
    with pytest.raises(UserError, match="no longer waiting for review"):
        await review.approve(sessions, outsider, world.held.id)
    with pytest.raises(UserError, match="no longer waiting for review"):
        await review.remove(sessions, settings.moderation, outsider, world.held.id)
    with pytest.raises(UserError, match="is not banned on this server"):
        await bans.unban_user(sessions, outsider, world.banned_id)
    assert await review.next_held(sessions, outsider) is None
    assert await appeals.pending_appeals(sessions, outsider) == []
    assert await members.server_queue(sessions, outsider) == []
    assert await snapshot(sessions) == before
    # And this server's role, held on that server, is nothing there.
    with pytest.raises(NotAModerator):
        await words.add_words(sessions, member(elsewhere, roles=[world.role_id]), "zorble")


async def test_moderation_needs_a_server(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    in_a_dm = Actor(user_id=new_id(), guild_id=None, manage_guild=True)
    with pytest.raises(UserError, match="Moderation works in a server channel"):
        await words.add_words(sessions, in_a_dm, "zorble")


async def test_the_moderator_role_can_be_changed_and_cleared(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    origin = new_server()
    admin = moderator(origin)
    first, second = new_id(), new_id()
    await server_settings.update_server_moderation(
        sessions, settings.moderation, admin, moderator_role_id=first
    )
    await words.add_words(sessions, member(origin, roles=[first]), "zorble")
    await server_settings.update_server_moderation(
        sessions, settings.moderation, admin, moderator_role_id=second
    )
    with pytest.raises(NotAModerator):
        await words.add_words(sessions, member(origin, roles=[first]), "zorble")
    await words.add_words(sessions, member(origin, roles=[second]), "zorble")
    await server_settings.update_server_moderation(sessions, settings.moderation, admin, moderator_role_id=0)
    with pytest.raises(NotAModerator):
        await words.add_words(sessions, member(origin, roles=[second]), "zorble")


# -- bans ---------------------------------------------------------------------------------------


def press_on(job: Job, user_id: int, origin: Origin, action: actions.ButtonAction = actions.UPSCALE) -> Press:
    return Press(action=action, job_id=job.id, index=1, presser_id=user_id, origin=origin)


async def test_a_ban_cancels_and_refunds_the_users_jobs_in_that_server_only(
    sessions, settings, queue
) -> None:  # type: ignore[no-untyped-def]
    here, elsewhere = new_server(), new_server()
    admin, user_id = moderator(here), new_id()
    queued = await imagine(sessions, settings, queue, here, user_id, "a cat --seed 1")
    running = await imagine(sessions, settings, queue, here, user_id, "a dog --seed 2")
    other = await imagine(sessions, settings, queue, elsewhere, user_id, "a bird --seed 3")
    async with sessions.begin() as session:
        assert await lifecycle.claim_job(session, running.id, TEST_WORKER, RECOVERY)

    outcome = await bans.ban_user(sessions, admin, user_id, reason="spam")

    assert set(outcome.cancelled) == {queued.id, running.id}
    assert (outcome.ban.guild_id, outcome.ban.ends_at, outcome.ban.banned_by) == (
        here.guild_id,
        None,
        admin.user_id,
    )
    statuses = {job.id: job.status for job in await jobs_of(sessions, user_id)}
    assert statuses == {
        queued.id: JobStatus.CANCELLED,
        running.id: JobStatus.CANCELLED,
        other.id: JobStatus.QUEUED,
    }
    ledger = await ledger_of(sessions, user_id)
    assert ledger[:4] == [
        (LedgerKind.DAILY, DAILY_FREE),
        (LedgerKind.HOLD, -queued.cost),
        (LedgerKind.HOLD, -running.cost),
        (LedgerKind.HOLD, -other.cost),
    ]
    assert sorted(ledger[4:]) == sorted([(LedgerKind.REFUND, queued.cost), (LedgerKind.REFUND, running.cost)])
    assert await balance_of(sessions, user_id) == DAILY_FREE - other.cost
    (entry,) = await log_of(sessions, here.guild_id)
    assert (entry.action, entry.actor_id, entry.target_user_id) == ("ban", admin.user_id, user_id)
    assert (entry.detail, entry.reason) == ("until lifted; 2 jobs cancelled and refunded", "spam")
    assert await log_of(sessions, elsewhere.guild_id) == []


async def test_a_banned_user_is_told_why_and_until_when_and_the_ban_ends_on_time(
    sessions, settings, queue, storage
) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    parent, _ = await finished_job(sessions, settings, queue, storage, here, user_id)
    balance = await balance_of(sessions, user_id)

    outcome = await bans.ban_user(sessions, moderator(here), user_id, hours=2, reason="flooding the channel")

    ends_at = outcome.ban.ends_at
    assert ends_at == outcome.ban.created_at + dt.timedelta(hours=2)
    for attempt in (
        submission.submit_prompt(sessions, settings, queue, user_id=user_id, text="a cat", origin=here),
        press_button(sessions, settings, queue, press_on(parent, user_id, here)),
        toggle_favorite(sessions, press_on(parent, user_id, here, actions.FAVORITE)),
    ):
        with pytest.raises(Banned) as banned:
            await attempt
        assert "Reason: flooding the channel." in banned.value.message
        assert f"until <t:{int(ends_at.timestamp())}:f>" in banned.value.message
    assert await balance_of(sessions, user_id) == balance
    with use_clock(FixedClock(ends_at - dt.timedelta(minutes=1))), pytest.raises(Banned):
        await submission.submit_prompt(sessions, settings, queue, user_id=user_id, text="a cat", origin=here)
    with use_clock(FixedClock(ends_at + dt.timedelta(minutes=1))):
        await imagine(sessions, settings, queue, here, user_id)
        assert (await press_button(sessions, settings, queue, press_on(parent, user_id, here))).created
        async with sessions() as session:
            assert await bans.active_ban(session, user_id, here.guild_id) is None


async def test_unban_lifts_the_ban_and_is_logged(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    admin, other_moderator = moderator(here), moderator(here)
    await bans.ban_user(sessions, admin, user_id, reason="spam")
    with pytest.raises(Banned, match="until a moderator lifts the ban"):
        await imagine(sessions, settings, queue, here, user_id)

    assert await bans.unban_user(sessions, other_moderator, user_id) == 1

    await imagine(sessions, settings, queue, here, user_id)
    async with sessions() as session:
        (ban,) = (await session.execute(select(Ban).where(Ban.user_id == user_id))).scalars()
    assert ban.lifted_by == other_moderator.user_id and ban.lifted_at is not None
    with pytest.raises(UserError, match="is not banned on this server: nothing to lift"):
        await bans.unban_user(sessions, admin, user_id)
    assert await log_lines(sessions, here.guild_id) == [
        ("ban", admin.user_id, user_id, None),
        ("unban", other_moderator.user_id, user_id, None),
    ]


async def test_a_ban_on_one_server_does_not_reach_another(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here, elsewhere, user_id = new_server(), new_server(), new_id()
    there_job, _ = await finished_job(sessions, settings, queue, storage, elsewhere, user_id)
    await bans.ban_user(sessions, moderator(here), user_id, reason="spam")

    with pytest.raises(Banned):
        await imagine(sessions, settings, queue, here, user_id)
    await imagine(sessions, settings, queue, elsewhere, user_id)
    await imagine(sessions, settings, queue, Origin(), user_id)  # a DM
    assert (await press_button(sessions, settings, queue, press_on(there_job, user_id, elsewhere))).created


async def test_a_ban_from_every_server_applies_everywhere(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here, elsewhere, user_id = new_server(), new_server(), new_id()
    parent, _ = await finished_job(sessions, settings, queue, storage, here, user_id)
    async with sessions.begin() as session:
        session.add(Ban(user_id=user_id, guild_id=None, reason="banned before bans had reasons"))
    for origin in (here, elsewhere, Origin()):
        with pytest.raises(Banned, match="Reason: banned before bans had reasons"):
            await imagine(sessions, settings, queue, origin, user_id)
    with pytest.raises(Banned):
        await press_button(sessions, settings, queue, press_on(parent, user_id, here))
    # A server's moderators lift their own server's bans, not one from every server.
    with pytest.raises(UserError, match="is not banned on this server"):
        await bans.unban_user(sessions, moderator(here), user_id)


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        (0, "A ban lasts between 1 and"),
        (-3, "A ban lasts between 1 and"),
        (bans.MAX_BAN_HOURS + 1, "A ban lasts between 1 and"),
    ],
)
async def test_a_ban_out_of_bounds_is_refused(sessions, hours: float, message: str) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    with pytest.raises(UserError, match=message):
        await bans.ban_user(sessions, moderator(here), new_id(), hours=hours)
    assert await log_of(sessions, here.guild_id) == []


async def test_a_moderator_cannot_ban_themselves(sessions) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin = moderator(here)
    with pytest.raises(UserError, match="You cannot ban yourself"):
        await bans.ban_user(sessions, admin, admin.user_id)
    assert await log_of(sessions, here.guild_id) == []


async def test_submissions_racing_a_ban_are_refused_or_cancelled(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        here, user_id = new_server(), new_id()
        results = await asyncio.gather(
            *(
                submission.submit_prompt(
                    sessions, settings, queue, user_id=user_id, text=f"a cat --seed {seed}", origin=here
                )
                for seed in range(3)
            ),
            bans.ban_user(sessions, moderator(here), user_id, reason="spam"),
            return_exceptions=True,
        )
        *submitted, outcome = results
        assert isinstance(outcome, bans.BanOutcome), outcome
        made = [jobs for jobs in submitted if isinstance(jobs, list)]
        assert all(isinstance(r, list | Banned) for r in submitted), submitted
        jobs = await jobs_of(sessions, user_id)
        assert {job.id for job in jobs} == {jobs[0].id for jobs in made} == set(outcome.cancelled)
        assert all(job.status == JobStatus.CANCELLED for job in jobs)
        assert await balance_of(sessions, user_id) == (DAILY_FREE if made else 0)


async def test_the_ban_lock_is_the_users_row(sessions) -> None:  # type: ignore[no-untyped-def]
    """A ban on someone sojourn has never seen creates their row (the lock needs one)."""
    here, user_id = new_server(), new_id()
    await bans.ban_user(sessions, moderator(here), user_id)
    async with sessions() as session:
        assert await credits.balance_of(session, user_id) == 0
        assert await bans.active_ban(session, user_id, here.guild_id) is not None
