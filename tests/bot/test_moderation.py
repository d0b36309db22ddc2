"""`/mod` and every moderation button, end to end: simcord (discord.py's real machinery), Postgres,
Redis, the bot's own delivery and the moderation services.

Jobs are real submissions whose queue is held, so no worker renders them; a result is completed
here as the worker completes one (images stored, the job settled and screened in one transaction).
Who may moderate is decided by the services: `/mod` is made visible to members without Manage
Server (as a server admin can), and each of them is refused unless the moderator role is theirs.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import discord
import pytest
import simcord
from PIL import Image as PILImage
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import SojournBot
from db.models import (
    Appeal,
    AppealStatus,
    AuditEntry,
    Ban,
    GuildSettings,
    HeldResult,
    HoldStatus,
    Image,
    Job,
    JobStatus,
    LedgerEntry,
    LedgerKind,
    ServerWordRule,
    Strike,
)
from sojourn.clock import utcnow
from sojourn.default_words import DEFAULT_WORD_RULES
from sojourn.errors import NotAModerator
from sojourn.events import JobEvent, RedisEventPublisher
from sojourn.services import lifecycle
from sojourn.services.lifecycle import StoredImage
from sojourn.services.moderation import review, words
from sojourn.services.moderation.permissions import Actor
from sojourn.settings import Settings
from sojourn.storage import grid_key, image_key
from tests.bot.conftest import GatedQueue, World, balance_of, eventually, jobs_of, restart_bot
from tests.bot.helpers import ledger_kinds, reload, requests, result_message, wait_for_result

REFUSED = NotAModerator().message
MODERATION_TABLES = (Appeal, Strike, Ban, AuditEntry, ServerWordRule, HeldResult)


@pytest.fixture(autouse=True)
async def no_moderation_records(bot_sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Moderation's rows point at users (which each test's clean-up deletes) and at servers whose
    ids repeat between tests: they go before and after each test."""

    async def clear() -> None:
        async with bot_sessions.begin() as session:
            for table in MODERATION_TABLES:
                await session.execute(delete(table))

    await clear()
    yield
    await clear()


@dataclass
class Mods:
    """The world, plus Ada (Manage Server), Mia (the Mods role, a moderator once it is set) and
    an admin's choice to show `/mod` to Mods and to Bob, who moderates nothing."""

    world: World
    ada: simcord.MemberActor
    mia: simcord.MemberActor
    mods_role: simcord.RoleHandle
    other_role: simcord.RoleHandle

    @property
    def guild_id(self) -> int:
        return self.world.guild.id


@pytest.fixture
def mods(world: World) -> Mods:
    guild, env = world.guild, world.env
    admins = guild.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
    mods_role = guild.create_role("Mods")
    other_role = guild.create_role("Helpers")
    ada = guild.add_member(env.create_user("ada"), roles=[admins])
    mia = guild.add_member(env.create_user("mia"), roles=[mods_role])
    command = env.backend.find_command("mod", None)
    assert command is not None
    guild.set_command_permissions(int(command["id"]), {mods_role: True, world.bob: True})
    return Mods(world, ada, mia, mods_role, other_role)


def sojourn_bot(world: World) -> SojournBot:
    bot = world.env.bot
    assert isinstance(bot, SojournBot)
    return bot


async def mod(
    member: simcord.MemberActor, world: World, name: str, **options: Any
) -> simcord.InteractionResult:
    return await member.slash(world.channel, f"mod {name}", **options)


def answer(result: simcord.InteractionResult) -> simcord.ResponseMessage:
    """The private answer (deferred, then sent), as it reads now: its buttons replace it in place."""
    assert result.ephemeral and result.response is not None
    return result.response


def followup(result: simcord.InteractionResult) -> str:
    """What a pressed button said privately (its own message stays as it was)."""
    (said,) = result.followups
    assert said.ephemeral
    return said.content


def custom_ids(message: simcord.ResponseMessage) -> list[str]:
    return [
        component["custom_id"]
        for row in message.components
        for component in row.get("components", [])
        if "custom_id" in component
    ]


def button(message: simcord.ResponseMessage, custom_id: str) -> dict[str, Any]:
    return next(
        component
        for row in message.components
        for component in row.get("components", [])
        if component.get("custom_id") == custom_id
    )


def text_of(message: simcord.ResponseMessage) -> str:
    """Everything the message says: content, embed titles, descriptions, fields."""
    parts = [message.content]
    for embed in message.embeds:
        parts += [embed.title or "", embed.description or ""]
        parts += [f"{field.name}: {field.value}" for field in embed.fields]
    return "\n".join(parts)


