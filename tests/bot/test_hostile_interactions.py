"""Hostile custom_ids and modal submissions: each refused privately or ignored, and nothing changes.

Every `DynamicItem` the bot registers (the result buttons' `ResultButton`; the settings panel's
`SettingSelect` and `SettingToggle`) and the remix modal's listener get forged input: too long,
empty, unicode lookalikes, another user's private job, a job from another guild, jobs that do not
exist or have not finished, impossible images, unknown actions, SQL-ish text, and random strings.

How a forged custom_id reaches the bot here. Discord only sends a custom_id that is on a component
of the clicked message, and discord.py only routes a `DynamicItem` when the id is on
`interaction.message`. So a custom_id Discord would accept (1–100 characters) is posted on a
message of the bot's, through discord.py (a stopped view: no live view answers it), and clicked
through simcord's public `click(custom_id=...)`. Ids Discord would refuse to carry (empty, over
100 characters) and modal submissions with a custom_id of our choosing have no public route in
simcord 3.2: they go through its lowest level, the one bench/discord_latency.py uses, building the
INTERACTION_CREATE payload with `simcord.interactions.base_payload` and emitting it on the
backend (with the forged component placed on the message payload, as Discord would show it).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import discord
import pytest
import simcord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simcord import interactions as sim_interactions
from simcord.backend import serializers
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import GENERIC_FAILURE
from bot.exts.buttons._views import CUSTOM_ID_TEMPLATE
from db.models import Favorite, GuildSettings, Image, Job, JobKind, JobStatus, LedgerEntry, User
from sojourn.actions import ACTIONS
from sojourn.clock import utcnow
from sojourn.prompt import parse_prompt, to_canonical
from sojourn.services import credits
from sojourn.settings import Settings
from tests.bot.conftest import GatedQueue, World, restart_bot
from tests.prompt.helpers import RULES

COMPONENT, MODAL_SUBMIT = 3, 5  # interaction types
BUTTON = 2  # component type
GONE = "That result no longer exists, so its buttons do nothing. Use /imagine again."
NOT_HERE = "That button does not belong to this result."
NOT_DONE = "That job queued, so it has no images to work from."
ONE_IMAGE = "This result has one image, so there is no image {} to use."
NO_IMAGE = "That {} button does not say which image it is for"


# --- the jobs the forged ids point at -------------------------------------------------------------


async def finished_job(
    sessions: async_sessionmaker[AsyncSession],
    user_id: int,
    guild_id: int,
    text: str,
    *,
    status: JobStatus = JobStatus.SUCCEEDED,
    images: int = 4,
) -> Job:
    """A job row as a worker leaves it (images recorded), without rendering anything.

    No channel: the delivery sweep only posts jobs asked for in a channel, so nothing is posted.
    """
    spec = parse_prompt(text, RULES)[0].model_copy(update={"seed": 7, "images": images})
    done = status == JobStatus.SUCCEEDED
    job = Job(
        id=uuid.uuid4(),
        user_id=user_id,
        kind=JobKind.IMAGINE if images > 1 else JobKind.UPSCALE,
        prompt=to_canonical(spec),
        spec=spec.model_dump(mode="json"),
        status=status,
        cost=4,
        queued_at=utcnow(),
        finished_at=utcnow() if done else None,
        guild_id=guild_id,
    )
    if done:
        indexes = range(0, images + 1) if images > 1 else [1]
        job.images = [
            Image(
                index=i,
                seed=7 + i,
                width=spec.width,
                height=spec.height,
                storage_key=f"jobs/{job.id}/{i}.png",
            )
            for i in indexes
        ]
    async with sessions.begin() as session:
        await credits.ensure_user(session, user_id)
        session.add(job)
    return job


@dataclass
class Targets:
    """Alice's jobs in the test guild, and Carol's in another guild; Bob presses."""

    public: Job
    private: Job
    single: Job  # an upscale: one image
    queued: Job
    elsewhere: Job  # Carol's public job, made in another guild

    def all(self) -> list[Job]:
        return [self.public, self.private, self.single, self.queued, self.elsewhere]


@pytest.fixture
async def targets(world: World, bot_sessions: async_sessionmaker[AsyncSession]) -> Targets:
    other_guild = world.env.create_guild("Elsewhere")
    carol = other_guild.add_member(world.env.create_user("carol"))
    alice = world.alice.id
    return Targets(
        public=await finished_job(bot_sessions, alice, world.guild.id, "a red fox"),
        private=await finished_job(bot_sessions, alice, world.guild.id, "a secret map --private"),
        single=await finished_job(bot_sessions, alice, world.guild.id, "a red fox", images=1),
        queued=await finished_job(bot_sessions, alice, world.guild.id, "a slow fox", status=JobStatus.QUEUED),
        elsewhere=await finished_job(bot_sessions, carol.id, other_guild.id, "a far fox"),
    )


# --- what must not change ---------------------------------------------------------------------------


async def database_state(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with sessions() as session:

        async def count(table: type[Any]) -> int:
            return int(await session.scalar(select(func.count()).select_from(table)) or 0)

        return {
            "jobs": await count(Job),
            "ledger entries": await count(LedgerEntry),
            "favorites": await count(Favorite),
            "guild settings": await count(GuildSettings),
            "balances": dict((await session.execute(select(User.id, User.balance))).all()),
            "statuses": dict((await session.execute(select(Job.id, Job.status))).all()),
        }


@pytest.fixture
async def unchanged(
    targets: Targets, bot_sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> AsyncIterator[None]:
    """After the test: the same rows and balances, no error raised in the bot, none logged."""
    before = await database_state(bot_sessions)
    caplog.set_level(logging.WARNING)
    yield
    assert await database_state(bot_sessions) == before
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [f"{r.name}: {r.getMessage()}" for r in errors]


def answer(result: simcord.InteractionResult) -> str | None:
    """The private answer to a press (None: ignored), checked to be private and in our words.

    A press that makes a job is followed by the job's public message ("Waiting to start…")."""
    messages = [m for m in [result.response, *result.followups] if m is not None]
    if not messages:
        assert not result.acknowledged, result  # ignored, not left "thinking…"
        return None
    public = [m.content for m in messages if not m.ephemeral]
    assert messages[0].ephemeral and all("Waiting to start" in (text or "") for text in public), public
    content = messages[0].content
    assert content and content != GENERIC_FAILURE and "Traceback" not in content, content
    return content


