"""Each server's word list screens everything that becomes a prompt, before anything is charged;
each block is a strike, and enough strikes within the window ban for a while."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from db.models import Job, JobStatus, LedgerKind, ServerWordRule, StrikeSource
from sojourn import actions
from sojourn.clock import FixedClock, use_clock, utcnow
from sojourn.errors import Banned, PromptBlocked, UserError
from sojourn.prompt import PromptRules
from sojourn.services import submission, users
from sojourn.services.buttons import Press, press_button
from sojourn.services.moderation import server_settings, strikes, words
from sojourn.services.submission import Origin
from sojourn.word_filter import WordAction, rule_problem
from tests.services.moderation_helpers import (
    DAILY_FREE,
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
    settings,
    storage,
    strikes_of,
)

__all__ = ["queue", "settings", "storage"]  # the shared fixtures (`moderation_helpers`)


pytestmark = pytest.mark.usefixtures("pinned_clock")


async def submit(sessions, settings, queue, origin: Origin, user_id: int, text: str) -> list[Job]:  # type: ignore[no-untyped-def]
    return await submission.submit_prompt(
        sessions, settings, queue, user_id=user_id, text=text, origin=origin
    )


async def blocked(sessions, settings, queue, origin: Origin, user_id: int, text: str) -> PromptBlocked:  # type: ignore[no-untyped-def]
    """Submit a prompt that must be blocked; check that nothing was charged or queued."""
    ledger, sent = await ledger_of(sessions, user_id), list(queue.sent)
    with pytest.raises(PromptBlocked) as error:
        await submit(sessions, settings, queue, origin, user_id, text)
    assert error.value.strike_id is not None
    assert await ledger_of(sessions, user_id) == ledger
    assert queue.sent == sent
    return error.value


# -- the word list ------------------------------------------------------------------------------


async def test_a_blocked_prompt_charges_nothing_and_is_a_logged_strike(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    admin = moderator(here)
    assert await words.add_words(sessions, admin, "Zorble,  grue  beast ") == ["zorble", "grue beast"]
    first = await imagine(sessions, settings, queue, here, user_id)  # the user has credits and a job
    balance = await balance_of(sessions, user_id)

    error = await blocked(sessions, settings, queue, here, user_id, "a ZORBLE in the fog")

    assert (
        'matches the word rule "zorble" (block)' in error.message and "Nothing was charged" in error.message
    )
    assert await balance_of(sessions, user_id) == balance
    assert [job.id for job in await jobs_of(sessions, user_id)] == [first.id]
    (strike,) = await strikes_of(sessions, user_id)
    assert strike.id == error.strike_id
    assert (strike.source, strike.guild_id, strike.channel_id) == (
        StrikeSource.WORDS,
        here.guild_id,
        here.channel_id,
    )
    assert (strike.prompt, strike.patterns) == ("a ZORBLE in the fog", ["zorble"])
    assert await log_lines(sessions, here.guild_id) == [
        ("words_add", admin.user_id, None, None),
        ("block", None, user_id, None),
    ]
    entry = (await log_of(sessions, here.guild_id))[-1]
    assert entry.detail == '"ZORBLE" matches the word rule "zorble" (block) in: a ZORBLE in the fog'
    # A phrase rule, written apart or together.
    await blocked(sessions, settings, queue, here, new_id(), "a gruebeast at night")


async def test_a_new_user_blocked_at_once_is_charged_nothing(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    await blocked(sessions, settings, queue, here, user_id, "a nude statue")  # a default word
    assert await ledger_of(sessions, user_id) == []
    assert await balance_of(sessions, user_id) == 0
    assert await jobs_of(sessions, user_id) == []


@pytest.mark.parametrize(
    ("text", "typed"),
    [
        ("a photo of {nu, cru}de art", "nude"),  # only a permutation spells it
        ("a marble statue --no nude", "nude"),  # the --no text
        ("a n.u.d.e statue", "n.u.d.e"),  # spelled apart
        ("a (nude:1.3) statue", "nude"),  # a weight
    ],
)
async def test_every_text_that_becomes_a_prompt_is_screened(sessions, settings, queue, text, typed) -> None:  # type: ignore[no-untyped-def]
    error = await blocked(sessions, settings, queue, new_server(), new_id(), text)
    assert f'"{typed}" matches the word rule "nude" (block)' in error.message


async def test_a_prefer_option_and_suffix_are_screened_as_expanded(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    rules = PromptRules.from_settings(settings)
    await users.set_option(sessions, rules, user_id, "museum", "--no nude --ar 3:2")
    await blocked(sessions, settings, queue, here, user_id, "a marble statue --museum")

    suffixed = new_id()
    await users.set_suffix(sessions, rules, suffixed, "--no nude")
    error = await blocked(sessions, settings, queue, here, suffixed, "a marble statue")
    assert error.describes == ['"nude" matches the word rule "nude" (block)']
    # The strike keeps the prompt as typed (an appeal runs it again, expanded again).
    assert [strike.prompt for strike in await strikes_of(sessions, suffixed)] == ["a marble statue"]


async def test_a_remix_edit_is_screened(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    parent, _ = await finished_job(sessions, settings, queue, storage, here, user_id)
    balance = await balance_of(sessions, user_id)
    press = Press(
        action=actions.VARY,
        job_id=parent.id,
        index=1,
        presser_id=user_id,
        origin=here,
        remix_text="a nude fox --seed 10",
    )
    with pytest.raises(PromptBlocked) as error:
        await press_button(sessions, settings, queue, press)
    assert error.value.strike_id is not None
    assert await balance_of(sessions, user_id) == balance
    async with sessions() as session:
        made = await session.scalar(
            select(func.count()).select_from(Job).where(Job.parent_job_id == parent.id)
        )
    assert made == 0
    (strike,) = await strikes_of(sessions, user_id)
    assert (strike.id, strike.prompt) == (error.value.strike_id, "a nude fox --seed 10")
    assert [line[0] for line in await log_lines(sessions, here.guild_id)] == ["block"]
    # The same press without the edit is fine.
    assert (
        await press_button(sessions, settings, queue, Press(actions.VARY, parent.id, 1, user_id, here))
    ).created


async def test_a_warn_rule_lets_the_job_run_and_logs_it(sessions, settings, queue, storage) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    admin = moderator(here)
    await words.add_words(sessions, admin, "spooky", WordAction.WARN)

    (job,) = await submit(sessions, settings, queue, here, user_id, "a spooky house --seed 1")

    assert queue.sent == [job.id]
    assert await ledger_of(sessions, user_id) == [
        (LedgerKind.DAILY, DAILY_FREE),
        (LedgerKind.HOLD, -job.cost),
    ]
    assert await strikes_of(sessions, user_id) == []
    assert await log_lines(sessions, here.guild_id) == [
        ("words_add", admin.user_id, None, None),
        ("warn", None, user_id, job.id),
    ]
    assert (await log_of(sessions, here.guild_id))[
        -1
    ].detail == '"spooky" matches the word rule "spooky" (warn)'
    # A default warn word too, and in a remix edit, where the log names the derived job.
    parent, _ = await finished_job(sessions, settings, queue, storage, here, user_id)
    remix = Press(actions.VARY, parent.id, 1, user_id, here, remix_text="a gory fox --seed 10")
    derived = (await press_button(sessions, settings, queue, remix)).job
    assert (await log_lines(sessions, here.guild_id))[-1] == ("warn", None, user_id, derived.id)


async def test_add_remove_allow_and_list(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin = moderator(here)
    defaults = settings.moderation
    await words.add_words(sessions, admin, "*cat*")
    await words.add_words(sessions, admin, "spooky", WordAction.WARN)
    await blocked(sessions, settings, queue, here, new_id(), "concatenate the pictures")

    assert await words.allow_words(sessions, admin, "Concatenate") == ["concatenate"]
    await submit(sessions, settings, queue, here, new_id(), "concatenate the pictures")
    await blocked(sessions, settings, queue, here, new_id(), "a cat")  # the rule still holds elsewhere

    listed = await words.list_words(sessions, defaults, admin)
    assert listed.defaults_on
    assert {(row.pattern, row.action) for row in listed.own} == {
        ("*cat*", "block"),
        ("spooky", "warn"),
        ("concatenate", "allow"),
    }
    assert listed.allowed == ("concatenate",)
    assert {"*cat*", "spooky", "nude"} <= {rule.pattern for rule in listed.rules}

    assert await words.remove_words(sessions, defaults, admin, "*cat*, concatenate") == [
        "*cat*",
        "concatenate",
    ]
    await submit(sessions, settings, queue, here, new_id(), "a cat")
    with pytest.raises(UserError, match="None of zorble is on this server's list"):
        await words.remove_words(sessions, defaults, admin, "zorble")
    assert [line[0] for line in await log_lines(sessions, here.guild_id)] == [
        "words_add",
        "words_add",
        "block",
        "words_allow",
        "block",
        "words_remove",
    ]
    # The dry run records nothing.
    found = await words.dry_run(sessions, defaults, admin, ["a spooky nude"])
    assert [(match.rule.pattern, match.rule.action) for match in found] == [
        ("nude", WordAction.BLOCK),
        ("spooky", WordAction.WARN),
    ]
    assert len(await log_of(sessions, here.guild_id)) == 6


async def test_the_default_list_can_be_turned_off_or_trimmed(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    trimmed, off = new_server(), new_server()
    defaults = settings.moderation

    assert await words.remove_words(sessions, defaults, moderator(trimmed), "nude") == [
        "nude (a default, now off here)"
    ]
    await submit(sessions, settings, queue, trimmed, new_id(), "a nude statue")
    await blocked(sessions, settings, queue, trimmed, new_id(), "a naked statue")
    with pytest.raises(UserError, match="None of nude is on this server's list"):
        await words.remove_words(sessions, defaults, moderator(trimmed), "nude")
    # Adding it back as the server's own rule turns it on again.
    await words.add_words(sessions, moderator(trimmed), "nude")
    await blocked(sessions, settings, queue, trimmed, new_id(), "a nude statue")

    await server_settings.update_server_moderation(sessions, defaults, moderator(off), default_words=False)
    await submit(sessions, settings, queue, off, new_id(), "a nude statue")
    await words.add_words(sessions, moderator(off), "zorble")
    await blocked(sessions, settings, queue, off, new_id(), "a zorble")  # its own rules still apply
    listed = await words.list_words(sessions, defaults, moderator(off))
    assert not listed.defaults_on and [rule.pattern for rule in listed.rules] == ["zorble"]
    # Other servers keep the defaults.
    await blocked(sessions, settings, queue, new_server(), new_id(), "a nude statue")


async def test_a_servers_own_rule_for_a_default_word_replaces_it(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    admin = moderator(here)
    await words.add_words(sessions, admin, "nude", WordAction.WARN)  # warn here, where the default blocks

    (job,) = await submit(sessions, settings, queue, here, user_id, "a nude statue --seed 1")

    assert (await log_lines(sessions, here.guild_id))[-1] == ("warn", None, user_id, job.id)
    listed = await words.list_words(sessions, settings.moderation, admin)
    assert [rule.action for rule in listed.rules if rule.pattern == "nude"] == [WordAction.WARN]
    # Removing the server's own rule gives the default back.
    assert await words.remove_words(sessions, settings.moderation, admin, "nude") == ["nude"]
    await blocked(sessions, settings, queue, here, user_id, "a nude statue")


async def test_removing_a_default_word_from_the_allow_list_blocks_it_again(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin = moderator(here)
    await words.allow_words(sessions, admin, "nude")
    await submit(sessions, settings, queue, here, new_id(), "a nude statue")

    assert await words.remove_words(sessions, settings.moderation, admin, "nude") == ["nude"]

    await blocked(sessions, settings, queue, here, new_id(), "a nude statue")


async def test_a_default_already_off_stays_off_when_removed_again_with_other_words(
    sessions, settings, queue
) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin = moderator(here)
    await words.remove_words(sessions, settings.moderation, admin, "nude")
    await words.add_words(sessions, admin, "zorble")

    assert await words.remove_words(sessions, settings.moderation, admin, "nude, zorble") == ["zorble"]

    await submit(sessions, settings, queue, here, new_id(), "a nude zorble")


@pytest.mark.parametrize(
    ("words_typed", "bad"),
    [
        ("a*b", "a*b"),  # a wildcard in the middle
        ("zorble, !!!", "!!!"),  # no letters
        ("x" * 101, "x" * 101),  # too long
    ],
)
async def test_a_rule_that_cannot_be_is_refused_with_its_problem_and_nothing_is_changed(
    sessions, words_typed, bad
) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    problem = rule_problem(bad)
    assert problem is not None
    with pytest.raises(UserError) as error:
        await words.add_words(sessions, moderator(here), words_typed)
    assert error.value.message == f'"{bad[:100]}" cannot be a word rule: {problem}. Nothing was changed.'
    await assert_no_rules(sessions, here)


@pytest.mark.parametrize(
    ("words_typed", "message"),
    [
        (" , ,", "Give at least one word or phrase"),
        (", ".join(f"w{n}" for n in range(51)), "At most 50 words at a time; you gave 51"),
    ],
)
async def test_a_command_with_no_words_or_too_many_is_refused(sessions, words_typed, message) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    with pytest.raises(UserError, match=message):
        await words.add_words(sessions, moderator(here), words_typed)
    await assert_no_rules(sessions, here)


async def assert_no_rules(sessions, origin: Origin) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        rows = await session.scalar(
            select(func.count()).select_from(ServerWordRule).where(ServerWordRule.guild_id == origin.guild_id)
        )
    assert rows == 0 and await log_of(sessions, origin.guild_id) == []


async def test_the_allow_list_takes_whole_words(sessions) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    with pytest.raises(UserError, match="The allow list takes whole words, without"):
        await words.allow_words(sessions, moderator(here), "cat*")
    assert await log_of(sessions, here.guild_id) == []


async def test_a_server_holds_at_most_its_limit_of_rules(sessions) -> None:  # type: ignore[no-untyped-def]
    here = new_server()
    admin = moderator(here)
    per_command = words.MAX_WORDS_PER_COMMAND
    for batch in range(words.MAX_RULES_PER_SERVER // per_command):
        await words.add_words(sessions, admin, ", ".join(f"w{batch}x{n}" for n in range(per_command)))
    with pytest.raises(UserError, match=f"has {words.MAX_RULES_PER_SERVER} word rules and the limit is"):
        await words.add_words(sessions, admin, "one more")
    with pytest.raises(UserError, match="the limit is"):
        await words.allow_words(sessions, admin, "one more")
    assert len(await log_of(sessions, here.guild_id)) == words.MAX_RULES_PER_SERVER // per_command


# -- strikes ------------------------------------------------------------------------------------


async def test_strikes_within_the_window_ban_for_a_while(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    admin = moderator(here)
    await server_settings.update_server_moderation(
        sessions, settings.moderation, admin, strikes_before_ban=3, strike_window_hours=24, strike_ban_hours=6
    )
    first = await imagine(sessions, settings, queue, here, user_id)
    await blocked(sessions, settings, queue, here, user_id, "a nude statue")
    await blocked(sessions, settings, queue, here, user_id, "a naked statue")
    second = await imagine(sessions, settings, queue, here, user_id)  # two strikes: still allowed
    with pytest.raises(PromptBlocked):
        await submit(sessions, settings, queue, here, user_id, "a sexy statue")

    with pytest.raises(Banned, match="Reason: 3 strikes within 24 h") as banned:
        await imagine(sessions, settings, queue, here, user_id)
    ends_at = banned.value.ends_at
    assert ends_at is not None and abs(ends_at - (utcnow() + dt.timedelta(hours=6))) < dt.timedelta(minutes=1)
    jobs = await jobs_of(sessions, user_id)  # the ban cancelled and refunded them
    assert {(job.id, job.status) for job in jobs} == {
        (first.id, JobStatus.CANCELLED),
        (second.id, JobStatus.CANCELLED),
    }
    assert await balance_of(sessions, user_id) == DAILY_FREE
    assert [line[:3] for line in await log_lines(sessions, here.guild_id)] == [
        ("settings", admin.user_id, None),
        ("block", None, user_id),
        ("block", None, user_id),
        ("auto_ban", None, user_id),  # in the third block's transaction, before it is logged
        ("block", None, user_id),
    ]
    auto_ban = (await log_of(sessions, here.guild_id))[3]
    assert auto_ban.detail == f"until {ends_at.isoformat(timespec='minutes')}; 2 jobs cancelled and refunded"

    with use_clock(FixedClock(ends_at + dt.timedelta(minutes=1))):
        await imagine(sessions, settings, queue, here, user_id)


async def test_strikes_outside_the_window_do_not_count(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, user_id = new_server(), new_id()
    await server_settings.update_server_moderation(
        sessions, settings.moderation, moderator(here), strikes_before_ban=2, strike_window_hours=24
    )
    start = utcnow()
    with use_clock(FixedClock(start)) as clock:
        await blocked(sessions, settings, queue, here, user_id, "a nude statue")
        assert isinstance(clock, FixedClock)
        clock.advance(hours=24, minutes=1)
        await blocked(sessions, settings, queue, here, user_id, "a nude statue")
        await imagine(sessions, settings, queue, here, user_id)  # one strike in the window: no ban
        async with sessions() as session:
            since = clock.now() - dt.timedelta(hours=24)
            assert await strikes.strikes_since(session, user_id, here.guild_id, since) == 1  # type: ignore[arg-type]
        clock.advance(hours=1)
        with pytest.raises(PromptBlocked):  # two in the window: banned (the job refunded)
            await submit(sessions, settings, queue, here, user_id, "a nude statue")
        with pytest.raises(Banned):
            await imagine(sessions, settings, queue, here, user_id)
    assert [line[0] for line in await log_lines(sessions, here.guild_id)][-2:] == ["auto_ban", "block"]


async def test_strikes_on_another_server_do_not_count_here(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    here, elsewhere, user_id = new_server(), new_server(), new_id()
    for origin in (here, elsewhere, here, elsewhere):
        await blocked(sessions, settings, queue, origin, user_id, "a nude statue")
    for origin in (here, elsewhere):
        await imagine(sessions, settings, queue, origin, user_id)  # two strikes each; three ban