async def state(sessions: async_sessionmaker[AsyncSession]) -> tuple[Any, ...]:
    """Everything a moderator could change."""
    async with sessions() as session:

        async def rows(query: Any) -> list[Any]:
            return sorted(map(tuple, (await session.execute(query)).all()), key=repr)

        return (
            await rows(select(Job.id, Job.status, Job.removed_at)),
            await rows(select(LedgerEntry.id, LedgerEntry.amount)),
            await rows(select(Ban.id, Ban.lifted_at)),
            await rows(select(ServerWordRule.pattern, ServerWordRule.action)),
            await rows(select(Strike.id, Strike.revoked_at)),
            await rows(select(Appeal.id, Appeal.status)),
            await rows(select(HeldResult.job_id, HeldResult.status)),
            await rows(
                select(GuildSettings.guild_id, GuildSettings.moderator_role_id, GuildSettings.updated_at)
            ),
            await rows(select(func.count()).select_from(AuditEntry)),
        )


async def imagine(world: World, member: simcord.MemberActor, sessions: Any, prompt: str) -> Job:
    """/imagine with the queue held: queued, paid for, its waiting message posted."""
    result = await member.slash(world.channel, "imagine", prompt=prompt)
    assert answer(result).content.startswith("Queued 1 job"), answer(result).content
    return (await jobs_of(sessions, member.id))[-1]


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def complete(world: World, settings: Settings, sessions: Any, job: Job, score: float) -> None:
    """What the worker does when a job ends (every image scored `score`), then the bot shows it."""
    bot = sojourn_bot(world)
    stored = []
    for index in range(5):  # 0: the grid; 1-4: its images
        key = grid_key(job.id) if index == 0 else image_key(job.id, index)
        bot.storage.put(key, png((200, 40 * index, 90)))
        stored.append(StoredImage(index, seed=index, width=64, height=64, storage_key=key))
    async with sessions.begin() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(status=JobStatus.RUNNING, attempts=1, started_at=utcnow())
        )
        assert await lifecycle.complete_job(session, job.id, 1, stored)
        await session.execute(update(Image).where(Image.job_id == job.id).values(safety_score=score))
        await review.screen_result(session, settings.moderation, job.id)
    RedisEventPublisher(settings.redis_url).publish(JobEvent(job_id=str(job.id), kind="succeeded"))

    async def shown() -> bool:
        return (await reload(sessions, job.id)).delivered_at is not None

    await eventually(shown, what=f"the outcome of {job.id} to be shown")
    await world.env.settle()


async def blocked_imagine(mods: Mods, sessions: Any, prompt: str) -> tuple[simcord.ResponseMessage, int]:
    """Alice's /imagine of a prompt the word list blocks: the private answer and its strike."""
    result = await mods.world.alice.slash(mods.world.channel, "imagine", prompt=prompt)
    blocked = answer(result)
    async with sessions() as session:
        strike_id = await session.scalar(select(Strike.id).where(Strike.user_id == mods.world.alice.id))
    assert strike_id is not None
    return blocked, strike_id


async def appeal(mods: Mods, blocked: simcord.ResponseMessage, strike_id: int, reason: str) -> str:
    pressed = await mods.world.alice.click(blocked, custom_id=f"sj:appeal:{strike_id}")
    assert pressed.modal is not None and pressed.modal["title"] == "Appeal a blocked prompt"
    submitted = await mods.world.alice.submit_modal(pressed, {"reason": reason})
    return answer(submitted).content


async def holds_of(sessions: async_sessionmaker[AsyncSession], user_id: int) -> list[int]:
    """The credits held from the user for jobs (what a submission charges)."""
    async with sessions() as session:
        query = select(LedgerEntry.amount).where(
            LedgerEntry.user_id == user_id, LedgerEntry.kind == LedgerKind.HOLD
        )
        return list((await session.execute(query)).scalars())


async def make_moderator(mods: Mods, role: simcord.RoleHandle) -> None:
    done = await mod(mods.ada, mods.world, "settings", moderator_role=role)
    assert f"Moderator role: <@&{role.id}>" in answer(done).content


# --- who may moderate ----------------------------------------------------------------------------


COMMANDS: dict[str, Callable[[World], dict[str, Any]]] = {
    "ban": lambda world: {"user": world.alice, "hours": 2.0, "reason": "spam"},
    "unban": lambda world: {"user": world.alice},
    "credits": lambda world: {"user": world.bob, "amount": 500, "reason": "for me"},
    "user": lambda world: {"user": world.alice},
    "words add": lambda world: {"words": "lighthouse"},
    "words remove": lambda world: {"words": "lighthouse"},
    "words allow": lambda world: {"words": "lighthouse"},
    "words list": lambda world: {},
    "words test": lambda world: {"prompt": "a lighthouse"},
    "delete": lambda world: {"job": str(uuid.uuid4())},
    "queue": lambda world: {},
    "review": lambda world: {},
    "appeals": lambda world: {},
    "log": lambda world: {},
    "settings": lambda world: {"strikes_before_ban": 1},
}