# --- sending forged input -----------------------------------------------------------------------------


async def post_buttons(world: World, custom_ids: list[str]) -> discord.Message:
    """A message of the bot's carrying buttons with these custom_ids (as an old or forged result)."""
    view = discord.ui.View(timeout=None)
    for custom_id in custom_ids:
        view.add_item(discord.ui.Button(label="?", custom_id=custom_id))
    view.stop()  # only components on the message: no live view object answers a click on it
    channel = world.env.bot.get_partial_messageable(world.channel.id, guild_id=world.guild.id)
    return await channel.send("a result", view=view)


async def dispatch_raw(
    world: World, member: simcord.MemberActor, kind: int, data: dict[str, Any], message: dict[str, Any] | None
) -> simcord.InteractionResult:
    """simcord's lowest level: an INTERACTION_CREATE payload of our making, emitted as Discord would."""
    env = world.env
    record, payload = sim_interactions.base_payload(
        env.backend,
        type=kind,
        channel_id=world.channel.id,
        guild_id=world.guild.id,
        user_id=member.id,
        data=data,
    )
    if message is not None:
        payload["message"] = message
        record.source_message_id = int(message["id"])
    env.backend.emit("INTERACTION_CREATE", payload)
    await env.settle()
    return simcord.InteractionResult(env, record)


async def press(world: World, member: simcord.MemberActor, custom_id: str) -> simcord.InteractionResult:
    """Click a button carrying `custom_id` on a message of the bot's."""
    if 1 <= len(custom_id) <= 100:
        return await member.click(await post_buttons(world, [custom_id]), custom_id=custom_id)
    # Longer or empty: a message Discord would never hold, so forge it on top of a real one.
    posted = await post_buttons(world, ["sj:placeholder"])
    stored = world.env.backend.get_message(world.channel.id, posted.id)
    message = dict(serializers.message_payload(world.env.backend, stored))
    message["components"] = [
        {"type": 1, "components": [{"type": BUTTON, "style": 2, "label": "?", "custom_id": custom_id}]}
    ]
    return await dispatch_raw(
        world, member, COMPONENT, {"custom_id": custom_id, "component_type": BUTTON}, message
    )


