"""Appeals of blocked prompts: filed by the author, decided once by the server's moderators; an
accepted one runs the prompt once, charged once, and lifts the strike."""

from __future__ import annotations

import asyncio

import pytest

from db.models import AppealStatus, JobStatus, LedgerKind, StrikeSource
from sojourn.errors import PromptBlocked, UserError
from sojourn.services import submission
from sojourn.services.moderation import appeals, bans, server_settings, strikes, words
from sojourn.services.submission import Origin
from sojourn.settings import Credits
from tests.services.moderation_helpers import (
    DAILY_FREE,
    balance_of,
    imagine,
    jobs_of,
    ledger_of,
    log_lines,
    log_of,
    moderator,
    new_id,
    new_server,
    queue,
    settings,
    strikes_of,
)

__all__ = ["queue", "settings"]  # the shared fixtures (`moderation_helpers`)


pytestmark = pytest.mark.usefixtures("pinned_clock")


async def block(sessions, settings, queue, origin: Origin, user_id: int, text: str) -> int:  # type: ignore[no-untyped-def]
    """Submit a prompt the filter blocks; the strike's id."""
    with pytest.raises(PromptBlocked) as blocked:
        await submission.submit_prompt(sessions, settings, queue, user_id=user_id, text=text, origin=origin)
    assert blocked.value.strike_id is not None
    return blocked.value.strike_id


async def test_an_accepted_appeal_runs_the_prompt_once_charges_once_and_lifts_the_strike(
    sessions, settings, queue
) -> None:  # type: ignore[no-untyped-def]
    here, author = new_server(), new_id()
    admin, second_moderator = moderator(here), moderator(here)
    strike_id = await block(sessions, settings, queue, here, author, "a nude statue in a museum --seed 3")

    appeal = await appeals.file_appeal(sessions, author, strike_id, "  it is a museum piece  ")

    assert (appeal.status, appeal.reason, appeal.guild_id) == (
        AppealStatus.PENDING,
        "it is a museum piece",
        here.guild_id,
    )
    (pending,) = await appeals.pending_appeals(sessions, admin)
    assert (pending.appeal.id, pending.strike.id) == (appeal.id, strike_id)
    assert pending.strike.prompt == "a nude statue in a museum --seed 3"

    decision = await appeals.accept_appeal(sessions, settings, queue, admin, appeal.id)

    (job,) = decision.jobs
    assert decision.problem is None and decision.appeal.status == AppealStatus.ACCEPTED
    assert decision.appeal.job_id == job.id and decision.strike.revoked_at is not None
    assert (job.user_id, job.guild_id, job.channel_id, job.status) == (
        author,
        here.guild_id,
        here.channel_id,
        JobStatus.QUEUED,
    )
    assert job.prompt.startswith("a nude statue in a museum")
    with pytest.raises(UserError, match=rf"That appeal was already accepted \(by <@{admin.user_id}>\)"):
        await appeals.accept_appeal(sessions, settings, queue, second_moderator, appeal.id)
    with pytest.raises(UserError, match="already accepted"):
        await appeals.reject_appeal(sessions, second_moderator, appeal.id)

    assert queue.sent == [job.id]
    assert [j.id for j in await jobs_of(sessions, author)] == [job.id]
    assert await ledger_of(sessions, author) == [(LedgerKind.DAILY, DAILY_FREE), (LedgerKind.HOLD, -job.cost)]
    assert await balance_of(sessions, author) == DAILY_FREE - job.cost
    (strike,) = await strikes_of(sessions, author)
    assert strike.revoked_at is not None
    assert await appeals.pending_appeals(sessions, admin) == []
    assert await log_lines(sessions, here.guild_id) == [
        ("block", None, author, None),
        ("appeal", author, author, None),
        ("appeal_accepted", admin.user_id, author, job.id),
    ]
    filed, accepted = (await log_of(sessions, here.guild_id))[1:]
    assert filed.reason == "it is a museum piece"
    assert accepted.detail == f"appeal {appeal.id}: strike lifted; 1 job(s) queued"


