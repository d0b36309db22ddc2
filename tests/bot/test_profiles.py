"""The bot records each member's global Discord name and avatar for the web gallery, in the
background: never a server nickname or server avatar, and never at the cost of the interaction."""

from __future__ import annotations

import logging

import pytest
import simcord
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import bot.profiles
from db.models import User
from tests.bot.conftest import eventually

AVATAR_HASH = "a" * 32


async def profile_of(
    sessions: async_sessionmaker[AsyncSession], user_id: int
) -> tuple[str | None, ...] | None:
    async with sessions() as session:
        user = await session.get(User, user_id)
        return None if user is None else (user.display_name, user.avatar_url)


async def test_a_command_records_the_global_name_and_avatar(
    env: simcord.Env, bot_sessions: async_sessionmaker[AsyncSession]
) -> None:
    guild = env.create_guild("Sojourners")
    channel = guild.create_text_channel("art")
    user = env.create_user("alice", global_name="Alice <Liddell>", avatar=AVATAR_HASH)
    alice = guild.add_member(user, nick="Ally (here only)", avatar="b" * 32)
    plain = guild.add_member(env.create_user("bob"))  # no display name, no avatar of his own

    for member in (alice, plain):
        answer = await member.slash(channel, "info")
        assert answer.response is not None  # answered as ever
    alice_avatar = f"https://cdn.discordapp.com/avatars/{alice.id}/{AVATAR_HASH}.png?size=128"

    async def recorded() -> bool:
        found = [await profile_of(bot_sessions, member.id) for member in (alice, plain)]
        return all(profile is not None and profile[0] is not None for profile in found)

    await eventually(recorded, what="both profiles recorded", timeout=10)
    assert await profile_of(bot_sessions, alice.id) == ("Alice <Liddell>", alice_avatar)
    bob = await profile_of(bot_sessions, plain.id)
    assert bob is not None and bob[0] == "bob" and bob[1] is not None
    assert bob[1].startswith("https://cdn.discordapp.com/embed/avatars/")  # Discord's default avatar


async def test_a_failure_to_record_is_logged_and_the_interaction_answered(
    env: simcord.Env,
    bot_sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def database_down(*args: object, **kwargs: object) -> bool:
        raise ConnectionRefusedError("the database is down")

    monkeypatch.setattr(bot.profiles, "remember_profiles", database_down)
    caplog.set_level(logging.WARNING)
    guild = env.create_guild("Sojourners")
    channel = guild.create_text_channel("art")
    alice = guild.add_member(env.create_user("alice", global_name="Alice"))

    answer = await alice.slash(channel, "info")
    assert answer.response is not None and answer.response.embeds
    await env.settle()
    warnings = [r for r in caplog.records if r.name == "bot.profiles"]
    assert warnings and all(r.levelno == logging.WARNING for r in warnings)
    assert "could not record the profile" in warnings[0].getMessage()
    assert await profile_of(bot_sessions, alice.id) == (None, None)  # the row /info made, no profile