async def submit_remix(
    world: World, member: simcord.MemberActor, custom_id: str, prompt: str | None
) -> simcord.InteractionResult:
    """Submit a modal with this custom_id and this text in the remix modal's prompt field."""
    field = [{"type": 4, "custom_id": "prompt", "value": prompt}] if prompt is not None else []
    data = {"custom_id": custom_id, "components": [{"type": 1, "components": field}]}
    return await dispatch_raw(world, member, MODAL_SUBMIT, data, None)


# --- hand-made hostile ids ----------------------------------------------------------------------------


def hostile_presses(t: Targets) -> list[tuple[str, str, str | None]]:
    """(what it is, custom_id, Bob's answer or None if ignored), for the result buttons."""
    public, private, single, queued, elsewhere = (job.id.hex for job in t.all())
    unknown = uuid.UUID(int=0x5EED).hex
    return [
        ("empty", "", None),
        ("over 100 characters", f"sj:u:{public}:1" + "0" * 80, None),
        ("over 100 characters, padded with spaces", f"sj:u:{public}:1" + " " * 70, None),
        ("Cyrillic s in the prefix", f"\u0455j:u:{public}:1", None),
        ("Cyrillic a in the job id", f"sj:u:{public[:-1]}\u0430:1", None),
        ("fullwidth digit index", f"sj:u:{public}:\uff11", None),
        ("fullwidth colons", f"sj\uff1au\uff1a{public}\uff1a1", None),
        ("uppercase job id", f"sj:u:{public.upper()}:1", None),
        ("trailing newline", f"sj:u:{public}:1\n", None),
        ("zero-width space", f"sj:u:{public}\u200b:1", None),
        ("dashed uuid", f"sj:u:{uuid.UUID(public)}:1", None),
        ("another user's private job", f"sj:u:{private}:1", GONE),
        ("another user's private job, favorite", f"sj:fav:{private}:1", GONE),
        ("a job from another guild", f"sj:v:{elsewhere}:2", f"Only <@{t.elsewhere.user_id}> can use"),
        ("another user's public job", f"sj:r:{public}", f"Only <@{t.public.user_id}> can use"),
        ("a job that does not exist", f"sj:u:{unknown}:1", GONE),
        ("a job that does not exist, favorite", f"sj:fav:{unknown}:1", GONE),
        ("a job that has not finished", f"sj:u:{queued}:1", NOT_DONE),
        ("index 0", f"sj:u:{public}:0", None),
        ("negative index", f"sj:u:{public}:-1", None),
        ("index 5", f"sj:u:{public}:5", None),
        ("huge index", f"sj:u:{public}:{10**40}", None),
        ("an image a single result does not have", f"sj:up:{single}:4", ONE_IMAGE.format(4)),
        ("a favorite that names no image", f"sj:fav:{single}", NO_IMAGE.format("Favorite")),
        ("a grid button on a single image", f"sj:u:{single}:1", NOT_HERE),
        ("a single-image button on a grid", f"sj:vs:{public}:1", NOT_HERE),
        ("re-roll with an image", f"sj:r:{public}:3", NOT_HERE),
        ("unknown action", f"sj:x:{public}:1", None),
        ("action in capitals", f"sj:U:{public}:1", None),
        ("remix modal id as a button", f"sj:m:v:{public}:1", None),
        ("settings id of no setting", "sj:set:evil", None),
        ("SQL in the action", f"sj:u' OR '1'='1:{public}:1", None),
        ("SQL in the job id", "sj:u:'; DROP TABLE jobs; --:1", None),
        ("SQL after a valid id", f"sj:u:{public}:1; DELETE FROM ledger_entries", None),
        ("format string", f"sj:u:{{0.__class__}}:{public}", None),
    ]  # fmt: skip


async def test_forged_result_buttons_are_refused_or_ignored(
    world: World, targets: Targets, unchanged: None
) -> None:
    for case, custom_id, expected in hostile_presses(targets):
        cursor = world.env.error_cursor
        got = answer(await press(world, world.bob, custom_id))
        assert not world.env.errors_since(cursor), case
        if expected is None:
            assert got is None, (case, got)
        else:
            assert got is not None and got.startswith(expected), (case, got)
    assert {m.content for m in world.channel.history()} == {"a result"}  # only the forged messages