async def test_an_appeal_accepted_by_many_clicks_at_once_runs_once(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, author = new_server(), new_id()
    strike_id = await block(sessions, settings, queue, here, author, "a {nude, naked} statue --seed 4")
    appeal = await appeals.file_appeal(sessions, author, strike_id, "art")

    outcomes = await asyncio.gather(
        *(appeals.accept_appeal(sessions, settings, queue, moderator(here), appeal.id) for _ in range(6)),
        return_exceptions=True,
    )

    decisions = [outcome for outcome in outcomes if isinstance(outcome, appeals.Decision)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, UserError)]
    assert len(decisions) == 1 and len(refused) == 5, outcomes
    assert all("That appeal was already accepted" in error.message for error in refused)
    jobs = decisions[0].jobs
    assert len(jobs) == 2  # both permutations: each blocked word was excused
    assert sorted(queue.sent) == sorted(job.id for job in jobs)
    assert sorted(j.id for j in await jobs_of(sessions, author)) == sorted(job.id for job in jobs)
    holds = [entry for entry in await ledger_of(sessions, author) if entry[0] == LedgerKind.HOLD]
    assert sorted(holds) == sorted((LedgerKind.HOLD, -job.cost) for job in jobs)
    assert [line[0] for line in await log_lines(sessions, here.guild_id)].count("appeal_accepted") == 1


