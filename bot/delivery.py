"""Job messages on Discord: the waiting message, throttled progress edits, the result, the sweep.

Every message is the bot's own channel message, edited or posted with the bot's token, never
with an interaction token (those die after 15 minutes): a job that ends an hour later, or after
a restart, is delivered the same way. The one exception is a job's first message ("Waiting to
start…"), posted at once as a follow-up of the /imagine or button press that asked for it:
Discord limits those per interaction, where the bot's posts share a limit per channel (a few a
second) and one for the whole bot (50 a second), so a burst of /imagine would otherwise wait
minutes for its messages. The bot's token edits and deletes it later like any other. The
database says what is undelivered (`delivered_at` is null), so the events from the worker only
make delivery fast; the sweep makes it certain.

Like Midjourney, the result is posted as a new message (so the requester is notified and it
lands at the bottom of the channel) and the progress message is deleted; a failed or cancelled
job is shown by editing the progress message.

A result the image safety check held is shown the same way as a notice with a small, blurred,
spoilered preview and no buttons; once a moderator approves it, that message becomes the result
(`redeliver`, and the sweep if the bot missed the approval). One the check removed is a notice
with no image. A result deleted before it was posted is not posted at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import discord
from discord.ext import tasks
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels import ChannelResolver
from bot.exts.buttons import result_view
from bot.instrumentation import Instrumentation
from bot.messages import JobCard
from bot.throttle import LatestOnlyThrottle
from bot.uploads import HELD_FILENAME, blurred_preview, grid_upload, upload_stem
from db.models import FINAL_STATUSES, HoldStatus, Job, JobStatus
from sojourn.batching import Coalescer
from sojourn.clock import utcnow
from sojourn.events import JobEvent
from sojourn.metrics import observe_delivery
from sojourn.services import delivery as delivery_service
from sojourn.services import queue_info
from sojourn.services.delivery import Outcome
from sojourn.services.queue_info import QueueEstimate
from sojourn.services.results import display_key_of
from sojourn.settings import Settings
from sojourn.storage import ImageStorage

log = logging.getLogger(__name__)

FINAL_EVENTS = frozenset({"succeeded", "failed", "cancelled"})
NOT_OURS_MEMORY = 4096  # job ids known to have no Discord message (e.g. `sojourn render`'s)
MESSAGE_GONE = 10008  # Discord's code for a deleted message
NOT_OURS_TO_EDIT = 50005  # "Cannot edit a message authored by another user": post anew
# Seconds a waiting message's ETA reuses the typical job duration read for an earlier one.
TYPICAL_DURATION_REFRESH = 10.0

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class _Progress:
    percent: int
    preview: bytes | None


@dataclasses.dataclass(eq=False)
class _JobMessage:
    """What the bot process knows about one job's message; the database stays the truth."""

    job_id: uuid.UUID
    channel_id: int
    guild_id: int | None
    card: JobCard
    message_id: int | None
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    throttle: LatestOnlyThrottle[_Progress] = dataclasses.field(init=False)  # set by `_track`
    preview_shown: bytes | None = None
    finished: bool = False


class Undeliverable(Exception):
    """Discord refused the message for good (channel gone, access lost)."""


@dataclasses.dataclass(frozen=True)
class _Shown:
    """The message that now shows a job's outcome (None: none does, e.g. a deleted result)."""

    message_id: int | None
    held_notice: bool = False
    of_result: bool = False  # the result or its preview: taken down if it was removed meanwhile


