"""Job messages on Discord: the waiting message, throttled progress edits, the result, the sweep.

Every message is the bot's own channel message, edited or posted with the bot's token, never
with an interaction token (those die after 15 minutes): a job that ends an hour later, or after
a restart, is delivered the same way. The database says what is undelivered (`delivered_at` is
null), so the events from the worker only make delivery fast; the sweep makes it certain.

Like Midjourney, the result is posted as a new message (so the requester is notified and it
lands at the bottom of the channel) and the progress message is deleted; a failed or cancelled
job is shown by editing the progress message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import io
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import discord
from PIL import Image as PILImage

from bot.messages import JobCard
from bot.result_view import result_view
from db.models import FINAL_STATUSES, Job, JobStatus
from sojourn.events import JobEvent
from sojourn.services import delivery as delivery_service
from sojourn.services import queue_info
from sojourn.services.results import display_key_of, is_single_image

if TYPE_CHECKING:
    from bot.bot import SojournBot

log = logging.getLogger(__name__)
T = TypeVar("T")

FINAL_EVENTS = frozenset({"succeeded", "failed", "cancelled"})
NOT_OURS_MEMORY = 4096  # job ids known to have no Discord message (e.g. `sojourn render`'s)
JPEG_QUALITY = 92
DEFAULT_FILESIZE_LIMIT = 10 * 1024 * 1024


def _monotonic() -> float:
    # Looked up at call time, so a simulator's clock (simcord's) is the one read.
    return time.monotonic()


class LatestOnlyThrottle(Generic[T]):
    """Sends at most one value per `interval`; values pushed in between coalesce to the latest.

    `send(value)` returns False when it cannot send yet (e.g. the message is not posted); the
    value then waits for `kick()`.
    """

    def __init__(
        self,
        interval: float,
        send: Callable[[T], Awaitable[bool]],
        *,
        spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]],
        clock: Callable[[], float] = _monotonic,
    ) -> None:
        self.interval = interval
        self.last_sent = -math.inf
        self._send = send
        self._spawn = spawn
        self._clock = clock
        self._latest: T | None = None
        self._dirty = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    @property
    def latest(self) -> T | None:
        return self._latest

    def push(self, value: T) -> None:
        if self._closed:
            return
        self._latest, self._dirty = value, True
        self.kick()

    def kick(self) -> None:
        if self._dirty and not self._closed and (self._task is None or self._task.done()):
            self._task = self._spawn(self._drain())

    def sent_now(self) -> None:
        """Something else changed the message just now: the interval starts again."""
        self.last_sent = self._clock()

    def close(self) -> None:
        self._closed = True
        if self._task is not None and not self._task.done() and self._task is not asyncio.current_task():
            self._task.cancel()

    async def idle(self) -> None:
        """Wait until everything pushed so far is sent (or the throttle closed)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})

    async def _drain(self) -> None:
        while self._dirty and not self._closed:
            wait = self.last_sent + self.interval - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            value, self._dirty = self._latest, False
            assert value is not None
            if not await self._send(value):
                self._dirty = True  # not sendable yet: `kick()` resumes
                return
            self.last_sent = self._clock()


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
    throttle: LatestOnlyThrottle[_Progress] | None = None
    preview_shown: bytes | None = None
    finished: bool = False


class Undeliverable(Exception):
    """Discord refused the message for good (channel gone, access lost)."""