async def test_a_rejected_appeal_keeps_the_strike(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, author = new_server(), new_id()
    admin = moderator(here)
    strike_id = await block(sessions, settings, queue, here, author, "a nude statue")
    appeal = await appeals.file_appeal(sessions, author, strike_id, "art")

    decision = await appeals.reject_appeal(sessions, admin, appeal.id, reason="not here")

    assert decision.appeal.status == AppealStatus.REJECTED and decision.jobs == []
    (strike,) = await strikes_of(sessions, author)
    assert strike.revoked_at is None
    assert await jobs_of(sessions, author) == [] and await ledger_of(sessions, author) == []
    with pytest.raises(UserError, match="That appeal was already rejected"):
        await appeals.accept_appeal(sessions, settings, queue, admin, appeal.id)
    with pytest.raises(UserError, match="You already appealed this block; it is rejected"):
        await appeals.file_appeal(sessions, author, strike_id, "please")
    assert queue.sent == []
    rejected = (await log_of(sessions, here.guild_id))[-1]
    assert (rejected.action, rejected.actor_id, rejected.target_user_id, rejected.reason) == (
        "appeal_rejected",
        admin.user_id,
        author,
        "not here",
    )


async def test_only_the_author_appeals_and_only_once(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, author, someone = new_server(), new_id(), new_id()
    strike_id = await block(sessions, settings, queue, here, author, "a nude statue")
    with pytest.raises(UserError, match="There is no blocked prompt of yours to appeal here"):
        await appeals.file_appeal(sessions, someone, strike_id, "let them")
    with pytest.raises(UserError, match="There is no blocked prompt of yours to appeal here"):
        await appeals.file_appeal(sessions, author, strike_id + 10_000, "a missing strike")
    with pytest.raises(UserError, match="Say why the prompt should be allowed"):
        await appeals.file_appeal(sessions, author, strike_id, "   ")
    await appeals.file_appeal(sessions, author, strike_id, "art")
    with pytest.raises(UserError, match="You already appealed this block; it is pending"):
        await appeals.file_appeal(sessions, author, strike_id, "art, really")
    assert [line[0] for line in await log_lines(sessions, here.guild_id)] == ["block", "appeal"]


async def test_a_removed_result_is_not_a_blocked_prompt_to_appeal(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    here, author = new_server(), new_id()
    async with sessions.begin() as session:
        strike = await strikes.add_strike(
            session,
            settings.moderation,
            user_id=author,
            guild_id=here.guild_id,
            source=StrikeSource.IMAGE,
            detail="result removed",
        )
    with pytest.raises(UserError, match="There is no blocked prompt of yours to appeal here"):
        await appeals.file_appeal(sessions, author, strike.id, "it was fine")


async def test_an_accepted_prompt_that_still_cannot_run_reports_why_and_runs_nothing(
    sessions, settings, queue
) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin = moderator(here)

    # It also matches a rule added since.
    author = new_id()
    strike_id = await block(sessions, settings, queue, here, author, "a nude zorble")
    appeal = await appeals.file_appeal(sessions, author, strike_id, "art")
    await words.add_words(sessions, admin, "zorble")
    decision = await appeals.accept_appeal(sessions, settings, queue, admin, appeal.id)
    assert decision.jobs == [] and decision.appeal.job_id is None
    assert decision.problem == 'it also matches "zorble" matches the word rule "zorble" (block)'
    assert decision.strike.revoked_at is not None  # the moderator accepted it: the strike goes

    # The author has no credits left.
    poor = new_id()
    strike_id = await block(sessions, settings, queue, here, poor, "a nude statue")
    appeal = await appeals.file_appeal(sessions, poor, strike_id, "art")
    no_free_credits = settings.model_copy(update={"credits": Credits(daily_free=0)})
    decision = await appeals.accept_appeal(sessions, no_free_credits, queue, admin, appeal.id)
    assert decision.jobs == [] and decision.problem is not None
    assert decision.problem.startswith("This needs 4 credits and you have 0")

    # The author was banned meanwhile.
    banned = new_id()
    strike_id = await block(sessions, settings, queue, here, banned, "a nude statue")
    appeal = await appeals.file_appeal(sessions, banned, strike_id, "art")
    await bans.ban_user(sessions, admin, banned, reason="spam")
    decision = await appeals.accept_appeal(sessions, settings, queue, admin, appeal.id)
    assert decision.jobs == [] and decision.problem is not None and "Reason: spam" in decision.problem

    for user_id in (author, poor, banned):
        assert await jobs_of(sessions, user_id) == []
        assert await ledger_of(sessions, user_id) == []
    assert queue.sent == []
    accepted = [entry for entry in await log_of(sessions, here.guild_id) if entry.action == "appeal_accepted"]
    assert len(accepted) == 3 and all("the prompt could not run: " in entry.detail for entry in accepted)


async def test_an_accepted_appeals_strike_no_longer_counts_towards_a_ban(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, author = new_server(), new_id()
    admin = moderator(here)
    await server_settings.update_server_moderation(sessions, settings.moderation, admin, strikes_before_ban=2)
    strike_id = await block(sessions, settings, queue, here, author, "a nude statue")
    appeal = await appeals.file_appeal(sessions, author, strike_id, "art")
    await appeals.accept_appeal(sessions, settings, queue, admin, appeal.id)
    await block(sessions, settings, queue, here, author, "a naked statue")
    await imagine(sessions, settings, queue, here, author)  # one strike counts: no ban
    assert "auto_ban" not in [line[0] for line in await log_lines(sessions, here.guild_id)]


async def test_an_accepted_appeal_lifts_the_automatic_ban_its_strike_brought(
    sessions, settings, queue
) -> None:  # type: ignore[no-untyped-def]
    here, author = new_server(), new_id()
    admin = moderator(here)
    await server_settings.update_server_moderation(sessions, settings.moderation, admin, strikes_before_ban=2)
    await block(sessions, settings, queue, here, author, "a naked statue")
    strike_id = await block(sessions, settings, queue, here, author, "a nude statue")  # the ban
    async with sessions() as session:
        assert await bans.active_ban(session, author, here.guild_id) is not None
    appeal = await appeals.file_appeal(sessions, author, strike_id, "art")

    decision = await appeals.accept_appeal(sessions, settings, queue, admin, appeal.id)

    assert decision.problem is None and len(decision.jobs) == 1  # no longer banned, so it ran
    async with sessions() as session:
        assert await bans.active_ban(session, author, here.guild_id) is None
    assert [line[0] for line in await log_lines(sessions, here.guild_id)][-3:] == [
        "appeal",
        "unban",
        "appeal_accepted",
    ]


async def test_a_moderators_ban_stays_when_an_appeal_is_accepted(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, author = new_server(), new_id()
    admin = moderator(here)
    strike_id = await block(sessions, settings, queue, here, author, "a nude statue")
    appeal = await appeals.file_appeal(sessions, author, strike_id, "art")
    await bans.ban_user(sessions, admin, author, hours=1, reason="spam")

    decision = await appeals.accept_appeal(sessions, settings, queue, admin, appeal.id)

    assert decision.jobs == [] and decision.problem is not None and "Reason: spam" in decision.problem