class Delivery:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        storage: ImageStorage,
        channels: ChannelResolver,
        instrumentation: Instrumentation,
        on_result_shown: Callable[[uuid.UUID], None] = lambda job_id: None,
    ) -> None:
        self.sessions = sessions
        self.on_result_shown = on_result_shown  # a result (not a held notice) is now in its channel
        self.settings = settings.bot
        self.gallery_url = settings.gallery_url
        self.storage = storage
        self.channels = channels
        self.instrumentation = instrumentation
        self._messages: dict[uuid.UUID, _JobMessage] = {}
        self._posting: set[uuid.UUID] = set()  # submitted by /imagine, waiting message not posted yet
        self._not_ours: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._typical: tuple[float, float] | None = None  # (seconds, when it was read), see below
        # A burst's waiting messages are recorded in a few statements, not one transaction each.
        self._record_messages: Coalescer[tuple[uuid.UUID, int], None] = Coalescer(self._record)
        # And what their messages say (each job's state and place in the queue) read together.
        self._waiting_views: Coalescer[uuid.UUID, tuple[Job | None, QueueEstimate | None]] = Coalescer(
            self._load_waiting_views
        )
        # At start-up (results that ended while the bot was down), then every few seconds.
        self._sweeper = tasks.loop(
            seconds=self.settings.delivery_sweep_interval, name="sojourn-delivery-sweep"
        )(self._sweep_quietly)
        self._sweeper.before_loop(channels.wait_until_ready)

    # --- plumbing ---------------------------------------------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", exc_info=task.exception())

    def start(self) -> None:
        """Start the sweep (once the guilds are known)."""
        self._sweeper.start()

    async def close(self) -> None:
        await cancel_loop(self._sweeper)
        for message in self._messages.values():
            message.throttle.close()
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _channel(self, message: _JobMessage) -> discord.PartialMessageable:
        return self.channels.channel(message.channel_id, message.guild_id)

    def _track(self, job: Job) -> _JobMessage:
        tracked = self._messages.get(job.id)
        if tracked is None:
            assert job.channel_id is not None
            tracked = _JobMessage(
                job_id=job.id,
                channel_id=job.channel_id,
                guild_id=job.guild_id,
                card=JobCard.of(job),
                message_id=job.message_id,
            )
            tracked.throttle = LatestOnlyThrottle(
                self.settings.progress_edit_interval,
                lambda progress: self._edit_progress(tracked, progress),
                spawn=self.spawn,
            )
            self._messages[job.id] = tracked
        return tracked

    async def _tracked(self, job_id: uuid.UUID, *, again: bool = False) -> _JobMessage | None:
        """The job's message, loaded on first sight; None for jobs that were not asked for on Discord
        (or whose outcome is shown already, unless `again`)."""
        if job_id in self._messages:
            return self._messages[job_id]
        if job_id in self._not_ours and not again:
            return None
        async with self.sessions() as session:
            outcome = await delivery_service.outcome_of(session, job_id)
        job = outcome.job if outcome is not None else None
        if (
            outcome is None
            or job is None
            or job.channel_id is None
            or (job.delivered_at is not None and not outcome.redelivery and not again)
            or not self.channels.serves(job.guild_id)
        ):
            self._not_ours[job_id] = None
            while len(self._not_ours) > NOT_OURS_MEMORY:
                self._not_ours.popitem(last=False)
            return None
        return self._track(job)

    # --- the waiting message, from /imagine --------------------------------------------------------

    async def announce(
        self,
        jobs: Sequence[Job],
        channel: discord.abc.Messageable,
        *,
        interaction: discord.Interaction[Any] | None = None,
    ) -> None:
        """Post each new job's message in the channel ("Waiting to start…"); never raises.

        Given the interaction that asked for the jobs (answered already, see
        `confirm_and_announce`), the messages are its public follow-ups.
        The jobs are queued and paid for: a message that cannot be posted now is posted with the
        result (the sweep sees to it), and a result that ends first does not overtake it.
        """
        self._posting.update(job.id for job in jobs)
        for job in jobs:
            try:
                await self._post_waiting(job, channel, interaction)
            except Exception:
                log.exception("could not show job %s yet; its result will still be delivered", job.id)

    async def confirm_and_announce(
        self, jobs: Sequence[Job], interaction: discord.Interaction[Any], confirmation: str
    ) -> None:
        """Answer the deferred interaction that asked for the jobs privately, then post their
        messages as its public follow-ups; never raises (the jobs are queued and paid for).

        The first follow-up of a deferral replaces its private "thinking…" and keeps its privacy:
        the confirmation goes first so that the job messages after it are public.
        """
        confirmed = True
        try:
            await interaction.followup.send(confirmation, ephemeral=True)
        except discord.HTTPException:  # the job messages say it anyway
            log.warning("could not confirm jobs to user %s", interaction.user.id, exc_info=True)
            confirmed = False  # then a follow-up could still replace the private "thinking…"
        channel = interaction.channel
        if isinstance(channel, discord.abc.Messageable):  # else the result comes with the sweep
            await self.announce(jobs, channel, interaction=interaction if confirmed else None)

    async def _post_waiting(
        self, job: Job, channel: discord.abc.Messageable, interaction: discord.Interaction[Any] | None
    ) -> None:
        """Post the job's message ("Waiting to start… (position 3 in queue, ETA ~40 s)"), record it."""
        tracked = self._track(job)
        try:
            async with tracked.lock:
                ((current, estimate),) = await self._waiting_views.submit([job.id])
                if current is None or current.delivered_at is not None:
                    return
                if current.status in FINAL_STATUSES:  # it ended before it was even shown
                    async with self.sessions() as session:
                        outcome = await delivery_service.outcome_of(session, job.id)
                    if outcome is not None:
                        self._posting.discard(job.id)
                        await self._deliver_locked(tracked, outcome, new_message_channel=channel)
                    return
                content = (
                    tracked.card.waiting(estimate)
                    if current.status == JobStatus.QUEUED
                    else tracked.card.progress(current.progress)
                )
                try:
                    message = await _send_waiting(content, channel, interaction)
                except (discord.Forbidden, discord.NotFound) as error:
                    await self._give_up(tracked, _refusal_reason(error, tracked))
                    return
                except discord.HTTPException as error:
                    # The job is queued and paid for: its result is posted as a new message.
                    log.warning("could not post the waiting message of job %s: %s", job.id, error)
                    return
                tracked.message_id = message.id
                self.instrumentation.mark("waiting_posted", job.id)
                await self._record_messages.submit([(job.id, message.id)])
                tracked.throttle.sent_now()
        finally:
            self._posting.discard(job.id)
        tracked.throttle.kick()  # progress that arrived before the message existed

    async def _load_waiting_views(
        self, job_ids: list[uuid.UUID]
    ) -> list[tuple[Job | None, QueueEstimate | None]]:
        """`delivery_service.waiting_views`: a burst's in one transaction."""
        async with self.sessions() as session:
            return await delivery_service.waiting_views(
                session,
                job_ids,
                default_seconds=self.settings.default_eta_seconds,
                typical=await self._typical_duration(session),
            )

    async def _typical_duration(self, session: AsyncSession) -> float:
        """The ETA's typical job duration, read at most every `TYPICAL_DURATION_REFRESH` seconds:
        a burst of waiting messages shares one read instead of a query each."""
        now = time.monotonic()
        if self._typical is None or now - self._typical[1] > TYPICAL_DURATION_REFRESH:
            seconds = await queue_info.typical_duration(session, self.settings.default_eta_seconds)
            self._typical = (seconds, now)
        return self._typical[0]

    async def _record(self, shown: list[tuple[uuid.UUID, int]]) -> list[None]:
        async with self.sessions.begin() as session:
            await delivery_service.record_messages(session, shown)
        return [None] * len(shown)

    @staticmethod
    def _mention(tracked: _JobMessage) -> discord.AllowedMentions:
        return discord.AllowedMentions(
            everyone=False, roles=False, users=[discord.Object(tracked.card.user_id)]
        )

    # --- events from the worker ---------------------------------------------------------------------

    async def on_event(self, event: JobEvent) -> None:
        self.instrumentation.mark("event_received", (event.job_id, event.kind))
        if event.published_at is not None:
            self.instrumentation.mark("event_published", (event.job_id, event.kind), wall=event.published_at)
        try:
            job_id = uuid.UUID(event.job_id)
        except ValueError:
            log.warning("ignoring an event for a malformed job id %r", event.job_id[:64])
            return
        if event.kind in FINAL_EVENTS:
            self.spawn(self.deliver(job_id))
            return
        tracked = await self._tracked(job_id)
        if tracked is None or tracked.finished:
            return
        preview = event.preview_png()
        if preview is None and tracked.throttle.latest is not None:
            preview = tracked.throttle.latest.preview  # keep showing the last preview
        tracked.throttle.push(_Progress(0 if event.kind == "started" else event.percent, preview))

    async def _edit_progress(self, tracked: _JobMessage, progress: _Progress) -> bool:
        async with tracked.lock:
            if tracked.finished:
                return True
            if tracked.message_id is None:
                return False
            changes: dict[str, Any] = {"content": tracked.card.progress(progress.percent)}
            if progress.preview is not None and progress.preview is not tracked.preview_shown:
                changes["attachments"] = [discord.File(io.BytesIO(progress.preview), "progress.png")]
            try:
                await self._channel(tracked).get_partial_message(tracked.message_id).edit(**changes)
            except discord.HTTPException as error:  # progress is best effort; the result is not
                log.info("could not edit progress of job %s: %s", tracked.job_id, error)
            tracked.preview_shown = progress.preview
            return True

    # --- the outcome -----------------------------------------------------------------------------------

    async def deliver(self, job_id: uuid.UUID, *, again: bool = False) -> None:
        """Show an ended job's outcome in its channel, once; safe to call any number of times.

        `again`: an approved result is shown even if the marks say its message already shows it.
        """
        tracked = await self._tracked(job_id, again=again)
        if tracked is None:
            return
        async with tracked.lock:
            async with self.sessions() as session:
                outcome = await delivery_service.outcome_of(session, job_id)
            job = outcome.job if outcome is not None else None
            if outcome is None or job is None:
                return
            asked_again = again and outcome.hold == HoldStatus.APPROVED and job.delivered_at is not None
            if not outcome.awaiting_delivery and not asked_again:
                if job.delivered_at is not None:
                    self._forget(tracked)
                return
            if job.message_id is None and job_id in self._posting:
                return  # /imagine is posting its waiting message and shows the outcome after
            await self._deliver_locked(tracked, outcome, again=asked_again)

    async def redeliver(self, job_id: uuid.UUID) -> None:
        """After a moderator approved a held result: its message becomes the result, buttons and all,
        as if it had never been held (a new message if the old one is gone). Never raises for Discord's
        refusals: those are marked for /info as any undeliverable result is."""
        self._not_ours.pop(job_id, None)
        await self.deliver(job_id, again=True)

    async def remove_message(self, channel_id: int, message_id: int) -> bool:
        """Delete the bot's message of a removed result; False if it could not be (gone already, not
        allowed, Discord failing): logged, never raised, since the removal itself is done."""
        try:
            await self.channels.channel(channel_id, None).get_partial_message(message_id).delete()
        except discord.NotFound:
            log.info("message %s in channel %s was already gone", message_id, channel_id)
            return False
        except discord.HTTPException as error:
            log.warning("could not delete message %s in channel %s: %s", message_id, channel_id, error)
            return False
        return True

    async def _deliver_locked(
        self,
        tracked: _JobMessage,
        outcome: Outcome,
        *,
        new_message_channel: discord.abc.Messageable | None = None,
        again: bool = False,
    ) -> None:
        job = outcome.job
        tracked.finished = True
        tracked.throttle.close()
        tracked.message_id = job.message_id
        try:
            if job.status == JobStatus.SUCCEEDED:
                shown = await self._show_success(tracked, outcome, new_message_channel)
            else:
                text = (
                    tracked.card.cancelled()
                    if job.status == JobStatus.CANCELLED
                    else tracked.card.failed(job.error)
                )
                shown = _Shown(await self._show_in_place(tracked, text, new_message_channel))
        except Undeliverable as refusal:
            await self._give_up(tracked, str(refusal))
            return
        except discord.HTTPException as error:
            since = outcome.decided_at if job.delivered_at is not None else job.finished_at
            age = (utcnow() - (since or utcnow())).total_seconds()
            if age > self.settings.give_up_delivery_after:
                await self._give_up(tracked, f"Discord kept refusing the message ({error.status})")
            else:
                log.warning("could not deliver job %s yet (%s); the sweep retries", job.id, error)
                tracked.finished = False  # a later sweep or event tries again
            return
        async with self.sessions.begin() as session:
            await delivery_service.mark_delivered(
                session, job.id, shown.message_id, held_notice=shown.held_notice, again=again
            )
            removed = shown.of_result and await delivery_service.is_removed(session, job.id)
        if job.delivered_at is None and job.finished_at is not None and shown.message_id is not None:
            observe_delivery(job.finished_at)  # its first showing (an approval's is a moderator's lag)
        self._forget(tracked)
        if removed and shown.message_id is not None:  # removed while it was being posted
            await self.remove_message(tracked.channel_id, shown.message_id)
        elif shown.of_result and not shown.held_notice and shown.message_id is not None:
            self.on_result_shown(job.id)

    async def _show_success(
        self, tracked: _JobMessage, outcome: Outcome, channel: discord.abc.Messageable | None
    ) -> _Shown:
        job = outcome.job
        if outcome.hold == HoldStatus.REMOVED:
            text = tracked.card.removed_by_check(job.cost)
            return _Shown(await self._show_in_place(tracked, text, channel))
        if job.removed_at is not None:  # deleted before it was shown: nothing to show
            if tracked.message_id is not None:
                await self.remove_message(tracked.channel_id, tracked.message_id)
            return _Shown(None)
        if outcome.hold == HoldStatus.HELD:
            preview = await self._from_storage(job, blurred_preview)
            message_id = await self._show_in_place(
                tracked,
                tracked.card.held(),
                channel,
                attachment=lambda: discord.File(io.BytesIO(preview), HELD_FILENAME, spoiler=True),
            )
            return _Shown(message_id, held_notice=True, of_result=True)
        if job.delivered_at is not None:  # approved: the held notice becomes the result
            grid, filename = await self._grid(tracked, job)
            message_id = await self._show_in_place(
                tracked,
                tracked.card.done(),
                channel,
                attachment=lambda: discord.File(io.BytesIO(grid), filename),
                view=result_view(job, gallery_url=self.gallery_url),
            )
            return _Shown(message_id, of_result=True)
        return _Shown(await self._post_result(tracked, job, channel), of_result=True)

    async def _from_storage(self, job: Job, render: Callable[[Callable[[str], bytes], str], T]) -> T:
        """`render(read, key)` of the image the result shows, in a thread."""
        key = display_key_of(job)
        if key is None:
            raise Undeliverable("the job's image is missing from storage")
        try:
            return await asyncio.to_thread(render, self.storage.get, key)
        except OSError as error:
            raise Undeliverable(f"the job's grid image could not be read from storage ({error})") from error

    async def _grid(self, tracked: _JobMessage, job: Job) -> tuple[bytes, str]:
        limit = self.channels.filesize_limit(tracked.guild_id)
        stem = upload_stem(job)
        return await self._from_storage(job, lambda read, key: grid_upload(read, key, limit, stem))

    async def _post_result(
        self, tracked: _JobMessage, job: Job, channel: discord.abc.Messageable | None
    ) -> int:
        grid, filename = await self._grid(tracked, job)
        target = channel or self._channel(tracked)
        self.instrumentation.mark("final_send", job.id)
        try:
            message = await target.send(
                tracked.card.done(),
                file=discord.File(io.BytesIO(grid), filename),
                view=result_view(job, gallery_url=self.gallery_url),
                allowed_mentions=self._mention(tracked),
            )
        except (discord.Forbidden, discord.NotFound) as error:
            raise Undeliverable(_refusal_reason(error, tracked)) from error
        self.instrumentation.mark("final_sent", job.id)
        if tracked.message_id is not None and tracked.message_id != message.id:
            try:  # the progress message has served its purpose
                await self._channel(tracked).get_partial_message(tracked.message_id).delete()
            except discord.HTTPException as error:
                log.info("could not delete the progress message of job %s: %s", job.id, error)
        return message.id

    async def _show_in_place(
        self,
        tracked: _JobMessage,
        text: str,
        channel: discord.abc.Messageable | None,
        *,
        attachment: Callable[[], discord.File] | None = None,
        view: discord.ui.View | None = None,
    ) -> int:
        """Edit the job's message into `text` (its old attachments replaced), or post it anew."""
        stale = None  # a message the bot may not edit, removed once the new one is up
        if tracked.message_id is not None:
            try:
                message = (
                    await self._channel(tracked)
                    .get_partial_message(tracked.message_id)
                    .edit(content=text, attachments=[attachment()] if attachment else [], view=view)
                )
                return message.id
            except discord.NotFound as error:
                if error.code != MESSAGE_GONE:  # the message was deleted: post a new one below
                    raise Undeliverable(_refusal_reason(error, tracked)) from error
            except discord.Forbidden as error:
                if error.code != NOT_OURS_TO_EDIT:  # else a follow-up Discord keeps for its interaction
                    raise Undeliverable(_refusal_reason(error, tracked)) from error
                stale = tracked.message_id
        extra: dict[str, Any] = {"file": attachment()} if attachment else {}
        if view is not None:
            extra["view"] = view
        try:
            message = await (channel or self._channel(tracked)).send(
                text, allowed_mentions=self._mention(tracked), **extra
            )
        except (discord.Forbidden, discord.NotFound) as error:
            raise Undeliverable(_refusal_reason(error, tracked)) from error
        if stale is not None:
            await self.remove_message(tracked.channel_id, stale)
        return message.id

    async def _give_up(self, tracked: _JobMessage, reason: str) -> None:
        log.warning("job %s cannot be delivered: %s", tracked.job_id, reason)
        async with self.sessions.begin() as session:
            await delivery_service.mark_undeliverable(session, tracked.job_id, reason)
        self._forget(tracked)

    def _forget(self, tracked: _JobMessage) -> None:
        tracked.finished = True
        tracked.throttle.close()
        self._messages.pop(tracked.job_id, None)

    # --- the sweep -------------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Deliver every ended, undelivered job of this process's guilds; returns how many were tried."""
        async with self.sessions() as session:
            job_ids = await delivery_service.undelivered_jobs(
                session, guild_ids=self.channels.served_guild_ids(), include_direct=self.channels.serves(None)
            )
        for job_id in job_ids:
            self._not_ours.pop(job_id, None)  # the database says it awaits delivery (an approval)
            await self.deliver(job_id)
        return len(job_ids)

    async def _sweep_quietly(self) -> None:
        try:
            await self.sweep()
        except Exception:  # the loop goes on: the next sweep retries
            log.exception(
                "the delivery sweep failed; retrying in %.0f s", self.settings.delivery_sweep_interval
            )


