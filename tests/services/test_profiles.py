"""Members' names and avatars on Postgres and SQLite: written only when changed, cleaned of what a
hostile profile could carry, and read back by the web only for members with a public result."""

from __future__ import annotations

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import User
from sojourn.services import credits
from sojourn.services.profiles import (
    MAX_NAME_CHARS,
    KnownProfiles,
    Profile,
    clean_avatar_url,
    clean_name,
    public_profiles,
    remember_profile,
    remember_profiles,
)
from tests.services.gallery_helpers import db, make_result, new_id

__all__ = ["db"]

Sessions = async_sessionmaker[AsyncSession]
AVATAR = "https://cdn.discordapp.com/avatars/80351110224678912/1a2b3c4d5e6f.png?size=128"


async def stored(db: Sessions, user_id: int) -> User | None:
    async with db() as session:
        return await session.get(User, user_id)


async def member(db: Sessions) -> int:
    """A member the bot has a row for (they have used a command)."""
    user_id = new_id()
    async with db.begin() as session:
        await credits.ensure_user(session, user_id)
    return user_id


class CountingStatements:
    """The statements the engine under `db` runs while it is open."""

    def __init__(self, db: Sessions) -> None:
        bind = db.kw["bind"]
        self.engine = bind.sync_engine
        self.statements: list[str] = []

    def _record(self, *args: object) -> None:
        self.statements.append(str(args[2]))

    def __enter__(self) -> list[str]:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self.statements

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


async def test_a_member_without_a_row_gets_none_and_is_asked_about_again(db: Sessions) -> None:
    user_id = new_id()
    known = KnownProfiles()
    assert await remember_profile(db, user_id, "Alice", AVATAR, known=known) is False
    assert await stored(db, user_id) is None  # an interaction alone leaves no trace
    assert not known.holds(user_id, Profile("Alice", AVATAR))
    async with db.begin() as session:
        await credits.ensure_user(session, user_id)  # their first command
    assert await remember_profile(db, user_id, "Alice", AVATAR, known=known) is True
    user = await stored(db, user_id)
    assert user is not None
    assert (user.display_name, user.avatar_url, user.balance) == ("Alice", AVATAR, 0)
    assert user.profile_updated_at is not None


async def test_an_unchanged_profile_writes_nothing_and_a_change_is_written(db: Sessions) -> None:
    user_id = await member(db)
    assert await remember_profile(db, user_id, "Alice", AVATAR) is True
    first = await stored(db, user_id)
    assert first is not None and first.profile_updated_at is not None

    with CountingStatements(db) as statements:
        assert await remember_profile(db, user_id, "Alice", AVATAR) is False
    assert not any(s.lstrip().upper().startswith(("INSERT", "UPDATE")) for s in statements), statements
    unchanged = await stored(db, user_id)
    assert unchanged is not None and unchanged.profile_updated_at == first.profile_updated_at

    assert await remember_profile(db, user_id, "Alice B.", None) is True
    changed = await stored(db, user_id)
    assert changed is not None and (changed.display_name, changed.avatar_url) == ("Alice B.", None)


async def test_a_known_profile_does_not_reach_the_database(db: Sessions) -> None:
    user_id = await member(db)
    known = KnownProfiles()
    assert await remember_profile(db, user_id, "Bob", AVATAR, known=known) is True
    with CountingStatements(db) as statements:
        assert await remember_profile(db, user_id, "Bob", AVATAR, known=known) is False
    assert statements == []
    assert await remember_profile(db, user_id, "Bobby", AVATAR, known=known) is True  # a change goes through


async def test_a_burst_of_profiles_is_read_and_written_in_two_statements(db: Sessions) -> None:
    changed, unchanged, twice, known_one = [await member(db) for _ in range(4)]
    stranger = new_id()  # no row: never a command
    await remember_profile(db, unchanged, "Same", AVATAR)
    known = KnownProfiles()
    assert await remember_profile(db, known_one, "Known", AVATAR, known=known) is True

    seen = [
        (changed, "New", AVATAR),
        (unchanged, "Same", AVATAR),
        (stranger, "Nobody", AVATAR),
        (twice, "First", None),
        (known_one, "Known", AVATAR),
        (twice, "Second", None),
    ]
    with CountingStatements(db) as statements:
        written = await remember_profiles(db, seen, known=known)

    assert written == [True, False, False, False, False, True]  # the later of two sightings wins
    assert [s.lstrip().split()[0].upper() for s in statements] == ["SELECT", "UPDATE"], statements
    profiles = {user_id: await stored(db, user_id) for user_id in (changed, unchanged, twice)}
    assert {user_id: user.display_name for user_id, user in profiles.items() if user} == {
        changed: "New",
        unchanged: "Same",
        twice: "Second",
    }
    assert await stored(db, stranger) is None
    assert await remember_profiles(db, seen[:2], known=known) == [False, False]  # now known