async def test_the_owner_pressing_forged_ids_of_her_own_jobs_is_refused_too(
    world: World, targets: Targets, unchanged: None
) -> None:
    public, single, queued = targets.public.id.hex, targets.single.id.hex, targets.queued.id.hex
    for custom_id, expected in [
        (f"sj:u:{public}", NO_IMAGE.format("Upscale")),
        (f"sj:z2:{public}:1", NOT_HERE),
        (f"sj:v:{single}:1", NOT_HERE),
        (f"sj:vt:{single}:2", ONE_IMAGE.format(2)),
        (f"sj:v:{queued}:1", NOT_DONE),
    ]:
        got = answer(await press(world, world.alice, custom_id))
        assert got is not None and got.startswith(expected), (custom_id, got)


@pytest.mark.parametrize("forgery", ["a select's id on a button", "a value the menu does not offer"])
async def test_a_forged_settings_control_is_ignored_or_refused_in_words(
    world: World,
    bot_sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
    forgery: str,
) -> None:
    before = await database_state(bot_sessions)
    if forgery == "a select's id on a button":
        result = await press(world, world.bob, "sj:set:quality")
    else:
        view = discord.ui.View(timeout=None)
        view.add_item(
            discord.ui.Select(custom_id="sj:set:quality", options=[discord.SelectOption(label="x")])
        )
        view.stop()
        channel = world.env.bot.get_partial_messageable(world.channel.id, guild_id=world.guild.id)
        menu = await channel.send("a settings panel", view=view)
        result = await world.bob.select(menu, ["x"], custom_id="sj:set:quality")
    assert await database_state(bot_sessions) == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    got = answer(result)  # fails on the generic apology
    assert got is None or got.startswith("That settings panel is out of date: run /settings again.")


def hostile_remixes(t: Targets) -> list[tuple[str, Any, str, str | None, str | None]]:
    """(what it is, who submits, modal custom_id, prompt, answer or None if ignored)."""
    public, private, _, queued, elsewhere = (job.id.hex for job in t.all())
    unknown = uuid.UUID(int=0xBAD).hex
    v2 = f"sj:m:v:{public}:2"  # V2 on Alice's public grid, in remix mode
    return [
        ("empty id", "bob", "", "a fox", None),
        ("over 100 characters", "bob", f"sj:m:v:{public}:2" + "9" * 90, "a fox", None),
        ("lookalike prefix", "bob", f"sj:\u043c:v:{public}:2", "a fox", None),
        ("action that is not remixable", "alice", f"sj:m:u:{public}:1", "a fox", None),
        ("index 9", "alice", f"sj:m:v:{public}:9", "a fox", None),
        ("negative index", "alice", f"sj:m:v:{public}:-1", "a fox", None),
        ("SQL", "bob", "sj:m:v:'; DROP TABLE jobs; --:1", "a fox", None),
        ("another user's private job", "bob", f"sj:m:v:{private}:2", "a fox", GONE),
        ("another user's public job", "bob", v2, "a fox", "Only <@"),
        ("a job from another guild", "bob", f"sj:m:r:{elsewhere}:0", "a fox", "Only <@"),
        ("a job that does not exist", "bob", f"sj:m:v:{unknown}:1", "a fox", GONE),
        ("a job that has not finished", "alice", f"sj:m:v:{queued}:1", "a fox", NOT_DONE),
        ("no image for a V", "alice", f"sj:m:v:{public}:0", "a fox", NO_IMAGE.format("Vary (Strong)")),
        ("an image for a re-roll", "alice", f"sj:m:r:{public}:3", "a fox", NOT_HERE),
        ("a single-image action on a grid", "alice", f"sj:m:vs:{public}:1", "a fox", NOT_HERE),
        ("no prompt field", "alice", v2, None, "The remixed prompt is empty"),
        ("blank prompt", "alice", v2, " \n\t ", "The remixed prompt is empty"),
        ("NUL in the prompt", "alice", v2, "a\x00fox", "the prompt contains the invisible character U+0000"),
        ("over-long prompt", "alice", v2, "fox " * 2000, "the prompt is 7999 characters long"),
        ("bad parameter", "alice", v2, "a fox --ar 9:1", "--ar 9:1 is too wide"),
        ("permutations", "alice", f"sj:m:r:{public}:0", "a {red, blue} fox", "A remix makes one job"),
    ]  # fmt: skip


async def test_forged_remix_submissions_are_refused_or_ignored(
    world: World, targets: Targets, unchanged: None
) -> None:
    members = {"alice": world.alice, "bob": world.bob}
    for case, who, custom_id, prompt, expected in hostile_remixes(targets):
        cursor = world.env.error_cursor
        result = await submit_remix(world, members[who], custom_id, prompt)
        got = answer(result)
        assert not world.env.errors_since(cursor), case
        if expected is None:
            assert got is None, (case, got)
        else:
            assert got is not None and got.startswith(expected), (case, got)