class Delivery:
    def __init__(self, bot: SojournBot) -> None:
        self.bot = bot
        self.settings = bot.settings.bot
        self._messages: dict[uuid.UUID, _JobMessage] = {}
        self._posting: set[uuid.UUID] = set()  # submitted by /imagine, waiting message not posted yet
        self._not_ours: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()

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

    async def close(self) -> None:
        for message in self._messages.values():
            if message.throttle is not None:
                message.throttle.close()
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def serves(self, guild_id: int | None) -> bool:
        """Whether this process delivers for that guild: with several processes (shard_ids set),
        each one delivers for its own guilds, and the one running shard 0 for direct messages."""
        if self.bot.shard_ids is None:
            return True
        if guild_id is None:
            return 0 in self.bot.shard_ids
        return self.bot.get_guild(guild_id) is not None

    def _channel(self, message: _JobMessage) -> discord.PartialMessageable:
        return self.bot.get_partial_messageable(message.channel_id, guild_id=message.guild_id)

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

    async def _tracked(self, job_id: uuid.UUID) -> _JobMessage | None:
        """The job's message, loaded on first sight; None for jobs that were not asked for on Discord."""
        if job_id in self._messages:
            return self._messages[job_id]
        if job_id in self._not_ours:
            return None
        async with self.bot.sessions() as session:
            job = await session.get(Job, job_id)
        if (
            job is None
            or job.channel_id is None
            or job.delivered_at is not None
            or not self.serves(job.guild_id)
        ):
            self._not_ours[job_id] = None
            while len(self._not_ours) > NOT_OURS_MEMORY:
                self._not_ours.popitem(last=False)
            return None
        return self._track(job)

    # --- the waiting message, from /imagine --------------------------------------------------------

    def expect_posts(self, job_ids: Iterable[uuid.UUID]) -> None:
        """/imagine will post these jobs' waiting messages: a result must not overtake them."""
        self._posting.update(job_ids)

    async def post_waiting(self, job: Job, channel: discord.abc.Messageable) -> int | None:
        """Post the job's message ("Waiting to start… (position 3 in queue, ETA ~40 s)"), record it."""
        tracked = self._track(job)
        ended = None
        try:
            async with tracked.lock:
                async with self.bot.sessions() as session:
                    current = await delivery_service.job_with_images(session, job.id)
                    if current is None or current.delivered_at is not None:
                        return None
                    if current.status in FINAL_STATUSES:
                        ended = current  # it ended before it was even shown: show the outcome
                    else:
                        estimate = await queue_info.estimate_for(
                            session, current, default_seconds=self.settings.default_eta_seconds
                        )
                if ended is None:
                    content = (
                        tracked.card.waiting(estimate)
                        if current.status == JobStatus.QUEUED
                        else tracked.card.progress(current.progress)
                    )
                    try:
                        # No ping yet: the requester is notified when the result is posted.
                        message = await channel.send(content, allowed_mentions=discord.AllowedMentions.none())
                    except (discord.Forbidden, discord.NotFound) as error:
                        await self._give_up(tracked, _refusal_reason(error, tracked))
                        return None
                    except discord.HTTPException as error:
                        # The job is queued and paid for: its result is posted as a new message.
                        log.warning("could not post the waiting message of job %s: %s", job.id, error)
                        return None
                    tracked.message_id = message.id
                    self.bot.timings.mark("waiting_posted", job.id)
                    async with self.bot.sessions.begin() as session:
                        await delivery_service.record_message(session, job.id, message.id)
                    if tracked.throttle is not None:
                        tracked.throttle.sent_now()
                else:
                    self._posting.discard(job.id)
                    await self._deliver_locked(tracked, ended, new_message_channel=channel)
                    return tracked.message_id
        finally:
            self._posting.discard(job.id)
        if tracked.throttle is not None:
            tracked.throttle.kick()  # progress that arrived before the message existed
        return tracked.message_id

    @staticmethod
    def _mention(tracked: _JobMessage) -> discord.AllowedMentions:
        return discord.AllowedMentions(
            everyone=False, roles=False, users=[discord.Object(tracked.card.user_id)]
        )

    # --- events from the worker ---------------------------------------------------------------------

    async def on_event(self, event: JobEvent) -> None:
        try:
            job_id = uuid.UUID(event.job_id)
        except ValueError:
            log.warning("ignoring an event for a malformed job id %r", event.job_id[:64])
            return
        if event.kind in FINAL_EVENTS:
            self.spawn(self.deliver(job_id))
            return
        tracked = await self._tracked(job_id)
        if tracked is None or tracked.finished or tracked.throttle is None:
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
            self.bot.timings.mark("progress_edited", (tracked.job_id, progress.percent))
            return True

    # --- the outcome -----------------------------------------------------------------------------------

    async def deliver(self, job_id: uuid.UUID) -> None:
        """Show an ended job's outcome in its channel, once; safe to call any number of times."""
        tracked = await self._tracked(job_id)
        if tracked is None:
            return
        async with tracked.lock:
            async with self.bot.sessions() as session:
                job = await delivery_service.job_with_images(session, job_id)
            if job is None or job.delivered_at is not None or job.status not in FINAL_STATUSES:
                if job is not None and job.delivered_at is not None:
                    self._forget(tracked)
                return
            if job.message_id is None and job_id in self._posting:
                return  # /imagine is posting its waiting message and shows the outcome after
            await self._deliver_locked(tracked, job)

    async def _deliver_locked(
        self, tracked: _JobMessage, job: Job, *, new_message_channel: discord.abc.Messageable | None = None
    ) -> None:
        tracked.finished = True
        if tracked.throttle is not None:
            tracked.throttle.close()
        tracked.message_id = job.message_id
        try:
            if job.status == JobStatus.SUCCEEDED:
                message_id = await self._post_result(tracked, job, new_message_channel)
            else:
                text = (
                    tracked.card.cancelled()
                    if job.status == JobStatus.CANCELLED
                    else tracked.card.failed(job.error)
                )
                message_id = await self._show_in_place(tracked, text, new_message_channel)
        except Undeliverable as refusal:
            await self._give_up(tracked, str(refusal))
            return
        except discord.HTTPException as error:
            finished = job.finished_at or dt.datetime.now(dt.UTC)
            finished = finished if finished.tzinfo else finished.replace(tzinfo=dt.UTC)
            age = (dt.datetime.now(dt.UTC) - finished).total_seconds()
            if age > self.settings.give_up_delivery_after:
                await self._give_up(tracked, f"Discord kept refusing the message ({error.status})")
            else:
                log.warning("could not deliver job %s yet (%s); the sweep retries", job.id, error)
                tracked.finished = False  # a later sweep or event tries again
            return
        async with self.bot.sessions.begin() as session:
            await delivery_service.mark_delivered(session, job.id, message_id)
        self.bot.timings.mark("delivered", job.id)
        self._forget(tracked)

    async def _post_result(
        self, tracked: _JobMessage, job: Job, channel: discord.abc.Messageable | None
    ) -> int:
        key = display_key_of(job)
        if key is None:
            raise Undeliverable("the job's image is missing from storage")
        limit = self._filesize_limit(tracked)
        try:
            grid, filename = await asyncio.to_thread(
                grid_upload, self.bot.storage.get, key, limit, upload_stem(job)
            )
        except OSError as error:
            raise Undeliverable(f"the job's grid image could not be read from storage ({error})") from error
        target = channel or self._channel(tracked)
        self.bot.timings.mark("final_send", job.id)
        try:
            message = await target.send(
                tracked.card.done(),
                file=discord.File(io.BytesIO(grid), filename),
                view=result_view(job, gallery_url=self.bot.settings.buttons.gallery_url),
                allowed_mentions=self._mention(tracked),
            )
        except (discord.Forbidden, discord.NotFound) as error:
            raise Undeliverable(_refusal_reason(error, tracked)) from error
        self.bot.timings.mark("final_sent", job.id)
        if tracked.message_id is not None and tracked.message_id != message.id:
            try:  # the progress message has served its purpose
                await self._channel(tracked).get_partial_message(tracked.message_id).delete()
            except discord.HTTPException as error:
                log.info("could not delete the progress message of job %s: %s", job.id, error)
        return message.id

    async def _show_in_place(
        self, tracked: _JobMessage, text: str, channel: discord.abc.Messageable | None
    ) -> int:
        if tracked.message_id is not None:
            try:
                message = (
                    await self._channel(tracked)
                    .get_partial_message(tracked.message_id)
                    .edit(content=text, attachments=[], view=None)
                )
                return message.id
            except discord.NotFound as error:
                if error.code != 10008:  # 10008: the message was deleted; post a new one below
                    raise Undeliverable(_refusal_reason(error, tracked)) from error
            except discord.Forbidden as error:
                raise Undeliverable(_refusal_reason(error, tracked)) from error
        try:
            message = await (channel or self._channel(tracked)).send(
                text, allowed_mentions=self._mention(tracked)
            )
        except (discord.Forbidden, discord.NotFound) as error:
            raise Undeliverable(_refusal_reason(error, tracked)) from error
        return message.id

    def _filesize_limit(self, tracked: _JobMessage) -> int:
        guild = self.bot.get_guild(tracked.guild_id) if tracked.guild_id else None
        return guild.filesize_limit if guild is not None else DEFAULT_FILESIZE_LIMIT

    async def _give_up(self, tracked: _JobMessage, reason: str) -> None:
        log.warning("job %s cannot be delivered: %s", tracked.job_id, reason)
        async with self.bot.sessions.begin() as session:
            await delivery_service.mark_undeliverable(session, tracked.job_id, reason)
        self._forget(tracked)

    def _forget(self, tracked: _JobMessage) -> None:
        tracked.finished = True
        if tracked.throttle is not None:
            tracked.throttle.close()
        self._messages.pop(tracked.job_id, None)

    # --- the sweep -------------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Deliver every ended, undelivered job of this process's guilds; returns how many were tried."""
        guild_ids = None if self.bot.shard_ids is None else [guild.id for guild in self.bot.guilds]
        async with self.bot.sessions() as session:
            job_ids = await delivery_service.undelivered_jobs(
                session, guild_ids=guild_ids, include_direct=self.serves(None)
            )
        for job_id in job_ids:
            await self.deliver(job_id)
        return len(job_ids)

    async def run_sweeper(self) -> None:
        """At start-up (results that ended while the bot was down), then every few seconds."""
        await self.bot.wait_until_ready()
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception(
                    "the delivery sweep failed; retrying in %.0f s", self.settings.delivery_sweep_interval
                )
            # A timer that only paces a poll of the database: outside input, like the events.
            await self.bot.external_wait(
                asyncio.sleep(self.settings.delivery_sweep_interval), reason="the next delivery sweep"
            )


def _refusal_reason(error: discord.HTTPException, tracked: _JobMessage) -> str:
    if isinstance(error, discord.NotFound) and error.code == 10003:
        return f"the channel <#{tracked.channel_id}> was deleted"
    if isinstance(error, discord.NotFound):
        return f"the message in <#{tracked.channel_id}> was gone"
    return f"I am not allowed to post in <#{tracked.channel_id}> any more (missing permission)"


def upload_stem(job: Job) -> str:
    """The attachment's name: `grid` for a 2×2 grid, `image` for a single image."""
    return "image" if is_single_image(job) else "grid"


def grid_upload(read: Callable[[str], bytes], key: str, limit: int, stem: str = "grid") -> tuple[bytes, str]:
    """The image as stored (PNG), or as a high-quality JPEG when the PNG is over the upload limit."""
    png = read(key)
    if len(png) <= limit:
        return png, f"{stem}.png"
    with PILImage.open(io.BytesIO(png)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue(), f"{stem}.jpg"
