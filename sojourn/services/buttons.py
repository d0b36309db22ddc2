"""What the buttons under a result do: upscale, variations, re-roll, zoom out, favorite.

A press is reloaded from the database every time (the custom_id is only a hint to check): the
job must exist, be finished, have the image, and the presser must be allowed. A press makes a
derived job whose `request_key` is unique, so the same press twice, even two at once, finds the
first job instead of charging and queuing a second (a unique constraint, not check-then-insert).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from db.models import Favorite, GuildSettings, Job, JobStatus
from sojourn.actions import FAVORITE, ButtonAction, Render
from sojourn.clock import utcnow
from sojourn.errors import UserError
from sojourn.prompt import PromptError, PromptRules, parse_prompt
from sojourn.queue import JobQueue
from sojourn.services import credits
from sojourn.services.like_counts import lock_likes, recount_likes
from sojourn.services.moderation import bans, review, words
from sojourn.services.pricing import job_cost
from sojourn.services.results import placement_of
from sojourn.services.submission import (
    Origin,
    check_image_prompt,
    draw_seed,
    enqueue_jobs,
    hold_and_insert,
    new_job,
    record_blocked_prompt,
)
from sojourn.settings import Settings
from sojourn.spec import IMAGES_ON, IMAGES_PER_JOB, JobSpec, SourceImage

# Above this many pixels an image is an upscale's output; halving it finds the job's bucket.
BUCKET_MAX_PIXELS = 1.5 * 1024 * 1024


@dataclass(frozen=True)
class Press:
    """One click, as the custom_id and Discord describe it (both to be checked)."""

    action: ButtonAction
    job_id: uuid.UUID
    index: int | None  # 1–4 on a grid, 1 on a single image, None for a one-per-result button (🔄)
    presser_id: int
    origin: Origin = Origin()  # noqa: RUF009 (a frozen dataclass: one shared default is safe)
    remix_text: str | None = None  # the prompt as edited in the remix modal


@dataclass(frozen=True)
class PressOutcome:
    job: Job
    created: bool  # False: the same press had already made this job (nothing charged)


class ButtonRefused(UserError):
    """The press cannot make a job: a stale or forged button, or someone not allowed to press it."""


def bucket_size(width: int, height: int) -> tuple[int, int]:
    """The grid resolution an image came from: upscales are exact doublings, so halve them back."""
    while width * height > BUCKET_MAX_PIXELS and width % 2 == 0 and height % 2 == 0:
        width, height = width // 2, height // 2
    return width, height


async def load_pressable_job(session: AsyncSession, press: Press) -> Job:
    """The pressed job with its images, after checking that this press makes sense on it."""
    job = (
        await session.execute(select(Job).where(Job.id == press.job_id).options(selectinload(Job.images)))
    ).scalar_one_or_none()
    others_private = job is not None and job.user_id != press.presser_id and job.spec.get("private")
    if job is None or others_private:
        # Someone else's private job is answered like a missing one: its existence is private too.
        raise ButtonRefused("That result no longer exists, so its buttons do nothing. Use /imagine again.")
    if job.status != JobStatus.SUCCEEDED:
        raise ButtonRefused(f"That job {job.status.value}, so it has no images to work from.")
    if job.removed_at is not None:
        raise ButtonRefused("That result was deleted, so its buttons do nothing.")
    if await review.is_held(session, job.id):
        raise ButtonRefused(
            "That result is held for a moderator's review; its buttons work once it is approved."
        )
    placement = placement_of(job)
    if press.action.on != placement and press.action is not FAVORITE:
        raise ButtonRefused("That button does not belong to this result.")
    images = IMAGES_ON[placement]
    if not press.action.per_image:
        if press.index is not None:
            raise ButtonRefused("That button does not belong to this result.")
    elif press.index is None:
        raise ButtonRefused(
            f"That {press.action.name} button does not say which image it is for, so it does nothing. "
            "Use the buttons on a result message posted by the bot."
        )
    elif not 1 <= press.index <= images:
        noun = "one image" if images == 1 else f"{images} images"
        raise ButtonRefused(f"This result has {noun}, so there is no image {press.index} to use.")
    return job


async def check_may_press(session: AsyncSession, job: Job, press: Press) -> None:
    """The owner may always press; others only where the guild allows it (and never when banned)."""
    await bans.check_not_banned(session, press.presser_id, press.origin.guild_id)
    if job.user_id == press.presser_id:
        return
    guild_id = press.origin.guild_id
    allowed = guild_id is not None and await anyone_can_press(session, guild_id)
    if not allowed:
        raise ButtonRefused(
            f"Only <@{job.user_id}> can use the buttons on this result. Run /imagine for your own, "
            "or ask a server admin to let everyone use them (/server buttons)."
        )


async def anyone_can_press(session: AsyncSession, guild_id: int) -> bool:
    row = await session.get(GuildSettings, guild_id)
    return bool(row and row.anyone_can_press)


async def set_anyone_can_press(
    sessions: async_sessionmaker[AsyncSession], guild_id: int, allowed: bool
) -> None:
    async with sessions.begin() as session:
        row = await session.get(GuildSettings, guild_id, with_for_update=True)
        if row is None:
            session.add(GuildSettings(guild_id=guild_id, anyone_can_press=allowed, updated_at=utcnow()))
        else:
            row.anyone_can_press, row.updated_at = allowed, utcnow()


def request_key(press: Press) -> str:
    digest = hashlib.sha256(press.remix_text.encode()).hexdigest()[:16] if press.remix_text else "-"
    index = press.index if press.index is not None else 0
    return f"{press.action.code}:{press.job_id.hex}:{index}:{press.presser_id}:{digest}"


def _remixed(job: Job, press: Press, rules: PromptRules) -> JobSpec:
    """The job's spec, or the remix modal's edit of its prompt (one job, parsed like /imagine)."""
    parent = JobSpec.model_validate(job.spec)
    if press.remix_text is None:
        return parent
    specs = parse_prompt(press.remix_text, rules)
    if len(specs) != 1 or specs[0].repeat != 1:
        raise PromptError("A remix makes one job: remove the {…} permutations and --repeat")
    spec = specs[0]
    check_image_prompt(spec, has_image=parent.image_key is not None, can_attach=False)
    return spec.model_copy(update={"image_key": parent.image_key})


def _source(job: Job, index: int) -> SourceImage:
    image = next((image for image in job.images if image.index == index), None)
    if image is None:
        raise ButtonRefused(f"Image {index} of this result is missing from storage; it cannot be used.")
    return SourceImage(
        job_id=str(job.id),
        index=index,
        key=image.storage_key,
        width=image.width,
        height=image.height,
        seed=image.seed,
    )


def derived_spec(job: Job, press: Press, settings: Settings, rules: PromptRules) -> tuple[JobSpec, int]:
    """The new job's spec and cost for this press (the action's record says which render and price)."""
    action, buttons = press.action, settings.buttons
    base = _remixed(job, press, rules)
    if action.render is None:  # 🔄: the same prompt and parameters, a new seed
        spec = base.with_seed(draw_seed()).model_copy(update={"repeat": 1})
        return spec, job_cost(spec, settings.credits)
    assert press.index is not None and action.cost_setting is not None
    cost = int(getattr(buttons, action.cost_setting))
    source = _source(job, press.index)
    # Derived jobs start from the source image, not from an image prompt.
    common = {
        "action": action.render,
        "source": source,
        "image_key": None,
        "image_weight": 1.0,
        "repeat": 1,
    }
    if action.render == Render.UPSCALE:
        width, height = source.width * 2, source.height * 2
        if max(width, height) > buttons.max_upscale_side:
            raise ButtonRefused(
                f"This image is {source.width}×{source.height}; 2× would be {width}×{height}, and the "
                f"largest upscale is {buttons.max_upscale_side} px on the long side. Use this one as it is."
            )
        upscale = {"width": width, "height": height, "seed": source.seed, "images": 1}
        return base.model_copy(update={**common, **upscale, "strength": buttons.upscale_strength}), cost
    width, height = (
        (base.width, base.height) if press.remix_text else bucket_size(source.width, source.height)
    )
    grid = {**common, "width": width, "height": height, "seed": draw_seed(), "images": IMAGES_PER_JOB}
    update: dict[str, object]
    if action.render == Render.VARY_STRONG:
        update = {"noise_level": buttons.strong_noise_level, "strength": buttons.strong_refine_strength}
    elif action.render == Render.VARY_SUBTLE:
        update = {"strength": buttons.subtle_strength}
    else:
        update = {"zoom": action.zoom, "strength": 1.0}
    return base.model_copy(update={**grid, **update}), cost


async def press_button(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    queue: JobQueue,
    press: Press,
    *,
    rules: PromptRules | None = None,
) -> PressOutcome:
    """Make (or find, for a repeated press) the job this press asks for; the presser pays."""
    if press.action.kind is None:
        raise ValueError(f"{press.action.name} makes no job (a favorite is toggled with toggle_favorite)")
    rules = rules or PromptRules.from_settings(settings)
    key = request_key(press)
    try:
        return await _press(sessions, settings, queue, press, rules, key)
    except words.WordsBlocked as blocked:
        assert press.remix_text is not None
        raise await record_blocked_prompt(
            sessions, settings, press.presser_id, press.origin, press.remix_text, blocked
        ) from None


async def _press(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    queue: JobQueue,
    press: Press,
    rules: PromptRules,
    key: str,
) -> PressOutcome:
    assert press.action.kind is not None
    async with sessions.begin() as session:
        job = await load_pressable_job(session, press)
        await check_may_press(session, job, press)
        existing = await _job_for_key(session, key)
        if existing is not None:
            return PressOutcome(existing, created=False)
        spec, cost = derived_spec(job, press, settings, rules)
        if press.remix_text is not None:  # a remix edit is a new prompt: screened like /imagine
            warnings = await words.screen_prompt(
                session,
                settings.moderation,
                press.origin.guild_id,
                [press.remix_text, *words.spec_texts(spec)],
            )
        derived = new_job(
            press.presser_id,
            press.action.kind,
            spec,
            cost,
            press.origin,
            action=press.action.code,
            parent_job_id=job.id,
            parent_image_index=press.index,
            request_key=key,
        )
        await credits.ensure_user(session, press.presser_id)
        try:
            async with session.begin_nested():
                await hold_and_insert(session, settings, press.presser_id, [derived])
                if press.remix_text is not None:
                    await words.log_warnings(
                        session,
                        warnings,
                        guild_id=press.origin.guild_id,
                        user_id=press.presser_id,
                        job_ids=[derived.id],
                    )
        except IntegrityError:
            # The same press, at the same moment, got there first: show its job, charge nothing.
            existing = await _job_for_key(session, key)
            if existing is None:
                raise
            return PressOutcome(existing, created=False)
    await enqueue_jobs(sessions, queue, [derived])
    return PressOutcome(derived, created=True)


async def _job_for_key(session: AsyncSession, key: str) -> Job | None:
    return (await session.execute(select(Job).where(Job.request_key == key))).scalar_one_or_none()


async def toggle_favorite(sessions: async_sessionmaker[AsyncSession], press: Press) -> tuple[bool, int]:
    """Favorite the image, or unfavorite it if it was; returns (favorite now, how many favor it)."""
    async with sessions.begin() as session:
        job = await load_pressable_job(session, press)  # refuses, in words, a press that names no image
        assert press.index is not None
        await credits.ensure_user(session, press.presser_id)
        await bans.check_not_banned(session, press.presser_id, press.origin.guild_id)
        await lock_likes(session, job.id)
        removed = await session.execute(
            delete(Favorite).where(
                Favorite.user_id == press.presser_id,
                Favorite.job_id == job.id,
                Favorite.image_index == press.index,
            )
        )
        favorite = removed.rowcount == 0  # type: ignore[attr-defined]
        if favorite:
            try:
                async with session.begin_nested():
                    session.add(Favorite(user_id=press.presser_id, job_id=job.id, image_index=press.index))
            except IntegrityError:
                pass  # a double click: the first one favorited it
        await recount_likes(session, job.id)
        count = await favorite_count(session, job.id, press.index)
    return favorite, count


async def favorite_count(session: AsyncSession, job_id: uuid.UUID, index: int) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Favorite)
        .where(Favorite.job_id == job_id, Favorite.image_index == index)
    )
    return int(count or 0)


async def lineage(
    session: AsyncSession, job_id: uuid.UUID, *, limit: int = 10
) -> list[tuple[Job, int | None]]:
    """The job and its ancestors, newest first, each with the image index its child started from."""
    chain: list[tuple[Job, int | None]] = []
    current = await session.get(Job, job_id)
    index: int | None = None
    while current is not None and len(chain) < limit:
        chain.append((current, index))
        index = current.parent_image_index
        current = await session.get(Job, current.parent_job_id) if current.parent_job_id else None
    return chain
