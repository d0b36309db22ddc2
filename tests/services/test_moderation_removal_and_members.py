"""Removing results (`/mod delete`, with or without purging the files, and `/delete` by the owner),
and what moderators do to one member: credits, `/mod user`, `/mod queue` and its cancel button."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from db.models import Favorite, Image, JobStatus, LedgerKind
from sojourn import actions
from sojourn.errors import JobAlreadyEnded, JobNotFound, NotYourJob, PromptBlocked, UserError
from sojourn.services import lifecycle, submission
from sojourn.services.buttons import ButtonRefused, Press, press_button, toggle_favorite
from sojourn.services.moderation import bans, members, removal
from tests.services.moderation_helpers import (
    DAILY_FREE,
    assert_audit_clean,
    balance_of,
    finished_job,
    imagine,
    jobs_of,
    ledger_of,
    log_lines,
    log_of,
    moderator,
    new_id,
    new_server,
    queue,
    reload,
    settings,
    storage,
)
from tests.services.workers import RECOVERY, TEST_WORKER

__all__ = ["queue", "settings", "storage"]  # the shared fixtures (`moderation_helpers`)


pytestmark = pytest.mark.usefixtures("pinned_clock")


async def image_rows(sessions, job_id) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        rows = await session.execute(
            select(Image.index, Image.storage_key).where(Image.job_id == job_id).order_by(Image.index)
        )
        return [(index, key) for index, key in rows]


async def favorites_of(sessions, job_id) -> int:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return int(
            await session.scalar(select(func.count()).select_from(Favorite).where(Favorite.job_id == job_id))
            or 0
        )


# -- removal ------------------------------------------------------------------------------------


async def test_a_moderators_delete_removes_the_result_and_its_favorites_and_keeps_the_files(
    sessions, settings, queue, storage
) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin, fan = moderator(here), new_id()
    job, _ = await finished_job(sessions, settings, queue, storage, here)
    for count, presser in enumerate((job.user_id, fan), start=1):
        assert await toggle_favorite(sessions, Press(actions.FAVORITE, job.id, 2, presser, here)) == (
            True,
            count,
        )
    rows = await image_rows(sessions, job.id)
    balance = await balance_of(sessions, job.user_id)

    removed = await removal.delete_as_moderator(sessions, storage, admin, f"  {job.id}  ", reason="off topic")

    assert (removed.job_id, removed.user_id, removed.channel_id, removed.purged_files) == (
        job.id,
        job.user_id,
        here.channel_id,
        0,
    )
    assert (await reload(sessions, job)).removed_at is not None
    assert await favorites_of(sessions, job.id) == 0
    assert await image_rows(sessions, job.id) == rows and len(rows) == 5
    assert all(storage.exists(key) for _, key in rows)
    assert await balance_of(sessions, job.user_id) == balance  # a deletion is no refund
    with pytest.raises(ButtonRefused, match="That result was deleted"):
        await press_button(sessions, settings, queue, Press(actions.UPSCALE, job.id, 1, job.user_id, here))
    with pytest.raises(UserError, match="was already deleted"):
        await removal.delete_as_moderator(sessions, storage, admin, str(job.id))
    (entry,) = await log_of(sessions, here.guild_id)
    assert (entry.action, entry.actor_id, entry.target_user_id, entry.job_id) == (
        "delete",
        admin.user_id,
        job.user_id,
        job.id,
    )
    assert entry.detail.startswith("deleted, files kept: a red fox") and entry.reason == "off topic"
    await assert_audit_clean(sessions, settings, storage)


async def test_purge_deletes_the_files_and_the_image_rows(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin = moderator(here)
    purged_at_once, _ = await finished_job(sessions, settings, queue, storage, here)
    deleted_then_purged, _ = await finished_job(sessions, settings, queue, storage, here)
    keys = [
        key for job in (purged_at_once, deleted_then_purged) for _, key in await image_rows(sessions, job.id)
    ]
    await removal.delete_as_moderator(sessions, storage, admin, str(deleted_then_purged.id))

    for job in (purged_at_once, deleted_then_purged):
        removed = await removal.delete_as_moderator(sessions, storage, admin, str(job.id), purge=True)
        assert removed.purged_files == 5
        assert await image_rows(sessions, job.id) == []
        assert (
            await reload(sessions, job)
        ).removed_at is not None  # the row stays, for the ledger and the log
    assert len(keys) == 10 and not any(storage.exists(key) for key in keys)
    assert [
        (entry.action, entry.detail.split(":")[0]) for entry in await log_of(sessions, here.guild_id)
    ] == [
        ("delete", "deleted, files kept"),
        ("delete", "deleted, files purged"),
        ("delete", "deleted, files purged"),
    ]
    await assert_audit_clean(sessions, settings, storage)


async def test_owners_delete_their_own_results_and_no_one_elses(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    job, _ = await finished_job(sessions, settings, queue, storage, here)
    private, _ = await finished_job(
        sessions, settings, queue, storage, here, text="a secret --private --seed 4"
    )
    stranger = new_id()

    with pytest.raises(NotYourJob):
        await removal.delete_own(sessions, storage, stranger, str(job.id))
    with pytest.raises(JobNotFound):  # someone else's private job is answered like a missing one
        await removal.delete_own(sessions, storage, stranger, str(private.id))
    assert (await reload(sessions, job)).removed_at is None

    removed = await removal.delete_own(sessions, storage, job.user_id, str(job.id))

    assert removed.purged_files == 0 and all(
        storage.exists(key) for _, key in await image_rows(sessions, job.id)
    )
    assert (await reload(sessions, job)).removed_at is not None
    assert await log_lines(sessions, here.guild_id) == [("delete", job.user_id, job.user_id, job.id)]
    assert (await log_of(sessions, here.guild_id))[0].reason == "deleted by its owner"
    await assert_audit_clean(sessions, settings, storage)


async def test_only_a_result_of_this_server_can_be_deleted(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here, elsewhere = new_server(), new_server()
    there, _ = await finished_job(sessions, settings, queue, storage, elsewhere)
    queued = await imagine(sessions, settings, queue, here, new_id())
    admin = moderator(here)
    with pytest.raises(JobNotFound):
        await removal.delete_as_moderator(sessions, storage, admin, str(there.id))
    with pytest.raises(JobNotFound):
        await removal.delete_as_moderator(sessions, storage, admin, "not-a-job-id")
    with pytest.raises(UserError, match="it has no result to delete"):
        await removal.delete_as_moderator(sessions, storage, admin, str(queued.id))
    with pytest.raises(UserError, match="it has no result to delete"):
        await removal.delete_own(sessions, storage, queued.user_id, str(queued.id))
    assert (await reload(sessions, there)).removed_at is None
    assert await log_of(sessions, here.guild_id) == []


# -- members ------------------------------------------------------------------------------------


async def test_a_grant_is_applied_once_per_request(sessions) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    admin = moderator(here)

    first = await members.grant_credits(
        sessions, admin, user_id, 25, reason="contest prize", request_id="i-1"
    )
    again = await members.grant_credits(
        sessions, admin, user_id, 25, reason="contest prize", request_id="i-1"
    )
    at_once = await asyncio.gather(
        *(
            members.grant_credits(sessions, admin, user_id, 5, reason="raffle", request_id="i-2")
            for _ in range(4)
        )
    )

    assert (first.applied, first.amount, first.balance) == (True, 25, 25)
    assert (again.applied, again.amount, again.balance) == (False, 0, 25)
    assert sorted(grant.applied for grant in at_once) == [False, False, False, True]
    assert await ledger_of(sessions, user_id) == [(LedgerKind.GRANT, 25), (LedgerKind.GRANT, 5)]
    assert await balance_of(sessions, user_id) == 30
    assert await log_lines(sessions, here.guild_id) == [
        ("credits", admin.user_id, user_id, None),
        ("credits", admin.user_id, user_id, None),
    ]
    assert [(e.detail, e.reason) for e in await log_of(sessions, here.guild_id)] == [
        ("+25 credits", "contest prize"),
        ("+5 credits", "raffle"),
    ]


async def test_a_take_back_stops_at_zero(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    admin = moderator(here)
    job = await imagine(sessions, settings, queue, here, user_id)  # 40 free, some held
    left = DAILY_FREE - job.cost

    taken = await members.grant_credits(sessions, admin, user_id, -100, reason="abuse", request_id="t-1")

    assert (taken.applied, taken.amount, taken.balance) == (True, -left, 0)
    with pytest.raises(UserError, match="no credits left: there is nothing to take back"):
        await members.grant_credits(sessions, admin, user_id, -5, reason="abuse", request_id="t-2")
    assert (await ledger_of(sessions, user_id))[-1] == (LedgerKind.GRANT, -left)
    assert await balance_of(sessions, user_id) == 0
    (entry,) = await log_of(sessions, here.guild_id)
    assert entry.detail == f"-{left} credits (asked -100; the balance stops at 0)"
    # The held job still refunds in full: the balance never went below zero.
    async with sessions.begin() as session:
        assert await lifecycle.cancel_job(session, job.id)
    assert await balance_of(sessions, user_id) == job.cost


@pytest.mark.parametrize(
    ("amount", "reason", "message"),
    [
        (0, "x", "not 0"),
        (members.MAX_GRANT + 1, "x", "Give an amount between"),
        (-members.MAX_GRANT - 1, "x", "Give an amount between"),
        (10, "  ", "Say why"),
    ],
)
async def test_a_grant_needs_an_amount_and_a_reason(sessions, amount: int, reason: str, message: str) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    with pytest.raises(UserError, match=message):
        await members.grant_credits(sessions, moderator(here), user_id, amount, reason=reason, request_id="r")
    assert await ledger_of(sessions, user_id) == [] and await log_of(sessions, here.guild_id) == []


async def test_a_moderators_cancel_refunds_in_full_and_is_logged(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, elsewhere, user_id = new_server(), new_server(), new_id()
    admin = moderator(here)
    job = await imagine(sessions, settings, queue, here, user_id)
    there = await imagine(sessions, settings, queue, elsewhere, user_id, "a boat --seed 2")

    cancelled = await members.cancel_as_moderator(sessions, admin, job.id, reason="wrong channel")

    assert cancelled.status == JobStatus.CANCELLED
    assert await balance_of(sessions, user_id) == DAILY_FREE - there.cost
    assert (await ledger_of(sessions, user_id))[-1] == (LedgerKind.REFUND, job.cost)
    with pytest.raises(JobAlreadyEnded, match="has already cancelled"):
        await members.cancel_as_moderator(sessions, admin, job.id)
    with pytest.raises(JobNotFound):
        await members.cancel_as_moderator(sessions, admin, there.id)
    assert (await reload(sessions, there)).status == JobStatus.QUEUED
    (entry,) = await log_of(sessions, here.guild_id)
    assert (entry.action, entry.actor_id, entry.target_user_id, entry.job_id, entry.reason) == (
        "cancel",
        admin.user_id,
        user_id,
        job.id,
        "wrong channel",
    )


async def test_the_server_queue_lists_this_servers_running_then_waiting_jobs(
    sessions, settings, queue
) -> None:  # type: ignore[no-untyped-def]
    here, elsewhere = new_server(), new_server()
    first = await imagine(sessions, settings, queue, here, new_id(), "a cat --seed 1")
    second = await imagine(sessions, settings, queue, here, new_id(), "a dog --seed 2")
    await imagine(sessions, settings, queue, elsewhere, new_id())
    async with sessions.begin() as session:
        assert await lifecycle.claim_job(session, second.id, TEST_WORKER, RECOVERY)

    entries = await members.server_queue(sessions, moderator(here))

    assert [(entry.job.id, entry.job.status) for entry in entries] == [
        (second.id, JobStatus.RUNNING),
        (first.id, JobStatus.QUEUED),
    ]
    assert entries[0].position is None and entries[1].position is not None


async def test_the_member_report(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    admin = moderator(here)
    job, _ = await finished_job(sessions, settings, queue, storage, here, user_id)
    with pytest.raises(PromptBlocked):
        await submission.submit_prompt(
            sessions, settings, queue, user_id=user_id, text="a nude statue", origin=here
        )
    outcome = await bans.ban_user(sessions, admin, user_id, hours=3, reason="spam")

    report = await members.member_report(sessions, settings.moderation, admin, user_id)

    assert report.balance == DAILY_FREE - job.cost == await balance_of(sessions, user_id)
    assert (report.strikes_in_window, report.window_hours, report.strikes_before_ban) == (1, 24, 3)
    assert [strike.prompt for strike in report.blocks] == ["a nude statue"]
    assert [ban.id for ban in report.bans] == [outcome.ban.id]
    assert report.active_ban is not None and report.active_ban.id == outcome.ban.id
    assert [j.id for j in report.jobs] == [j.id for j in await jobs_of(sessions, user_id)] == [job.id]
    # Another server's moderator sees nothing of this server's records.
    elsewhere = await members.member_report(sessions, settings.moderation, moderator(new_server()), user_id)
    assert (elsewhere.strikes, elsewhere.bans, elsewhere.active_ban, elsewhere.jobs) == ([], [], None, [])
