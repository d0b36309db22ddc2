"""A server's moderation settings (checked, logged, the /imagine channel list), and the audit log:
every moderation event leaves exactly one entry, read newest first, a page at a time, filtered."""

from __future__ import annotations

import asyncio

import pytest

from db.models import AuditEntry
from sojourn.errors import PromptBlocked, UserError
from sojourn.services import submission
from sojourn.services.buttons import set_anyone_can_press
from sojourn.services.moderation import (
    appeals,
    audit_log,
    bans,
    members,
    removal,
    review,
    server_settings,
    words,
)
from sojourn.services.moderation.audit_log import AuditAction
from sojourn.services.submission import Origin
from sojourn.settings import ModerationSettings, SafetyMode
from sojourn.word_filter import WordAction
from tests.services.moderation_helpers import (
    finished_job,
    imagine,
    ledger_of,
    log_lines,
    log_of,
    moderator,
    new_id,
    new_server,
    queue,
    settings,
    snapshot,
    storage,
)

__all__ = ["queue", "settings", "storage"]  # the shared fixtures (`moderation_helpers`)


pytestmark = pytest.mark.usefixtures("pinned_clock")


# -- settings -----------------------------------------------------------------------------------


async def test_settings_start_from_the_defaults_change_and_are_logged(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin = moderator(here)
    defaults = settings.moderation
    async with sessions() as session:
        fresh = await server_settings.server_moderation(session, defaults, here.guild_id)
    assert (fresh.safety_mode, fresh.safety_threshold, fresh.strikes_before_ban, fresh.imagine_channels) == (
        defaults.safety_mode,
        defaults.safety_threshold,
        defaults.strikes_before_ban,
        (),
    )

    changed = await server_settings.update_server_moderation(
        sessions, defaults, admin, safety_mode="block", safety_threshold="0.5"
    )
    assert (changed.safety_mode, changed.safety_threshold) == (SafetyMode.BLOCK, 0.5)
    later = await server_settings.update_server_moderation(sessions, defaults, admin, strike_ban_hours=48)
    assert (later.safety_mode, later.safety_threshold, later.strike_ban_hours) == (SafetyMode.BLOCK, 0.5, 48)
    assert "Image safety check: **block**, threshold 0.5" in later.describe()
    unchanged = await server_settings.update_server_moderation(sessions, defaults, admin)
    assert unchanged == later

    assert [
        (entry.action, entry.actor_id, entry.detail) for entry in await log_of(sessions, here.guild_id)
    ] == [
        ("settings", admin.user_id, "safety_mode=block, safety_threshold=0.5"),
        ("settings", admin.user_id, "strike_ban_hours=48"),
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"safety_threshold": 1.5}, "The threshold must be between 0 and 1 (you gave 1.5)"),
        ({"strikes_before_ban": 0}, "Strikes before a ban must be between 1 and 100"),
        ({"strike_window_hours": 24 * 366}, "The strike window must be between 1 and 8760"),
        ({"safety_mode": "loud"}, "That setting's value does not work"),
        ({"safety_threshold": "high"}, "That setting's value does not work"),
        ({"colour": "red"}, "There is no moderation setting colour"),
        ({"safety_mode": "block", "strike_ban_hours": -1}, "The ban's length must be between"),
    ],
)
async def test_a_setting_out_of_bounds_is_refused_and_nothing_changes(
    sessions, settings, changes, message
) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    before = await snapshot(sessions)
    with pytest.raises(UserError) as error:
        await server_settings.update_server_moderation(
            sessions, settings.moderation, moderator(here), **changes
        )
    assert message in error.value.message
    assert await snapshot(sessions) == before


