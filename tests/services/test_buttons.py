"""Button presses on a real Postgres and Redis: checks, idempotency under concurrency, costs, lineage."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest
import redis
from sqlalchemy import func, select

from db.models import Job, JobKind, LedgerEntry
from sojourn import actions
from sojourn.celery_app import make_celery
from sojourn.errors import Banned, UserError
from sojourn.prompt import PromptError
from sojourn.queue import CeleryJobQueue
from sojourn.services import credits, lifecycle, submission
from sojourn.services.buttons import (
    ButtonRefused,
    Press,
    bucket_size,
    lineage,
    press_button,
    set_anyone_can_press,
    toggle_favorite,
)
from sojourn.services.lifecycle import StoredImage
from sojourn.services.moderation import bans
from sojourn.services.moderation.permissions import Actor
from sojourn.services.submission import Origin
from sojourn.settings import Settings
from sojourn.spec import JobSpec
from tests.services.workers import FIRST_ATTEMPT, RECOVERY, TEST_WORKER

_user_ids = itertools.count(50_000)
pytestmark = pytest.mark.usefixtures("pinned_clock")
GUILD = Origin(guild_id=777, channel_id=888)


@pytest.fixture(scope="module")
def settings(database_url: str, redis_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    url = redis_base_url.rsplit("/", 1)[0] + "/7"
    redis.Redis.from_url(url).flushdb()
    return Settings(database_url=database_url, redis_url=url, data_dir=tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def queue(settings: Settings) -> CeleryJobQueue:
    return CeleryJobQueue(make_celery(settings))


async def finished_job(
    sessions, settings, queue, text: str = "a red fox --seed 10", *, images: int = 4
) -> Job:  # type: ignore[no-untyped-def]
    """A submitted job, finished as a worker would finish it (image rows, settled), without rendering."""
    user_id = next(_user_ids)
    (job,) = await submission.submit_prompt(
        sessions, settings, queue, user_id=user_id, text=text, origin=GUILD
    )
    spec = JobSpec.model_validate(job.spec)
    async with sessions.begin() as session:
        await lifecycle.claim_job(session, job.id, TEST_WORKER, RECOVERY)
        stored = [
            StoredImage(index=i, seed=spec.image_seeds()[i - 1], width=spec.width, height=spec.height,
                        storage_key=f"jobs/{job.id}/{i}.png")
            for i in range(1, images + 1)
        ] + [StoredImage(index=0, seed=spec.seed or 0, width=2 * spec.width, height=2 * spec.height,
                         storage_key=f"jobs/{job.id}/grid.png")]  # fmt: skip
        assert await lifecycle.complete_job(session, job.id, FIRST_ATTEMPT, stored)
    return job


def press(
    job: Job, action: actions.ButtonAction, index: int | None = 1, *, by: int | None = None, **extra
) -> Press:  # type: ignore[no-untyped-def]
    return Press(
        action=action, job_id=job.id, index=index, presser_id=by or job.user_id, origin=GUILD, **extra
    )


async def jobs_made_from(sessions, parent: Job) -> list[Job]:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return list((await session.execute(select(Job).where(Job.parent_job_id == parent.id))).scalars())


async def test_each_action_makes_the_right_job_with_lineage_and_cost(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    parent = await finished_job(sessions, settings, queue, "a red fox --ar 16:9 --seed 10")
    buttons = settings.buttons

    upscale = (await press_button(sessions, settings, queue, press(parent, actions.UPSCALE, 3))).job
    vary = (await press_button(sessions, settings, queue, press(parent, actions.VARY, 2))).job
    reroll = (await press_button(sessions, settings, queue, press(parent, actions.REROLL, None))).job

    up = JobSpec.model_validate(upscale.spec)
    assert upscale.kind == JobKind.UPSCALE and upscale.cost == buttons.upscale_cost
    assert (up.action, up.images, up.width, up.height) == ("upscale", 1, 2688, 1536)
    assert up.source is not None and up.source.index == 3 and up.seed == 12  # image 3's own seed
    assert up.strength == buttons.upscale_strength
    assert (upscale.parent_job_id, upscale.parent_image_index) == (parent.id, 3)
    assert (upscale.action, vary.action, reroll.action) == ("u", "v", "r")  # stored: nothing is guessed

    va = JobSpec.model_validate(vary.spec)
    assert vary.kind == JobKind.VARIATION and vary.cost == buttons.vary_strong_cost
    assert (va.action, va.images, va.width, va.height) == ("vary_strong", 4, 1344, 768)
    assert va.noise_level == buttons.strong_noise_level and va.source is not None and va.source.index == 2

    rr = JobSpec.model_validate(reroll.spec)
    assert reroll.kind == JobKind.REROLL and rr.action is None and rr.seed != 10
    assert reroll.cost == parent.cost  # a new grid costs what the grid cost
    assert (reroll.parent_job_id, reroll.parent_image_index) == (parent.id, None)
    assert buttons.upscale_cost < parent.cost

    # On the upscaled image: vary and zoom, back at the grid's resolution.
    async with sessions.begin() as session:
        await lifecycle.claim_job(session, upscale.id, TEST_WORKER, RECOVERY)
        image = StoredImage(index=1, seed=12, width=2688, height=1536, storage_key=f"jobs/{upscale.id}/1.png")
        assert await lifecycle.complete_job(session, upscale.id, FIRST_ATTEMPT, [image])
    subtle = (await press_button(sessions, settings, queue, press(upscale, actions.VARY_SUBTLE))).job
    zoom = (await press_button(sessions, settings, queue, press(upscale, actions.ZOOM_OUT_15))).job
    sub, zo = (JobSpec.model_validate(j.spec) for j in (subtle, zoom))
    assert (sub.action, sub.width, sub.height, sub.strength) == (
        "vary_subtle",
        1344,
        768,
        buttons.subtle_strength,
    )
    assert (zo.action, zo.zoom, zo.width, zo.height, zoom.kind) == ("zoom_out", 1.5, 1344, 768, JobKind.ZOOM)
    assert (subtle.action, zoom.action) == ("vt", "z15")

    async with sessions() as session:
        chain = await lineage(session, zoom.id)
    assert [(job.id, index) for job, index in chain] == [(zoom.id, None), (upscale.id, 1), (parent.id, 3)]


async def test_upscaling_past_the_limit_is_refused_clearly(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    parent = await finished_job(sessions, settings, queue, "a square tower --seed 3")
    capped = settings.model_copy(
        update={"buttons": settings.buttons.model_copy(update={"max_upscale_side": 2048})}
    )
    first = (await press_button(sessions, capped, queue, press(parent, actions.UPSCALE, 1))).job
    async with sessions.begin() as session:
        await lifecycle.claim_job(session, first.id, TEST_WORKER, RECOVERY)
        spec = JobSpec.model_validate(first.spec)
        image = StoredImage(index=1, seed=3, width=spec.width, height=spec.height, storage_key="k")
        await lifecycle.complete_job(session, first.id, FIRST_ATTEMPT, [image])
    with pytest.raises(ButtonRefused, match=r"largest upscale is 2048 px on the long side"):
        await press_button(sessions, capped, queue, press(first, actions.UPSCALE_AGAIN))


async def test_a_double_press_even_simultaneous_makes_one_job_and_charges_once(
    sessions, settings, queue
) -> None:  # type: ignore[no-untyped-def]
    parent = await finished_job(sessions, settings, queue)
    async with sessions() as session:
        before = await credits.balance_of(session, parent.user_id)

    outcomes = await asyncio.gather(
        *(press_button(sessions, settings, queue, press(parent, actions.UPSCALE, 2)) for _ in range(5))
    )

    assert len({outcome.job.id for outcome in outcomes}) == 1
    assert sum(outcome.created for outcome in outcomes) == 1
    assert len(await jobs_made_from(sessions, parent)) == 1
    async with sessions() as session:
        assert await credits.balance_of(session, parent.user_id) == before - settings.buttons.upscale_cost
        assert await credits.ledger_sum(session, parent.user_id) == before - settings.buttons.upscale_cost
    # Later, the same press again: the same job, still charged once.
    later = await press_button(sessions, settings, queue, press(parent, actions.UPSCALE, 2))
    assert not later.created and later.job.id == outcomes[0].job.id
    # Another image, or another action, is another job.
    other = await press_button(sessions, settings, queue, press(parent, actions.UPSCALE, 1))
    assert other.created


async def test_a_press_whose_job_failed_can_be_retried(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    parent = await finished_job(sessions, settings, queue)
    first = (await press_button(sessions, settings, queue, press(parent, actions.VARY, 1))).job
    async with sessions.begin() as session:
        assert await lifecycle.fail_job(session, first.id, "out of memory")
    retry = await press_button(sessions, settings, queue, press(parent, actions.VARY, 1))
    assert retry.created and retry.job.id != first.id


@pytest.mark.parametrize(
    ("action", "index", "message"),
    [
        (actions.UPSCALE, 5, "This result has 4 images, so there is no image 5 to use."),
        (
            actions.UPSCALE,
            None,
            "That Upscale button does not say which image it is for, so it does nothing. "
            "Use the buttons on a result message posted by the bot.",
        ),
        (actions.REROLL, 2, "That button does not belong to this result."),
        (actions.ZOOM_OUT_2, 1, "That button does not belong to this result."),  # zoom is for a single image
    ],
)
async def test_forged_presses_are_refused_and_change_nothing(
    sessions, settings, queue, action, index, message
) -> None:  # type: ignore[no-untyped-def]
    parent = await finished_job(sessions, settings, queue)
    with pytest.raises(ButtonRefused) as refused:
        await press_button(sessions, settings, queue, press(parent, action, index))
    assert refused.value.message == message
    assert await jobs_made_from(sessions, parent) == []


async def test_an_unknown_or_unfinished_job_is_refused(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    ghost = Press(action=actions.UPSCALE, job_id=uuid.uuid4(), index=1, presser_id=1, origin=GUILD)
    with pytest.raises(ButtonRefused, match="That result no longer exists"):
        await press_button(sessions, settings, queue, ghost)
    (running,) = await submission.submit_prompt(
        sessions, settings, queue, user_id=next(_user_ids), text="a cat", origin=GUILD
    )
    with pytest.raises(ButtonRefused, match="That job queued, so it has no images"):
        await press_button(sessions, settings, queue, press(running, actions.UPSCALE, 1))


async def test_only_the_owner_presses_unless_the_guild_allows_anyone_then_the_presser_pays(
    sessions, settings, queue
) -> None:  # type: ignore[no-untyped-def]
    parent = await finished_job(sessions, settings, queue)
    private = await finished_job(sessions, settings, queue, "a secret --private --seed 4")
    stranger = next(_user_ids)

    with pytest.raises(ButtonRefused, match=rf"Only <@{parent.user_id}> can use the buttons"):
        await press_button(sessions, settings, queue, press(parent, actions.UPSCALE, 1, by=stranger))

    await set_anyone_can_press(sessions, GUILD.guild_id, True)
    try:
        made = (
            await press_button(sessions, settings, queue, press(parent, actions.UPSCALE, 1, by=stranger))
        ).job
        assert made.user_id == stranger
        async with sessions() as session:
            assert await credits.ledger_sum(session, stranger) == 40 - made.cost  # the presser paid
        with pytest.raises(ButtonRefused, match="That result no longer exists"):  # private stays private
            await press_button(sessions, settings, queue, press(private, actions.UPSCALE, 1, by=stranger))
    finally:
        await set_anyone_can_press(sessions, GUILD.guild_id, False)


async def test_a_banned_user_is_refused(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    parent = await finished_job(sessions, settings, queue)
    moderator = Actor(user_id=next(_user_ids), guild_id=GUILD.guild_id, manage_guild=True)
    await bans.ban_user(sessions, moderator, parent.user_id, reason="spam")
    with pytest.raises(Banned, match="Reason: spam"):
        await press_button(sessions, settings, queue, press(parent, actions.VARY, 1))
    with pytest.raises(Banned):
        await toggle_favorite(sessions, press(parent, actions.FAVORITE, 1))


async def test_remix_edits_the_prompt_and_is_its_own_press(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    parent = await finished_job(sessions, settings, queue, "a red fox --seed 10")
    remixed = (
        await press_button(
            sessions,
            settings,
            queue,
            press(parent, actions.VARY, 1, remix_text="a blue fox --ar 3:2 --seed 10"),
        )
    ).job
    spec = JobSpec.model_validate(remixed.spec)
    assert spec.prompt[0].text == "a blue fox" and (spec.width, spec.height) == (1216, 832)
    assert remixed.prompt.startswith("a blue fox")
    plain = await press_button(sessions, settings, queue, press(parent, actions.VARY, 1))
    assert plain.created  # a different edit is a different press

    with pytest.raises(PromptError, match="A remix makes one job"):
        await press_button(
            sessions, settings, queue, press(parent, actions.REROLL, None, remix_text="{a, b} fox")
        )
    with pytest.raises(UserError, match="--ar 9:1 is too wide"):
        await press_button(
            sessions, settings, queue, press(parent, actions.REROLL, None, remix_text="fox --ar 9:1")
        )


async def test_a_remix_checks_the_image_prompt_as_imagine_does(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    (parent,) = await submission.submit_prompt(
        sessions,
        settings,
        queue,
        user_id=next(_user_ids),
        text="a fox --iw 2",
        origin=GUILD,
        image_key="x.png",
    )
    async with sessions.begin() as session:
        await lifecycle.claim_job(session, parent.id, TEST_WORKER, RECOVERY)
        image = StoredImage(index=1, seed=1, width=1024, height=1024, storage_key=f"jobs/{parent.id}/1.png")
        await lifecycle.complete_job(session, parent.id, FIRST_ATTEMPT, [image])
    # --iw 2 starts the render halfway: a --stop at 40 % would end it before it begins.
    with pytest.raises(PromptError, match="--stop 40 ends before an image prompt at --iw 2 even starts"):
        await press_button(
            sessions,
            settings,
            queue,
            press(parent, actions.REROLL, None, remix_text="a fox --iw 2 --stop 40"),
        )
    remixed = await press_button(
        sessions, settings, queue, press(parent, actions.REROLL, None, remix_text="a fox --iw 2 --stop 90")
    )
    plain = await finished_job(sessions, settings, queue)
    with pytest.raises(PromptError, match=r"there is none: remove --iw$"):  # nothing to attach in a remix
        await press_button(
            sessions, settings, queue, press(plain, actions.REROLL, None, remix_text="a fox --iw 2")
        )
    assert JobSpec.model_validate(remixed.job.spec).image_key == "x.png"


async def test_favorites_toggle_and_count(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    parent = await finished_job(sessions, settings, queue)
    fan = next(_user_ids)  # anyone may ❤ a public image: it is not a job and costs nothing
    assert await toggle_favorite(sessions, press(parent, actions.FAVORITE, 1)) == (True, 1)
    assert await toggle_favorite(sessions, press(parent, actions.FAVORITE, 1, by=fan)) == (True, 2)
    assert await toggle_favorite(sessions, press(parent, actions.FAVORITE, 1)) == (False, 1)
    with pytest.raises(ButtonRefused):
        await toggle_favorite(sessions, press(parent, actions.FAVORITE, 7))


def test_buckets_undo_exact_doublings() -> None:
    assert bucket_size(1024, 1024) == (1024, 1024)
    assert bucket_size(2688, 1536) == (1344, 768)
    assert bucket_size(4096, 4096) == (1024, 1024)
    assert bucket_size(768, 1344) == (768, 1344)


async def test_no_ledger_entry_is_written_for_a_refused_press(sessions, settings, queue) -> None:  # type: ignore[no-untyped-def]
    parent = await finished_job(sessions, settings, queue)
    async with sessions() as session:
        before = await session.scalar(select(func.count()).select_from(LedgerEntry))
    with pytest.raises(ButtonRefused):
        await press_button(sessions, settings, queue, press(parent, actions.UPSCALE, 9))
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(LedgerEntry)) == before
