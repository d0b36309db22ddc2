"""Results the image safety check flags: held for review, or removed at once in block mode
(refunded, a strike); a check that could not run holds; moderators approve or remove."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.models import HeldResult, HoldStatus, Job, LedgerKind, StrikeSource
from sojourn import actions
from sojourn.errors import Banned, UserError
from sojourn.services.buttons import ButtonRefused, Press, press_button, toggle_favorite
from sojourn.services.moderation import removal, review, server_settings
from sojourn.services.submission import Origin
from sojourn.settings import Settings
from tests.services.moderation_helpers import (
    DAILY_FREE,
    assert_audit_clean,
    balance_of,
    finished_job,
    imagine,
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
    strikes_of,
)

__all__ = ["queue", "settings", "storage"]  # the shared fixtures (`moderation_helpers`)


pytestmark = pytest.mark.usefixtures("pinned_clock")
FLAGGED = 0.95  # over the default threshold (0.7)


async def configure(sessions, settings: Settings, origin: Origin, **changes: object) -> None:  # type: ignore[no-untyped-def]
    await server_settings.update_server_moderation(
        sessions, settings.moderation, moderator(origin), **changes
    )


async def held_row(sessions, job: Job) -> HeldResult | None:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return await session.get(HeldResult, job.id)


def upscale(job: Job, by: int | None = None) -> Press:
    return Press(
        action=actions.UPSCALE, job_id=job.id, index=1, presser_id=by or job.user_id, origin=origin_of(job)
    )


def origin_of(job: Job) -> Origin:
    return Origin(guild_id=job.guild_id, channel_id=job.channel_id)


async def test_a_flagged_result_is_held_in_review_mode_and_its_buttons_wait(
    sessions, settings, queue, storage
) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    job, verdict = await finished_job(sessions, settings, queue, storage, here, score=FLAGGED)

    assert (verdict.held, verdict.removed) == (True, False)
    assert verdict.reason == "safety score 0.95 ≥ 0.7"
    held = await held_row(sessions, job)
    assert held is not None and (held.status, held.score, held.user_id) == (
        HoldStatus.HELD,
        FLAGGED,
        job.user_id,
    )
    for press in (upscale(job), Press(actions.FAVORITE, job.id, 1, job.user_id, here)):
        with pytest.raises(ButtonRefused, match="held for a moderator's review"):
            if press.action is actions.FAVORITE:
                await toggle_favorite(sessions, press)
            else:
                await press_button(sessions, settings, queue, press)
    assert await ledger_of(sessions, job.user_id) == [
        (LedgerKind.DAILY, DAILY_FREE),
        (LedgerKind.HOLD, -job.cost),
        (LedgerKind.SETTLE, 0),
    ]
    assert await strikes_of(sessions, job.user_id) == []
    assert await log_lines(sessions, here.guild_id) == [("hold", None, job.user_id, job.id)]
    assert (await log_of(sessions, here.guild_id))[0].detail == verdict.reason


async def test_approve_releases_a_held_result(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin, late = moderator(here), moderator(here)
    job, _ = await finished_job(sessions, settings, queue, storage, here, score=FLAGGED)

    approved = await review.approve(sessions, admin, job.id)

    assert approved.id == job.id and approved.removed_at is None
    held = await held_row(sessions, job)
    assert held is not None and (held.status, held.decided_by) == (HoldStatus.APPROVED, admin.user_id)
    assert (await press_button(sessions, settings, queue, upscale(job))).created
    for decide in (
        review.approve(sessions, late, job.id),
        review.remove(sessions, settings.moderation, late, job.id),
    ):
        with pytest.raises(UserError, match="no longer waiting for review"):
            await decide
    assert await review.next_held(sessions, admin) is None
    assert await log_lines(sessions, here.guild_id) == [
        ("hold", None, job.user_id, job.id),
        ("approve", admin.user_id, job.user_id, job.id),
    ]
    assert await strikes_of(sessions, job.user_id) == []


async def test_remove_after_review_refunds_once_and_strikes(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin, late = moderator(here), moderator(here)
    job, _ = await finished_job(sessions, settings, queue, storage, here, score=FLAGGED)

    removed = await review.remove(sessions, settings.moderation, admin, job.id)

    assert removed.removed_at is not None
    held = await held_row(sessions, job)
    assert held is not None and (held.status, held.decided_by) == (HoldStatus.REMOVED, admin.user_id)
    for decide in (
        review.remove(sessions, settings.moderation, late, job.id),
        review.approve(sessions, late, job.id),
    ):
        with pytest.raises(UserError, match="no longer waiting for review"):
            await decide
    assert await ledger_of(sessions, job.user_id) == [
        (LedgerKind.DAILY, DAILY_FREE),
        (LedgerKind.HOLD, -job.cost),
        (LedgerKind.SETTLE, 0),
        (LedgerKind.REMOVED, job.cost),
    ]
    assert await balance_of(sessions, job.user_id) == DAILY_FREE
    (strike,) = await strikes_of(sessions, job.user_id)
    assert (strike.source, strike.job_id, strike.guild_id) == (StrikeSource.IMAGE, job.id, here.guild_id)
    with pytest.raises(ButtonRefused, match="That result was deleted"):
        await press_button(sessions, settings, queue, upscale(job))
    assert await log_lines(sessions, here.guild_id) == [
        ("hold", None, job.user_id, job.id),
        ("remove", admin.user_id, job.user_id, job.id),
    ]
    assert (await log_of(sessions, here.guild_id))[
        -1
    ].detail == "removed after review (safety score 0.95 ≥ 0.7)"
    await assert_audit_clean(sessions, settings, storage)


async def test_block_mode_removes_refunds_and_strikes_at_once(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    await configure(sessions, settings, here, safety_mode="block")
    job, verdict = await finished_job(sessions, settings, queue, storage, here, score=FLAGGED)

    assert (verdict.held, verdict.removed) == (True, True)
    assert (await reload(sessions, job)).removed_at is not None
    held = await held_row(sessions, job)
    assert held is not None and held.status == HoldStatus.REMOVED
    assert (await ledger_of(sessions, job.user_id))[-1] == (LedgerKind.REMOVED, job.cost)
    assert await balance_of(sessions, job.user_id) == DAILY_FREE
    (strike,) = await strikes_of(sessions, job.user_id)
    assert (strike.source, strike.job_id) == (StrikeSource.IMAGE, job.id)
    assert (await log_lines(sessions, here.guild_id))[1:] == [("remove", None, job.user_id, job.id)]
    assert await review.next_held(sessions, moderator(here)) is None  # nothing to review
    with pytest.raises(UserError, match="no longer waiting for review"):
        await review.remove(sessions, settings.moderation, moderator(here), job.id)
    with pytest.raises(ButtonRefused):
        await press_button(sessions, settings, queue, upscale(job))
    await assert_audit_clean(sessions, settings, storage)


async def test_a_check_that_could_not_run_holds_even_in_block_mode(
    sessions, settings, queue, storage
) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    await configure(sessions, settings, here, safety_mode="block")
    job, verdict = await finished_job(sessions, settings, queue, storage, here, score=None)

    assert (verdict.held, verdict.removed, verdict.reason) == (True, False, review.CHECK_FAILED)
    held = await held_row(sessions, job)
    assert held is not None and (held.status, held.score) == (HoldStatus.HELD, None)
    assert (await reload(sessions, job)).removed_at is None
    assert LedgerKind.REMOVED not in [kind for kind, _ in await ledger_of(sessions, job.user_id)]
    assert await strikes_of(sessions, job.user_id) == []
    assert (await log_lines(sessions, here.guild_id))[-1] == ("hold", None, job.user_id, job.id)


@pytest.mark.parametrize("score", [1.0, None])
async def test_mode_off_holds_nothing(sessions, settings, queue, storage, score: float | None) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    await configure(sessions, settings, here, safety_mode="off")
    job, verdict = await finished_job(sessions, settings, queue, storage, here, score=score)
    assert (verdict.held, verdict.removed) == (False, False)
    assert await held_row(sessions, job) is None
    assert [line[0] for line in await log_lines(sessions, here.guild_id)] == ["settings"]
    assert (await press_button(sessions, settings, queue, upscale(job))).created


async def test_a_score_under_the_servers_threshold_holds_nothing(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    await configure(sessions, settings, here, safety_threshold=0.9)
    kept, verdict = await finished_job(sessions, settings, queue, storage, here, score=0.89)
    assert not verdict.held and await held_row(sessions, kept) is None
    _, verdict = await finished_job(sessions, settings, queue, storage, here, score=0.9)
    assert verdict.held  # the threshold itself holds


@pytest.mark.parametrize(
    ("allowed", "score", "held"),
    [(True, FLAGGED, False), (False, FLAGGED, True), (True, None, True)],
)
async def test_age_restricted_channels(sessions, settings, queue, storage, allowed, score, held) -> None:  # type: ignore[no-untyped-def]
    here = new_server(age_restricted=True)
    await configure(sessions, settings, here, allow_in_age_restricted=allowed)
    job, verdict = await finished_job(sessions, settings, queue, storage, here, score=score)
    assert job.age_restricted
    assert verdict.held is held and (await held_row(sessions, job) is not None) is held
    # The same score in an ordinary channel of that server is held.
    ordinary = Origin(guild_id=here.guild_id, channel_id=new_id())
    _, elsewhere = await finished_job(sessions, settings, queue, storage, ordinary, score=FLAGGED)
    assert elsewhere.held


async def test_review_goes_oldest_first_and_skip_moves_on(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin = moderator(here)
    first, _ = await finished_job(sessions, settings, queue, storage, here, score=FLAGGED)
    second, _ = await finished_job(sessions, settings, queue, storage, here, score=None)
    await finished_job(sessions, settings, queue, storage, new_server(), score=FLAGGED)  # another server's

    item = await review.next_held(sessions, admin)
    assert item is not None and (item.job.id, item.waiting) == (first.id, 2)
    assert len(item.job.images) == 5  # loaded for the moderator to see
    skipped = await review.next_held(sessions, admin, after=first.id)
    assert skipped is not None and skipped.job.id == second.id
    wrapped = await review.next_held(sessions, admin, after=second.id)
    assert wrapped is not None and wrapped.job.id == first.id
    await review.approve(sessions, admin, first.id)
    item = await review.next_held(sessions, admin)
    assert item is not None and (item.job.id, item.waiting) == (second.id, 1)


async def test_a_deleted_held_result_no_longer_waits_for_review(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    """`/mod delete` removes a result everywhere: review too (its Remove would refund a deletion)."""
    here = new_server()
    admin = moderator(here)
    job, _ = await finished_job(sessions, settings, queue, storage, here, score=FLAGGED)
    await removal.delete_as_moderator(sessions, storage, admin, str(job.id))

    assert await review.next_held(sessions, admin) is None
    with pytest.raises(UserError):
        await review.remove(sessions, settings.moderation, admin, job.id)
    assert LedgerKind.REMOVED not in [kind for kind, _ in await ledger_of(sessions, job.user_id)]


async def test_removals_count_as_strikes_towards_a_ban(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    await configure(sessions, settings, here, safety_mode="block", strikes_before_ban=2)
    for _ in range(2):
        await finished_job(sessions, settings, queue, storage, here, user_id, score=FLAGGED)
    with pytest.raises(Banned, match="Reason: 2 strikes within 24 h"):
        await imagine(sessions, settings, queue, here, user_id)
    assert [line[0] for line in await log_lines(sessions, here.guild_id)] == [
        "settings",
        "remove",
        "auto_ban",
        "remove",
    ]
    async with sessions() as session:
        rows = (await session.execute(select(HeldResult).where(HeldResult.user_id == user_id))).scalars()
        assert {row.status for row in rows} == {HoldStatus.REMOVED}
    await assert_audit_clean(sessions, settings, storage)