def test_every_mod_command_is_in_the_refusal_test(world: World) -> None:
    (group,) = [command for command in world.env.bot.tree.get_commands() if command.name == "mod"]
    assert isinstance(group, discord.app_commands.Group)
    leaves = {command.qualified_name.removeprefix("mod ") for command in group.walk_commands()}
    assert leaves - {"words"} == set(COMMANDS)


@pytest.mark.parametrize("name", [*COMMANDS, "settings (showing)"])
async def test_a_member_who_does_not_moderate_is_refused_privately_and_nothing_changes(
    mods: Mods, bot_sessions: async_sessionmaker[AsyncSession], name: str
) -> None:
    world = mods.world
    await mod(mods.ada, world, "words add", words="fog")  # something there to change
    before = await state(bot_sessions)

    options = {} if name == "settings (showing)" else COMMANDS[name](world)
    refused = await mod(world.bob, world, name.removesuffix(" (showing)"), **options)

    assert answer(refused).content == REFUSED
    assert answer(refused).embeds == [] and answer(refused).components == []
    assert await state(bot_sessions) == before


async def test_the_moderator_role_set_with_mod_settings_moderates(
    mods: Mods, bot_sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = mods.world
    refused = await mod(mods.mia, world, "words add", words="lighthouse")
    assert answer(refused).content == REFUSED

    # @everyone would make everyone a moderator.
    everyone = await mod(mods.ada, world, "settings", moderator_role=world.guild.default_role)
    assert answer(everyone).content.startswith("@everyone cannot be the moderator role")
    await make_moderator(mods, mods.mods_role)

    added = await mod(mods.mia, world, "words add", words="lighthouse, storm")
    assert answer(added).content == (
        "Blocked here: `lighthouse`, `storm`. Try a prompt against the list with /mod words test."
    )
    # Discord's own permission still counts, and the role is no one else's.
    assert answer(await mod(world.bob, world, "words list")).content == REFUSED
    listed = answer(await mod(mods.ada, world, "words list"))
    assert "Blocked: `lighthouse`, `storm`" in text_of(listed)


# --- the word list ---------------------------------------------------------------------------------


async def test_words_list_test_allow_and_remove(mods: Mods) -> None:
    world, ada = mods.world, mods.ada
    await mod(ada, world, "words add", words="lighthouse")
    warned = await mod(ada, world, "words add", words="fog", action="warn")
    assert answer(warned).content.startswith("Warning on here: `fog`.")
    allowed = await mod(ada, world, "words allow", words="foggy")
    assert answer(allowed).content == "Allowed here (these never match a rule): `foggy`."

    tested = answer(await mod(ada, world, "words test", prompt="a {castle, lighthouse} in the fog --ar 3:2"))
    assert tested.content == (
        "This prompt (any of its 2 permutations) matches:\n"
        '⛔ "lighthouse" matches the word rule "lighthouse" (block)\n'
        '⚠️ "fog" matches the word rule "fog" (warn)\n'
        "/imagine would refuse it, and count a strike. This was a dry run; nothing was recorded."
    )
    innocent = answer(await mod(ada, world, "words test", prompt="a castle, foggy morning"))
    assert innocent.content.startswith("No rule matches this prompt: /imagine would run it.")
    # A prompt /imagine would refuse for its permutations is tested as typed.
    too_many = "{a,b,c,d,e,f,g,h} {a,b,c,d,e,f,g,h} lighthouse"
    assert "(block)" in answer(await mod(ada, world, "words test", prompt=too_many)).content

    removed = await mod(ada, world, "words remove", words="lighthouse")
    assert answer(removed).content == "Removed: lighthouse."
    listed = text_of(answer(await mod(ada, world, "words list")))
    assert "Blocked: none" in listed and "Warned about (the job runs, and it is logged): `fog`" in listed
    assert "Allow list (never matches): `foggy`" in listed
    shipped = len(DEFAULT_WORD_RULES)
    assert f"Default word list: on: {shipped} of the {shipped} shipped rules" in listed
    default = DEFAULT_WORD_RULES[0].pattern
    turned_off = answer(await mod(ada, world, "words remove", words=default))
    assert turned_off.content == f"Removed: {default} (a default, now off here)."
    listed = text_of(answer(await mod(ada, world, "words list")))
    assert f"Default word list: on: {shipped - 1} of the {shipped} shipped rules" in listed
    assert f"Defaults turned off here: `{default}`" in listed

    # A long list is cut short with a count, within Discord's limits.
    many = ", ".join(f"lighthouse number {n:02d}" for n in range(50))
    await mod(ada, world, "words add", words=many)
    (embed,) = answer(await mod(ada, world, "words list")).embeds
    blocked = next(field.value for field in embed.fields if field.name == "Blocked")
    assert blocked is not None and len(blocked) <= 1024 and blocked.endswith("more")
    assert len(embed) <= 6000

    nothing = await mod(ada, world, "words remove", words="castle")
    assert answer(nothing).content.startswith("None of castle is on this server's list")


# --- a blocked prompt, its appeal, the decision -------------------------------------------------------


async def test_a_blocked_imagine_is_private_free_and_its_appeal_accepted_runs_it_once(
    mods: Mods, bot_sessions: async_sessionmaker[AsyncSession], queue: GatedQueue
) -> None:
    world, alice = mods.world, mods.world.alice
    queue.hold()
    await mod(mods.ada, world, "words add", words="lighthouse")
    posted = len(world.channel.history())

    blocked, strike_id = await blocked_imagine(mods, bot_sessions, "a lighthouse at dusk")

    assert blocked.content.startswith(
        'This prompt was blocked by the server\'s word filter: "lighthouse" matches the word rule '
        '"lighthouse" (block). Nothing was charged.'
    )
    assert custom_ids(blocked) == [f"sj:appeal:{strike_id}"]
    assert button(blocked, f"sj:appeal:{strike_id}")["label"] == "Appeal"
    assert len(world.channel.history()) == posted  # nothing public
    assert await jobs_of(bot_sessions, alice.id) == [] and await holds_of(bot_sessions, alice.id) == []

    confirmed = await appeal(mods, blocked, strike_id, "A lighthouse is a building by the sea.")
    assert confirmed.startswith("Your appeal (#") and "is with this server's moderators" in confirmed
    again = await mods.world.alice.click(blocked, custom_id=f"sj:appeal:{strike_id}")  # refused at once
    assert again.modal is None and answer(again).content == "You already appealed this block; it is pending."

    # Two moderators open the appeals; both see it.
    listed = await mod(mods.ada, world, "appeals")
    stale = await mod(mods.ada, world, "appeals")
    async with bot_sessions() as session:
        appeal_id = await session.scalar(select(Appeal.id))
    (embed,) = answer(listed).embeds
    assert embed.title == f"1. Appeal #{appeal_id}"
    fields = {field.name: field.value for field in embed.fields}
    assert fields == {
        "Prompt": "a lighthouse at dusk",
        "Blocked by": '"lighthouse" matches the word rule "lighthouse" (block)',
        "Their reason": "A lighthouse is a building by the sea.",
    }
    assert custom_ids(answer(listed)) == [
        f"sj:mod:appeal:accept:{appeal_id}",
        f"sj:mod:appeal:reject:{appeal_id}",
    ]

    await mods.ada.click(answer(listed), custom_id=f"sj:mod:appeal:accept:{appeal_id}")

    (job,) = await jobs_of(bot_sessions, alice.id)
    assert job.status == JobStatus.QUEUED and job.prompt.startswith("a lighthouse at dusk")
    assert await holds_of(bot_sessions, alice.id) == [-job.cost]  # charged now, once
    balance = await balance_of(bot_sessions, alice.id)
    async with bot_sessions() as session:
        strike = await session.get(Strike, strike_id)
        assert strike is not None and strike.revoked_at is not None
    after = answer(listed)
    assert after.content.startswith(f"Accepted appeal #{appeal_id} of {alice.mention}: the strike is lifted")
    assert after.content.endswith("No appeals are waiting on this server.") and after.components == []
    # In the channel, as /imagine shows a job: its waiting message; and Alice is told, mentioned alone.
    waiting, told = world.channel.history()[-2:]
    assert waiting.content.startswith("**a lighthouse at dusk") and "Waiting to start" in waiting.content
    assert told.content == (
        f"{alice.mention} a moderator accepted your appeal: the strike is lifted and your prompt runs "
        f"now (1 job, {job.cost} credits held). The result will appear here."
    )
    sent = [r for r in requests(world.env, "POST", f"/channels/{world.channel.id}/messages") if r.json]
    assert sent[-1].json["allowed_mentions"] == {"parse": [], "users": [alice.id]}

    # The other moderator's stale list: the appeal was decided; the prompt runs once.
    late = await mods.ada.click(answer(stale), custom_id=f"sj:mod:appeal:accept:{appeal_id}")
    assert followup(late) == f"That appeal was already accepted (by {mods.ada.mention})."
    assert len(await jobs_of(bot_sessions, alice.id)) == 1
    assert await holds_of(bot_sessions, alice.id) == [-job.cost]
    assert await balance_of(bot_sessions, alice.id) == balance

    report = text_of(answer(await mod(mods.ada, world, "user", user=alice)))
    assert "Strikes: 0 in the last 24 h" in report and "lifted on appeal" in report


async def test_a_rejected_appeal_keeps_the_strike_and_the_member_is_told(
    mods: Mods, bot_sessions: async_sessionmaker[AsyncSession], bot_settings: Settings, queue: GatedQueue
) -> None:
    world, alice = mods.world, mods.world.alice
    await mod(mods.ada, world, "words add", words="lighthouse")
    blocked, strike_id = await blocked_imagine(mods, bot_sessions, "a lighthouse at dusk")
    # The form is answered from its custom_id: a restart while it is open loses nothing.
    form = await alice.click(blocked, custom_id=f"sj:appeal:{strike_id}")
    await restart_bot(world.env, bot_settings, queue)
    submitted = await alice.submit_modal(form, {"reason": "It is a building."})
    assert answer(submitted).content.startswith("Your appeal (#")
    listed = await mod(mods.ada, world, "appeals")
    async with bot_sessions() as session:
        appeal_id = await session.scalar(select(Appeal.id))

    await mods.ada.click(answer(listed), label="Reject 1")

    async with bot_sessions() as session:
        decided = await session.get(Appeal, appeal_id)
        strike = await session.get(Strike, strike_id)
    assert (
        decided is not None and decided.status == AppealStatus.REJECTED and decided.decided_by == mods.ada.id
    )
    assert strike is not None and strike.revoked_at is None
    assert await jobs_of(bot_sessions, alice.id) == []
    told = world.channel.history()[-1]
    assert told.content == (
        f"{alice.mention} a moderator rejected your appeal of a blocked prompt: the strike stays. "
        "Rephrase the prompt and try again, or ask a moderator why."
    )
    assert answer(listed).content.startswith(
        f"Rejected appeal #{appeal_id} of {alice.mention}: the strike stays. They were told in "
    )
    report = text_of(answer(await mod(mods.ada, world, "user", user=alice)))
    assert "Strikes: 1 in the last 24 h (3 within 24 h ban automatically)" in report
    assert "“a lighthouse at dusk”" in report


# --- held results ------------------------------------------------------------------------------------


async def test_review_shows_held_results_blurred_and_skip_remove_approve_work_after_a_restart(
    mods: Mods, bot_sessions: async_sessionmaker[AsyncSession], bot_settings: Settings, queue: GatedQueue
) -> None:
    world, alice = mods.world, mods.world.alice
    queue.hold()
    first = await imagine(world, alice, bot_sessions, "a red fox --seed 1")
    second = await imagine(world, alice, bot_sessions, "a blue fox --seed 2")
    await complete(world, bot_settings, bot_sessions, first, score=0.93)
    await complete(world, bot_settings, bot_sessions, second, score=0.81)
    assert result_message(world.channel, first.id) is None  # held: no result, no buttons
    balance = await balance_of(bot_sessions, alice.id)

    review_page = await mod(mods.ada, world, "review")
    page = answer(review_page)
    (embed,) = page.embeds
    assert embed.title == "Held for review (2 waiting)" and first.prompt == embed.description
    fields = {field.name: field.value for field in embed.fields}
    assert fields["Owner"] == alice.mention and fields["Score"] == "0.93"
    assert fields["Why"] == "safety score 0.93 ≥ 0.7"
    (attachment,) = page.attachments
    assert attachment.is_spoiler() and attachment.filename == "SPOILER_grid.png"
    assert custom_ids(page) == [
        f"sj:mod:review:{decision}:{first.id.hex}" for decision in ("approve", "remove", "skip")
    ]

    await mods.ada.click(page, label="Skip")
    assert answer(review_page).embeds[0].description == second.prompt

    await mods.ada.click(answer(review_page), label="Remove")
    removed = answer(review_page)
    assert removed.content.startswith(
        f"Removed `{second.id}`: {alice.mention} got its {second.cost} credits back"
    )
    assert removed.embeds[0].title == "Held for review (1 waiting)"
    assert removed.embeds[0].description == first.prompt
    assert await balance_of(bot_sessions, alice.id) == balance + second.cost
    assert LedgerKind.REMOVED in await ledger_kinds(bot_sessions, second.id)

    # A new bot process answers the old page's buttons: they carry all they need.
    await restart_bot(world.env, bot_settings, queue)
    await mods.ada.click(removed, label="Approve")

    delivered = await wait_for_result(world, first.id)
    assert delivered.attachments and not delivered.attachments[0].is_spoiler()
    approved = answer(review_page)
    assert approved.content == (
        f"Approved `{first.id}` of {alice.mention}: its result is posted in {world.channel.mention}.\n"
        "Nothing is waiting for review on this server."
    )
    assert approved.attachments == [] and approved.components == []
    async with bot_sessions() as session:
        rows = (await session.execute(select(HeldResult.job_id, HeldResult.status))).all()
    statuses = {job_id: status for job_id, status in rows}
    assert statuses == {first.id: HoldStatus.APPROVED, second.id: HoldStatus.REMOVED}
    assert "Strikes: 1 in the last 24 h" in text_of(answer(await mod(mods.ada, world, "user", user=alice)))


# --- results, jobs and members --------------------------------------------------------------------


async def test_mod_delete_removes_the_result_and_its_message(
    mods: Mods, bot_sessions: async_sessionmaker[AsyncSession], bot_settings: Settings, queue: GatedQueue
) -> None:
    world = mods.world
    queue.hold()
    job = await imagine(world, world.alice, bot_sessions, "a calm sea --seed 3")
    await complete(world, bot_settings, bot_sessions, job, score=0.01)
    message = await wait_for_result(world, job.id)

    deleted = answer(await mod(mods.ada, world, "delete", job=str(job.id)))

    assert deleted.content == (
        f"Deleted job `{job.id}` of {world.alice.mention}. Its message is deleted. "
        "Its files are kept for the moderators (purge:True deletes them)."
    )
    assert all(m.id != message.id for m in world.channel.history())
    assert (await reload(bot_sessions, job.id)).removed_at is not None
    again = answer(await mod(mods.ada, world, "delete", job=str(job.id)))
    assert again.content == f"Job {job.id} was already deleted."
    unknown = answer(await mod(mods.ada, world, "delete", job="not-a-job"))
    assert unknown.content.startswith("There is no job not-a-job")


async def test_a_ban_refuses_imagine_with_its_reason_and_end_and_info_still_answers(
    mods: Mods, bot_sessions: async_sessionmaker[AsyncSession], queue: GatedQueue
) -> None:
    world, bob = mods.world, mods.world.bob
    queue.hold()
    running = await imagine(world, bob, bot_sessions, "a quiet harbour")

    banned = answer(await mod(mods.ada, world, "ban", user=bob, hours=2.0, reason="spamming the channel"))

    async with bot_sessions() as session:
        ban = await session.scalar(select(Ban))
    assert ban is not None and ban.ends_at is not None
    end = int(ban.ends_at.timestamp())
    assert banned.content == (
        f"{bob.mention} is banned from sojourn on this server until <t:{end}:f> (<t:{end}:R>) (reason: "
        "spamming the channel). 1 of their jobs here was cancelled and refunded. Their commands and "
        "buttons are refused with the reason and the end; /mod unban lifts it."
    )
    assert (await reload(bot_sessions, running.id)).status == JobStatus.CANCELLED
    refused = answer(await bob.slash(world.channel, "imagine", prompt="a quiet harbour"))
    assert "spamming the channel" in refused.content and f"<t:{end}:f>" in refused.content
    assert len(await jobs_of(bot_sessions, bob.id)) == 1
    info = await bob.slash(world.channel, "info")
    assert info.ephemeral and info.response is not None and info.response.embeds
    for command, options in (("settings", {}), ("prefer suffix", {}), ("show", {"job_id": str(running.id)})):
        other = answer(await bob.slash(world.channel, command, **options))  # every command but /info
        assert "spamming the channel" in other.content and f"<t:{end}:f>" in other.content, command

    lifted = answer(await mod(mods.ada, world, "unban", user=bob))
    assert lifted.content == f"Lifted the ban on {bob.mention}: they can use sojourn on this server again."
    await imagine(world, bob, bot_sessions, "a quiet harbour")
    again = answer(await mod(mods.ada, world, "unban", user=bob))
    assert again.content == f"{bob.mention} is not banned on this server: nothing to lift."
    yourself = answer(await mod(mods.ada, world, "ban", user=mods.ada))
    assert yourself.content == "You cannot ban yourself."


async def test_credits_are_granted_and_taken_back_down_to_zero(
    mods: Mods, bot_sessions: async_sessionmaker[AsyncSession]
) -> None:
    world, bob = mods.world, mods.world.bob
    given = answer(await mod(mods.ada, world, "credits", user=bob, amount=50, reason="contest prize"))
    balance = await balance_of(bot_sessions, bob.id)
    assert given.content == f"Gave {bob.mention} 50 credits; they now have {balance}."

    taken = answer(
        await mod(mods.ada, world, "credits", user=bob, amount=-(balance + 10), reason="refund abuse")
    )
    assert taken.content == (
        f"Took {balance} credits from {bob.mention} (you asked for {balance + 10}; a balance stops at 0); "
        "they now have 0."
    )
    assert await balance_of(bot_sessions, bob.id) == 0
    none_left = answer(await mod(mods.ada, world, "credits", user=bob, amount=-5, reason="again"))
    assert none_left.content == f"{bob.mention} has no credits left: there is nothing to take back."


async def test_the_queue_lists_jobs_and_cancel_refunds_one(
    mods: Mods, bot_sessions: async_sessionmaker[AsyncSession], queue: GatedQueue
) -> None:
    world, alice = mods.world, mods.world.alice
    queue.hold()
    assert (
        answer(await mod(mods.ada, world, "queue")).content == "Nothing is running or waiting on this server."
    )
    first = await imagine(world, alice, bot_sessions, "a fox in the snow " + "very " * 20 + "cold")
    second = await imagine(world, world.bob, bot_sessions, "an owl")
    balance = await balance_of(bot_sessions, alice.id)

    queue_page = await mod(mods.ada, world, "queue")

    page = answer(queue_page)
    (embed,) = page.embeds
    assert embed.description is not None
    lines = embed.description.splitlines()
    assert lines[0].startswith(f"`1.` {alice.mention} · queued, position 1 · ")
    assert "“a fox in the snow very very" in lines[0] and "…”" in lines[0]
    assert lines[1].startswith(f"`2.` {world.bob.mention} · queued, position 2 · ")
    assert custom_ids(page) == [f"sj:mod:cancel:{first.id.hex}", f"sj:mod:cancel:{second.id.hex}"]

    await mods.ada.click(page, label="Cancel 1")

    assert (await reload(bot_sessions, first.id)).status == JobStatus.CANCELLED
    assert await balance_of(bot_sessions, alice.id) == balance + first.cost
    after = answer(queue_page)
    assert (
        after.content
        == f"Cancelled `{first.id}` of {alice.mention}: refunded in full ({first.cost} credits)."
    )
    assert custom_ids(after) == [f"sj:mod:cancel:{second.id.hex}"]
    log = text_of(answer(await mod(mods.ada, world, "log", kind="cancel")))
    assert f"**cancel** by {mods.ada.mention} → {alice.mention} · job `{first.id}`" in log


async def test_settings_show_change_and_restrict_imagine_to_channels(
    mods: Mods, bot_sessions: async_sessionmaker[AsyncSession], queue: GatedQueue
) -> None:
    world = mods.world
    queue.hold()
    shown = answer(await mod(mods.ada, world, "settings"))
    assert shown.content.startswith("This server's moderation settings:\n- Image safety check: **review**")

    studio = world.guild.create_text_channel("studio")
    changed = answer(
        await mod(
            mods.ada, world, "settings", safety_mode="block", safety_threshold=0.5, imagine_channel_add=studio
        )
    )
    assert changed.content.startswith(
        "Saved. This server's moderation settings:\n- Image safety check: **block**, threshold 0.5"
    )
    assert f"/imagine allowed in: {studio.mention}" in changed.content
    refused = answer(await world.alice.slash(world.channel, "imagine", prompt="a fox"))
    assert (
        refused.content
        == f"This server allows /imagine only in {studio.mention}: try it there. Nothing was charged."
    )

    wrong = answer(await mod(mods.ada, world, "settings", imagine_channel_remove=world.channel))
    assert wrong.content.startswith(f"{world.channel.mention} is not one of the /imagine channels")
    cleared = answer(await mod(mods.ada, world, "settings", imagine_channels_clear=True))
    assert "/imagine allowed in: every channel" in cleared.content
    await imagine(world, world.alice, bot_sessions, "a fox")


async def test_the_log_pages_with_buttons_and_filters(
    mods: Mods, bot_sessions: async_sessionmaker[AsyncSession]
) -> None:
    world = mods.world
    ada = Actor(user_id=mods.ada.id, guild_id=mods.guild_id, manage_guild=True)
    for number in range(12):
        await words.add_words(bot_sessions, ada, f"word{number:02d}")
    await mod(mods.ada, world, "ban", user=world.bob, reason="spam")
    async with bot_sessions() as session:
        ids = list((await session.execute(select(AuditEntry.id).order_by(AuditEntry.id.desc()))).scalars())
    assert len(ids) == 13

    def shown_ids(message: simcord.ResponseMessage) -> list[int]:
        (embed,) = message.embeds
        assert embed.description is not None
        return [int(line.split("`#")[1].split("`")[0]) for line in embed.description.splitlines()]

    log_page = await mod(mods.ada, world, "log")
    page = answer(log_page)
    assert shown_ids(page) == ids[:10]
    assert page.embeds[0].description is not None
    assert page.embeds[0].description.splitlines()[0].startswith(f"`#{ids[0]}` <t:")
    assert f"**ban** by {mods.ada.mention} → {world.bob.mention} · until lifted" in page.embeds[0].description
    assert button(page, "sj:mod:log:0::0")["disabled"] is True
    assert button(page, f"sj:mod:log:0::{ids[9]}").get("disabled") in (None, False)

    await mods.ada.click(page, label="Older")
    older = answer(log_page)
    assert shown_ids(older) == ids[10:]
    assert button(older, f"sj:mod:log:0::{ids[12]}")["disabled"] is True

    await mods.ada.click(older, label="Newest")
    assert shown_ids(answer(log_page)) == ids[:10]

    bans = answer(await mod(mods.ada, world, "log", kind="ban"))
    assert shown_ids(bans) == ids[:1] and bans.embeds[0].title == "Moderation log (ban only)"
    about_bob = answer(await mod(mods.ada, world, "log", user=world.bob))
    assert shown_ids(about_bob) == ids[:1]
    assert custom_ids(about_bob) == [f"sj:mod:log:{world.bob.id}::0", f"sj:mod:log:{world.bob.id}::{ids[0]}"]
    nothing = answer(await mod(mods.ada, world, "log", user=world.alice, kind="unban"))
    assert nothing.embeds[0].description == "Nothing is logged on this server yet with these filters."


# --- every moderation button, pressed by someone who no longer moderates ------------------------------


async def open_page(
    mods: Mods, sessions: Any, settings: Settings, button_name: str
) -> tuple[simcord.InteractionResult, str]:
    """Mia (a moderator) opens the page with that button; the page and the button's custom_id."""
    world, mia = mods.world, mods.mia
    if button_name == "cancel":
        job = await imagine(world, world.alice, sessions, "a fox")
        return await mod(mia, world, "queue"), f"sj:mod:cancel:{job.id.hex}"
    if button_name in ("approve", "remove", "skip"):
        job = await imagine(world, world.alice, sessions, "a fox")
        await complete(world, settings, sessions, job, score=0.9)
        return await mod(mia, world, "review"), f"sj:mod:review:{button_name}:{job.id.hex}"
    if button_name in ("accept", "reject"):
        await mod(mods.ada, world, "words add", words="lighthouse")
        blocked, strike_id = await blocked_imagine(mods, sessions, "a lighthouse")
        await appeal(mods, blocked, strike_id, "It is a building.")
        async with sessions() as session:
            appeal_id = await session.scalar(select(Appeal.id))
        return await mod(mia, world, "appeals"), f"sj:mod:appeal:{button_name}:{appeal_id}"
    ada = Actor(user_id=mods.ada.id, guild_id=mods.guild_id, manage_guild=True)
    for number in range(11):
        await words.add_words(sessions, ada, f"word{number:02d}")
    page = await mod(mia, world, "log")
    if button_name == "older":
        return page, next(custom_id for custom_id in custom_ids(answer(page)) if not custom_id.endswith(":0"))
    await mia.click(answer(page), label="Older")
    return page, "sj:mod:log:0::0"


@pytest.mark.parametrize(
    "button_name", ["cancel", "approve", "remove", "skip", "accept", "reject", "older", "newest"]
)
async def test_every_moderation_button_refuses_a_member_who_no_longer_moderates(
    mods: Mods,
    bot_sessions: async_sessionmaker[AsyncSession],
    bot_settings: Settings,
    queue: GatedQueue,
    button_name: str,
) -> None:
    queue.hold()
    await make_moderator(mods, mods.mods_role)
    page, custom_id = await open_page(mods, bot_sessions, bot_settings, button_name)
    await make_moderator(mods, mods.other_role)  # Mia's role no longer moderates
    before = await state(bot_sessions)
    shown = shown_on(answer(page))

    pressed = await mods.mia.click(answer(page), custom_id=custom_id)

    assert followup(pressed) == REFUSED
    assert await state(bot_sessions) == before
    assert shown_on(answer(page)) == shown


def shown_on(message: simcord.ResponseMessage) -> tuple[Any, ...]:
    return message.content, [embed.to_dict() for embed in message.embeds], message.components
