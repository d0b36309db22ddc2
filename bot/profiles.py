"""Each interacting member's Discord name and avatar, recorded in the background for the web gallery.

The global name and avatar, never a server's nickname or server avatar: the web is not one server.
Recording never delays or breaks an interaction: it runs in a task of its own, and a failure is
logged and dropped (the next interaction tries again). The profiles of a burst are written
together (a few transactions, not one each), so they keep few of the database connections the
burst's submissions need.
"""

from __future__ import annotations

import asyncio
import logging

import discord
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sojourn.batching import Coalescer
from sojourn.services.profiles import KnownProfiles, clean_profile, remember_profiles

log = logging.getLogger(__name__)

AVATAR_SIZE = 128  # shown at 24-32 px; 128 stays sharp on dense screens


class ProfileRecorder:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._known = KnownProfiles()
        self._pending: dict[int, asyncio.Task[None]] = {}  # also keeps each task referenced
        self._batches: Coalescer[tuple[int, str, str], bool] = Coalescer(self._remember_all)

    def see(self, user: discord.User | discord.Member) -> None:
        """Record `user`'s profile unless this process knows it is stored (or is storing it)."""
        try:
            name = user.global_name or user.name
            avatar = (user.avatar or user.default_avatar).with_size(AVATAR_SIZE).url
            if user.id in self._pending or self._known.holds(user.id, clean_profile(name, avatar)):
                return
            task = asyncio.get_running_loop().create_task(self._remember(user.id, name, avatar))
        except Exception as error:  # a profile is never worth an interaction
            log.warning("could not read the profile of user %s: %r", getattr(user, "id", "?"), error)
            return
        self._pending[user.id] = task
        task.add_done_callback(lambda _: self._pending.pop(user.id, None))

    async def _remember(self, user_id: int, name: str, avatar: str) -> None:
        try:
            await self._batches.submit([(user_id, name, avatar)])
        except Exception as error:  # the database may be down: the next one retries
            log.warning("could not record the profile of user %s: %r", user_id, error)

    async def _remember_all(self, seen: list[tuple[int, str, str]]) -> list[bool]:
        return await remember_profiles(self._sessions, seen, known=self._known)

    async def close(self) -> None:
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