async def test_a_forged_remix_after_a_restart_is_refused_by_the_new_bot(
    world: World, targets: Targets, bot_settings: Settings, queue: GatedQueue, unchanged: None
) -> None:
    old_bot = world.env.bot
    await restart_bot(world.env, bot_settings, queue)
    try:
        result = await submit_remix(world, world.bob, f"sj:m:v:{targets.private.id.hex}:1", "a fox")
        assert answer(result) == GONE
        result = await press(world, world.bob, f"sj:u:{targets.private.id.hex}:1")
        assert answer(result) == GONE
    finally:
        await old_bot.engine.dispose()  # type: ignore[attr-defined]


async def test_the_harness_reaches_the_bot_a_real_press_on_a_forged_message_makes_a_job(
    world: World, targets: Targets, bot_sessions: async_sessionmaker[AsyncSession], queue: GatedQueue
) -> None:
    # The control for the tests above: the same route with a press the owner may make works.
    queue.hold()
    result = await press(world, world.alice, f"sj:r:{targets.public.id.hex}")
    assert (answer(result) or "").startswith("Re-roll: queued")
    async with bot_sessions() as session:
        made = await session.scalar(
            select(func.count()).select_from(Job).where(Job.parent_job_id == targets.public.id)
        )
    assert made == 1


# --- random ids ---------------------------------------------------------------------------------------

CODES = [action.code for action in ACTIONS]


def near_valid_ids(t: Targets) -> st.SearchStrategy[str]:
    """Shapes close to `sj:<code>:<job hex>:<image>`, built from real and broken parts."""
    hexes = [job.id.hex for job in (t.private, t.queued, t.elsewhere, t.public, t.single)]
    prefix = st.sampled_from(["sj", "sj", "SJ", "\u0455j", "", "sj:m", "sj:set"])
    code = st.sampled_from([*CODES, "m", "set", "x", "U", "", "u:u"]) | st.text(max_size=3)
    job = (
        st.sampled_from([*hexes, hexes[0].upper(), hexes[0][:-1], ""])
        | st.uuids().map(lambda u: u.hex)
        | st.text(st.sampled_from("0123456789abcdef\u0430\uff10"), max_size=33)
    )
    index = st.sampled_from(["", ":0", ":1", ":2", ":4", ":5", ":-1", ":\uff11", "::1"]) | st.integers().map(
        lambda i: f":{i}"
    )
    return st.builds(lambda *parts: f"{parts[0]}:{parts[1]}:{parts[2]}{parts[3]}", prefix, code, job, index)


def is_a_favorite_anyone_may_press(custom_id: str, t: Targets) -> bool:
    """❤ on a public finished image: anyone may press it, so it is no hostile press."""
    match = re.fullmatch(CUSTOM_ID_TEMPLATE, custom_id)
    if match is None or match["action"] != "fav" or match["index"] is None:
        return False
    job = next((j for j in t.all() if j.id.hex == match["job"]), None)
    images = 1 if job is t.single else 4
    return job in (t.public, t.single, t.elsewhere) and int(match["index"]) <= images


RANDOM_SOURCES = ["near-valid shapes", "the template itself", "any text"]


@pytest.mark.parametrize("source", RANDOM_SOURCES)
@settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_random_custom_ids_are_refused_or_ignored(
    world: World,
    targets: Targets,
    bot_sessions: async_sessionmaker[AsyncSession],
    source: str,
    data: st.DataObject,
) -> None:
    # The fixtures are shared by the examples: the rows from one example are there for the next.
    strategy = {
        "near-valid shapes": near_valid_ids(targets),
        "the template itself": st.from_regex(CUSTOM_ID_TEMPLATE, fullmatch=True),
        "any text": st.text(max_size=120),
    }[source]
    custom_id = data.draw(strategy, label="custom_id")
    if is_a_favorite_anyone_may_press(custom_id, targets):
        return
    before = await database_state(bot_sessions)
    cursor = world.env.error_cursor

    got = answer(await press(world, world.bob, custom_id))

    assert not world.env.errors_since(cursor)
    if re.fullmatch(CUSTOM_ID_TEMPLATE, custom_id) is None:
        assert got is None
    assert await database_state(bot_sessions) == before
