"""Members' Discord names and avatars, as the bot last saw them, for the web gallery to show.

The bot records a profile on every interaction (`remember_profiles`, a burst's together) of a
member it already has a row for; a `KnownProfiles` cache keeps an unchanged profile from reaching
the database at all.
Both values come from Discord users and are treated as hostile: a name is cleaned and cut, an
avatar is kept only as a Discord CDN URL. The web reads them with `public_profiles`, only for
members with a result in the galleries.
"""

from __future__ import annotations

import re
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Job, User
from sojourn.clock import utcnow
from sojourn.services.gallery import visible_in_gallery

MAX_NAME_CHARS = 100
MAX_AVATAR_CHARS = 300
# Discord's own image hosts, https only, and nothing in the path or query that needs escaping.
AVATAR_URL = re.compile(
    r"https://(?:cdn\.discordapp\.com|media\.discordapp\.net)/[A-Za-z0-9._~/%-]+(?:\?[A-Za-z0-9._~=&%-]*)?"
)
# Bidirectional overrides and isolates: a name could reorder the text around it.
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


@dataclass(frozen=True)
class Profile:
    display_name: str | None
    avatar_url: str | None


def clean_name(name: str | None) -> str | None:
    """The name without control characters or bidi overrides, spaces collapsed, cut to the column."""
    if not name:
        return None
    kept = "".join(" " if unicodedata.category(char) == "Cc" else char for char in name)
    clean = " ".join(kept.translate(_BIDI_CONTROLS).split())[:MAX_NAME_CHARS].strip()
    return clean or None


def clean_avatar_url(url: str | None) -> str | None:
    """The URL if it is a Discord CDN image that fits the column, else None."""
    if not url or len(url) > MAX_AVATAR_CHARS or not AVATAR_URL.fullmatch(url):
        return None
    return url


def clean_profile(display_name: str | None, avatar_url: str | None) -> Profile:
    return Profile(clean_name(display_name), clean_avatar_url(avatar_url))


class KnownProfiles:
    """The profiles this process knows the database holds (the most recently seen `size` members)."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._known: OrderedDict[int, Profile] = OrderedDict()

    def holds(self, user_id: int, profile: Profile) -> bool:
        if self._known.get(user_id) != profile:
            return False
        self._known.move_to_end(user_id)
        return True

    def add(self, user_id: int, profile: Profile) -> None:
        self._known[user_id] = profile
        self._known.move_to_end(user_id)
        while len(self._known) > self._size:
            self._known.popitem(last=False)


async def remember_profile(
    sessions: async_sessionmaker[AsyncSession],
    user_id: int,
    display_name: str | None,
    avatar_url: str | None,
    *,
    known: KnownProfiles | None = None,
) -> bool:
    """Store a member's name and avatar (cleaned) if they changed; True if they did."""
    (written,) = await remember_profiles(sessions, [(user_id, display_name, avatar_url)], known=known)
    return written


async def remember_profiles(
    sessions: async_sessionmaker[AsyncSession],
    seen: Sequence[tuple[int, str | None, str | None]],
    *,
    known: KnownProfiles | None = None,
) -> list[bool]:
    """Store members' names and avatars (cleaned) where they changed, all in one transaction of
    two statements; for each `(user_id, name, avatar)`, whether it differed from the stored one.

    Only a member the bot already has a row for (one who has used a command) gets a profile: an
    interaction alone leaves no trace. With `known`, a profile this process has stored or found
    in the database is not read again; a member without a row is asked about again next time.
    A member seen twice gets the later profile.
    """
    profiles = [(user_id, clean_profile(name, avatar)) for user_id, name, avatar in seen]
    asked = {
        user_id: profile
        for user_id, profile in profiles
        if known is None or not known.holds(user_id, profile)
    }
    if not asked:
        return [False] * len(profiles)
    async with sessions.begin() as session:
        rows = await session.execute(
            select(User.id, User.display_name, User.avatar_url).where(User.id.in_(asked))
        )
        stored = {user_id: Profile(name, avatar) for user_id, name, avatar in rows}
        changed = {
            user_id: profile
            for user_id, profile in asked.items()
            if user_id in stored and stored[user_id] != profile
        }
        if changed:
            await _update(session, changed)
    if known is not None:
        for user_id in stored:
            known.add(user_id, asked[user_id])
    written = set(changed)
    return [user_id in written and asked[user_id] == profile for user_id, profile in profiles]


async def _update(session: AsyncSession, changed: dict[int, Profile]) -> None:
    """Write the profiles, each unless it is already there (a concurrent write may have stored it)."""
    users = User.table()
    await session.execute(
        update(users)
        .where(
            users.c.id == bindparam("user"),
            or_(
                users.c.display_name.is_distinct_from(bindparam("name")),
                users.c.avatar_url.is_distinct_from(bindparam("avatar")),
            ),
        )
        .values(display_name=bindparam("name"), avatar_url=bindparam("avatar"), profile_updated_at=utcnow()),
        [
            {"user": user_id, "name": profile.display_name, "avatar": profile.avatar_url}
            for user_id, profile in changed.items()
        ],
    )


async def public_profiles(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, Profile]:
    """The profiles of those among `user_ids` with a result in the galleries; nobody else's."""
    ids = set(user_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(User.id, User.display_name, User.avatar_url).where(
            User.id.in_(ids),
            or_(User.display_name.is_not(None), User.avatar_url.is_not(None)),
            exists().where(Job.user_id == User.id, visible_in_gallery()),
        )
    )
    return {user_id: Profile(name, avatar) for user_id, name, avatar in rows}