def test_the_cache_forgets_the_least_recently_seen() -> None:
    known = KnownProfiles(size=2)
    profile = Profile("x", None)
    for user_id in (1, 2):
        known.add(user_id, profile)
    assert known.holds(1, profile)  # 1 seen again: 2 is now the oldest
    known.add(3, profile)
    assert known.holds(1, profile) and known.holds(3, profile) and not known.holds(2, profile)
    assert not known.holds(1, Profile("y", None))


async def test_a_hostile_profile_is_cleaned_before_it_is_stored(db: Sessions) -> None:
    user_id = await member(db)
    await remember_profile(db, user_id, "Alice", AVATAR)
    assert await remember_profile(db, user_id, "\u202eevil\x00 " + "n" * 500, "javascript:alert(1)")
    user = await stored(db, user_id)
    assert user is not None
    assert user.display_name == ("evil " + "n" * 500)[:MAX_NAME_CHARS]
    assert user.avatar_url is None  # the old avatar is not kept either: it is no longer theirs
    assert await remember_profile(db, user_id, " \n ", "http://cdn.discordapp.com/a.png") is True
    user = await stored(db, user_id)
    assert user is not None and (user.display_name, user.avatar_url) == (None, None)


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.discordapp.com/avatars/1/abc.png?size=128",
        "https://cdn.discordapp.com/embed/avatars/3.png",
        "https://media.discordapp.net/avatars/1/a_abc.gif?size=64",
    ],
)
def test_discord_cdn_avatars_are_kept(url: str) -> None:
    assert clean_avatar_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "http://cdn.discordapp.com/avatars/1/abc.png",  # not https
        "https://cdn.discordapp.com.evil.example/a.png",
        "https://evil.example/cdn.discordapp.com/a.png",
        "https://user@cdn.discordapp.com/a.png",
        "https://cdn.discordapp.com:8443/a.png",
        'https://cdn.discordapp.com/a.png" onerror="alert(1)',
        "https://cdn.discordapp.com/a.png#x",
        "https://cdn.discordapp.com/a b.png",
        "https://cdn.discordapp.com/" + "a" * 300 + ".png",
        "//cdn.discordapp.com/a.png",
        "data:image/png;base64,AAAA",
        "javascript:alert(1)//https://cdn.discordapp.com/",
    ],
)
def test_anything_else_is_no_avatar(url: str | None) -> None:
    assert clean_avatar_url(url) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Alice", "Alice"),
        ("  Alice \t Smith\n", "Alice Smith"),
        ("a\u202eb\u2066c", "abc"),  # bidi overrides and isolates
        ("\x00\x07", None),
        ("", None),
        (None, None),
        ("🐈‍⬛ cat", "🐈‍⬛ cat"),  # the zero-width joiner of an emoji stays
        ("<script>x</script>", "<script>x</script>"),  # escaped where shown, not here
    ],
)
def test_names_are_cleaned(name: str | None, expected: str | None) -> None:
    assert clean_name(name) == expected


async def test_the_web_reads_profiles_only_of_members_with_a_public_result(db: Sessions) -> None:
    public, private_only, nothing = new_id(), new_id(), new_id()
    await make_result(db, guild_id=new_id(), user_id=public)
    await make_result(db, guild_id=new_id(), user_id=private_only, private=True)
    for user_id in (public, private_only, nothing):
        await remember_profile(db, user_id, f"member {user_id}", AVATAR)
    async with db() as session:
        found = await public_profiles(session, [public, private_only, nothing, new_id()])
        assert await public_profiles(session, []) == {}
    assert found == {public: Profile(f"member {public}", AVATAR)}