async def cancel_loop(loop: tasks.Loop[Any]) -> None:
    """Stop a background loop and wait until it has."""
    loop.cancel()
    task = loop.get_task()
    if task is not None and task is not asyncio.current_task():
        await asyncio.gather(task, return_exceptions=True)


async def _send_waiting(
    content: str, channel: discord.abc.Messageable, interaction: discord.Interaction[Any] | None
) -> discord.Message:
    """A waiting message: the interaction's follow-up while its token lives, else the bot's post.
    No ping yet: the requester is notified when the result is posted."""
    quiet = discord.AllowedMentions.none()
    if interaction is not None:
        try:
            return await interaction.followup.send(content, allowed_mentions=quiet, wait=True)
        except (discord.Forbidden, discord.NotFound):  # the token expired: the bot's own post still can
            log.info("interaction %s could not post a waiting message; posting it as the bot", interaction.id)
    return await channel.send(content, allowed_mentions=quiet)


def _refusal_reason(error: discord.HTTPException, tracked: _JobMessage) -> str:
    if isinstance(error, discord.NotFound) and error.code == 10003:
        return f"the channel <#{tracked.channel_id}> was deleted"
    if isinstance(error, discord.NotFound):
        return f"the message in <#{tracked.channel_id}> was gone"
    return f"I am not allowed to post in <#{tracked.channel_id}> any more (missing permission)"
