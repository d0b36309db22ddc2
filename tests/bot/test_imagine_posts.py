"""/imagine's messages under Discord's limits: the bot's own posts share a limit per channel (a few
a second) and one for the whole bot (50 a second); an interaction's follow-ups have their own.

simcord applies no limits, so the test holds a post the way a limit would: it waits (a wait
simcord knows to be outside the bot) until the test lets it through.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import simcord
from simcord.http.client import FakeHTTPClient, FakeWebhookAdapter

from tests.bot.conftest import GatedQueue, World, eventually, jobs_of
from tests.bot.helpers import reload, requests

WAITING = "Waiting to start"


class HeldPosts:
    """Holds the first `limit` waiting messages, by either route, until `release()`."""

    def __init__(self, world: World, monkeypatch: pytest.MonkeyPatch, *, limit: int) -> None:
        self.env, self.limit, self.held = world.env, limit, 0
        self._released = asyncio.Event()
        bot_post, follow_up = FakeHTTPClient.request, FakeWebhookAdapter.request

        async def bot_post_held(client: Any, route: Any, **kwargs: Any) -> Any:
            await self._maybe_hold(kwargs.get("json"))
            return await bot_post(client, route, **kwargs)

        async def follow_up_held(adapter: Any, route: Any, session: Any, **kwargs: Any) -> Any:
            await self._maybe_hold(kwargs.get("payload"))
            return await follow_up(adapter, route, session, **kwargs)

        monkeypatch.setattr(FakeHTTPClient, "request", bot_post_held)
        monkeypatch.setattr(FakeWebhookAdapter, "request", follow_up_held)

    async def _maybe_hold(self, body: object) -> None:
        content = body.get("content") if isinstance(body, dict) else None
        if isinstance(content, str) and WAITING in content and self.held < self.limit:
            self.held += 1
            await self.env.external_wait(self._released.wait(), reason="Discord's rate limit (test)")

    def release(self) -> None:
        self._released.set()


async def test_a_waiting_message_held_by_discord_keeps_no_one_elses_submission_waiting(
    world: World, bot_sessions, queue: GatedQueue, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    queue.hold()  # the jobs stay queued, their messages "Waiting to start…", whatever a worker does
    world.env.bot.submission_slots = asyncio.Semaphore(1)  # type: ignore[attr-defined]
    held = HeldPosts(world, monkeypatch, limit=1)

    await world.alice.slash(world.channel, "imagine", prompt="a slow post --seed 1")
    assert held.held == 1  # alice's waiting message is on its way, not shown yet
    bob = await world.bob.slash(world.channel, "imagine", prompt="a quick post --seed 2")

    (job,) = await jobs_of(bot_sessions, world.bob.id)
    assert bob.response is not None and bob.response.ephemeral and str(job.id) in (bob.response.content or "")
    held.release()
    await world.env.settle()
    await eventually(lambda: len(shown_to(world, world.bob)) == 2, what="both waiting messages")


async def test_the_waiting_message_is_a_public_follow_up_after_the_private_confirmation(
    world: World, bot_sessions, queue: GatedQueue
) -> None:  # type: ignore[no-untyped-def]
    queue.hold()
    result = await world.alice.slash(world.channel, "imagine", prompt="a lighthouse --repeat 2")

    jobs = await jobs_of(bot_sessions, world.alice.id)
    confirmation, waiting = result.response, result.followups  # the confirmation ended "thinking…"
    assert confirmation is not None and confirmation.ephemeral
    assert "Queued 2 jobs" in (confirmation.content or "")
    assert [message.ephemeral for message in waiting] == [False, False]
    assert all(WAITING in (message.content or "") for message in waiting)
    assert {job.message_id for job in jobs} == {message.id for message in waiting}
    assert shown_to(world, world.bob) == [message.id for message in waiting]  # public
    # Through the interaction's webhook, none with the bot's own token (limited per channel).
    assert not requests(world.env, "POST", f"/channels/{world.channel.id}/messages")


async def test_a_waiting_message_the_bot_may_not_edit_gives_way_to_a_new_one(
    world: World, bot_sessions, queue: GatedQueue
) -> None:  # type: ignore[no-untyped-def]
    """Should Discord refuse the bot's token an edit of a follow-up (50005, not the bot's message),
    the outcome is posted anew, not given up, and the stale message removed."""
    queue.hold()
    await world.alice.slash(world.channel, "imagine", prompt="a slow cathedral")
    (job,) = await jobs_of(bot_sessions, world.alice.id)
    assert job.message_id in [m.id for m in world.channel.history()]
    world.env.inject_error(
        "PATCH", f"/channels/{world.channel.id}/messages/*", status=403, code=50005, times=None
    )

    await world.alice.slash(world.channel, "cancel", job_id=str(job.id))

    def cancelled_anew() -> bool:
        return any(
            m.id != job.message_id and m.content.endswith("— cancelled; the credits were refunded")
            for m in world.channel.history()
        )

    await eventually(cancelled_anew, what="the cancellation posted as a new message")
    done = await reload(bot_sessions, job.id)
    assert done.delivered_at is not None and done.delivery_error is None
    assert job.message_id not in [m.id for m in world.channel.history()]  # the stale one removed


def shown_to(world: World, member: simcord.MemberActor) -> list[int]:
    """The waiting messages that member sees in the channel."""
    return [m.id for m in world.channel.history(viewer=member) if WAITING in (m.content or "")]