async def test_imagine_works_only_in_the_servers_channels(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    admin = moderator(here)
    allowed, also = new_id(), new_id()
    await server_settings.update_server_moderation(
        sessions, settings.moderation, admin, imagine_channels=[also, allowed, allowed]
    )
    wrong = Origin(guild_id=here.guild_id, channel_id=new_id())

    with pytest.raises(UserError) as error:
        await imagine(sessions, settings, queue, wrong, user_id)

    first, second = sorted((allowed, also))
    assert error.value.message == (
        f"This server allows /imagine only in <#{first}>, <#{second}>: try it there. Nothing was charged."
    )
    assert await ledger_of(sessions, user_id) == [] and queue.sent == []
    await imagine(sessions, settings, queue, Origin(guild_id=here.guild_id, channel_id=allowed), user_id)
    await imagine(sessions, settings, queue, Origin(), user_id)  # a DM is no server's channel
    await server_settings.update_server_moderation(sessions, settings.moderation, admin, imagine_channels=[])
    await imagine(sessions, settings, queue, wrong, user_id)
    assert [entry.detail for entry in await log_of(sessions, here.guild_id)] == [
        f"imagine_channels={sorted((allowed, also))}",
        "imagine_channels=[]",
    ]


async def test_a_servers_row_made_by_another_setting_keeps_the_projects_moderation_defaults(
    sessions, settings, queue
) -> None:  # type: ignore[no-untyped-def]
    """An operator who turns the default word list off for every server (SOJOURN_MODERATION__...)
    keeps it off on a server whose settings row `/server buttons` created."""
    project = settings.model_copy(update={"moderation": ModerationSettings(default_words=False)})
    here = new_server()
    await imagine(sessions, project, queue, here, new_id(), "a nude statue")  # no row yet: off
    await set_anyone_can_press(sessions, here.guild_id, True)
    async with sessions() as session:
        server = await server_settings.server_moderation(session, project.moderation, here.guild_id)
    assert not server.default_words
    await imagine(sessions, project, queue, here, new_id(), "a nude statue")


# -- the audit log ------------------------------------------------------------------------------


async def test_every_moderation_event_leaves_exactly_its_entry(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin, user, other = moderator(here), new_id(), new_id()
    defaults = settings.moderation
    expected: list[tuple[str, int | None, int | None, object]] = []

    async def blocked(user_id: int, text: str) -> int:
        with pytest.raises(PromptBlocked) as error:
            await submission.submit_prompt(sessions, settings, queue, user_id=user_id, text=text, origin=here)
        assert error.value.strike_id is not None
        return error.value.strike_id

    await server_settings.update_server_moderation(sessions, defaults, admin, strikes_before_ban=3)
    expected.append(("settings", admin.user_id, None, None))
    await words.add_words(sessions, admin, "spooky", WordAction.WARN)
    expected.append(("words_add", admin.user_id, None, None))
    await words.allow_words(sessions, admin, "nudibranch")
    expected.append(("words_allow", admin.user_id, None, None))
    await words.remove_words(sessions, defaults, admin, "bikini")
    expected.append(("words_remove", admin.user_id, None, None))
    warned = await imagine(sessions, settings, queue, here, user, "a spooky house --seed 1")
    expected.append(("warn", None, user, warned.id))

    strike_id = await blocked(user, "a nude statue")
    expected.append(("block", None, user, None))
    appeal = await appeals.file_appeal(sessions, user, strike_id, "art")
    expected.append(("appeal", user, user, None))
    decision = await appeals.accept_appeal(sessions, settings, queue, admin, appeal.id)
    expected.append(("appeal_accepted", admin.user_id, user, decision.jobs[0].id))
    strike_id = await blocked(user, "a naked statue")
    expected.append(("block", None, user, None))
    appeal = await appeals.file_appeal(sessions, user, strike_id, "art")
    expected.append(("appeal", user, user, None))
    await appeals.reject_appeal(sessions, admin, appeal.id)
    expected.append(("appeal_rejected", admin.user_id, user, None))

    approved, _ = await finished_job(sessions, settings, queue, storage, here, other, score=0.9)
    expected.append(("hold", None, other, approved.id))
    await review.approve(sessions, admin, approved.id)
    expected.append(("approve", admin.user_id, other, approved.id))
    removed, _ = await finished_job(sessions, settings, queue, storage, here, other, score=0.9)
    expected.append(("hold", None, other, removed.id))
    await review.remove(sessions, defaults, admin, removed.id)
    expected.append(("remove", admin.user_id, other, removed.id))
    await removal.delete_as_moderator(sessions, storage, admin, str(approved.id))
    expected.append(("delete", admin.user_id, other, approved.id))

    queued = await imagine(sessions, settings, queue, here, other, "a boat --seed 5")
    await members.cancel_as_moderator(sessions, admin, queued.id)
    expected.append(("cancel", admin.user_id, other, queued.id))
    await members.grant_credits(sessions, admin, other, 10, reason="sorry", request_id=f"g-{other}")
    expected.append(("credits", admin.user_id, other, None))
    await bans.ban_user(sessions, admin, other, hours=1)
    expected.append(("ban", admin.user_id, other, None))
    await bans.unban_user(sessions, admin, other)
    expected.append(("unban", admin.user_id, other, None))

    await blocked(user, "a sexy statue")  # two strikes count: the accepted appeal lifted one
    expected.append(("block", None, user, None))
    await blocked(user, "a topless statue")
    expected += [("auto_ban", None, user, None), ("block", None, user, None)]

    # Reads leave nothing.
    await words.list_words(sessions, defaults, admin)
    await words.dry_run(sessions, defaults, admin, ["a nude"])
    await appeals.pending_appeals(sessions, admin)
    await review.next_held(sessions, admin)
    await members.member_report(sessions, defaults, admin, user)
    await members.server_queue(sessions, admin)

    assert await log_lines(sessions, here.guild_id) == expected
    assert {line[0] for line in expected} == set(AuditAction)  # a new event needs its line here


async def fill_log(sessions, settings, queue) -> tuple[Origin, int, list[AuditEntry]]:  # type: ignore[no-untyped-def]
    """A server's log of 8 entries: settings, 5 word adds, a ban and a block; oldest first."""
    here, user = new_server(), new_id()
    admin = moderator(here)
    await server_settings.update_server_moderation(
        sessions, settings.moderation, admin, strike_window_hours=12
    )
    for n in range(5):
        await words.add_words(sessions, admin, f"zorble{n}")
    await bans.ban_user(sessions, admin, user, hours=1, reason="spam")
    with pytest.raises(PromptBlocked):
        await submission.submit_prompt(
            sessions, settings, queue, user_id=new_id(), text="zorble3", origin=here
        )
    return here, user, await log_of(sessions, here.guild_id)


async def test_the_log_reads_newest_first_a_page_at_a_time(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, _, entries = await fill_log(sessions, settings, queue)
    await fill_log(sessions, settings, queue)  # another server's, never shown here
    assert len(entries) == 8

    pages: list[list[AuditEntry]] = []
    before_id = None
    async with sessions() as session:
        while page := await audit_log.read_log(session, here.guild_id, before_id=before_id, limit=3):
            pages.append(page)
            before_id = page[-1].id
    assert [len(page) for page in pages] == [3, 3, 2]
    assert [entry.id for page in pages for entry in page] == [entry.id for entry in reversed(entries)]
    assert [entry.action for entry in pages[0]] == ["block", "ban", "words_add"]


async def test_the_log_filters_by_member_and_kind(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, user, _ = await fill_log(sessions, settings, queue)
    async with sessions() as session:
        theirs = await audit_log.read_log(session, here.guild_id, user_id=user)
        word_adds = await audit_log.read_log(session, here.guild_id, actions=[AuditAction.WORDS_ADD], limit=3)
        bans_and_blocks = await audit_log.read_log(
            session, here.guild_id, actions=[AuditAction.BAN, AuditAction.BLOCK]
        )
        their_blocks = await audit_log.read_log(
            session, here.guild_id, user_id=user, actions=[AuditAction.BLOCK]
        )
        older_adds = await audit_log.read_log(
            session, here.guild_id, actions=[AuditAction.WORDS_ADD], before_id=word_adds[-1].id
        )
    assert [(entry.action, entry.target_user_id) for entry in theirs] == [("ban", user)]
    assert [entry.detail for entry in word_adds] == ["block: zorble4", "block: zorble3", "block: zorble2"]
    assert [entry.detail for entry in older_adds] == ["block: zorble1", "block: zorble0"]
    assert [entry.action for entry in bans_and_blocks] == ["block", "ban"]
    assert their_blocks == []


async def test_events_outside_a_server_are_logged_without_one(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    user = new_id()
    with pytest.raises(PromptBlocked):  # the default list applies in DMs too
        await submission.submit_prompt(sessions, settings, queue, user_id=user, text="a nude statue")
    async with sessions() as session:
        (entry,) = await audit_log.read_log(session, None, user_id=user)
    assert (entry.action, entry.guild_id, entry.target_user_id) == ("block", None, user)


async def test_channel_edits_apply_to_the_list_as_it_is_so_concurrent_edits_keep_both(
    sessions, settings
) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin, other = moderator(here), moderator(here)
    first, second, third = new_id(), new_id(), new_id()
    await server_settings.update_server_moderation(
        sessions, settings.moderation, admin, imagine_channel_add=first
    )
    await asyncio.gather(
        server_settings.update_server_moderation(
            sessions, settings.moderation, admin, imagine_channel_add=second
        ),
        server_settings.update_server_moderation(
            sessions, settings.moderation, other, imagine_channel_add=third
        ),
    )
    async with sessions() as session:
        current = await server_settings.server_moderation(session, settings.moderation, here.guild_id)
    assert current.imagine_channels == tuple(sorted((first, second, third)))

    after = await server_settings.update_server_moderation(
        sessions, settings.moderation, admin, imagine_channel_remove=second
    )
    assert after.imagine_channels == tuple(sorted((first, third)))
    with pytest.raises(UserError, match="is not one of the /imagine channels"):
        await server_settings.update_server_moderation(
            sessions, settings.moderation, admin, imagine_channel_remove=second
        )
    cleared = await server_settings.update_server_moderation(
        sessions, settings.moderation, admin, imagine_channels_clear=True
    )
    assert cleared.imagine_channels == ()


async def test_everyone_cannot_be_the_moderator_role(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    with pytest.raises(UserError, match="@everyone cannot be the moderator role"):
        await server_settings.update_server_moderation(
            sessions, settings.moderation, moderator(here), moderator_role_id=here.guild_id
        )
