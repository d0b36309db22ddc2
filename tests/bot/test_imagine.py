"""/imagine end to end: simcord (discord.py's real machinery), Postgres, Redis and a real worker."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import discord
import pytest
import simcord

from db.models import JobStatus, LedgerKind
from sojourn.events import JobEvent, RedisEventPublisher
from sojourn.services.credits import ledger_sum
from tests.bot.conftest import GatedQueue, World, balance_of, eventually, jobs_of, restart_bot
from tests.bot.helpers import (
    attachment_image,
    button_rows,
    ledger_kinds,
    png_bytes,
    reload,
    requests,
    wait_for_result,
    wait_for_status,
)

pytestmark = pytest.mark.usefixtures("worker")


def headline(prompt: str, member: object) -> str:
    return f"**{discord.utils.escape_markdown(prompt)}** - {member.mention}"  # type: ignore[attr-defined]


async def test_imagine_defers_shows_progress_and_posts_the_grid_with_nine_buttons(
    world: World, bot_sessions, bot_settings, queue: GatedQueue
) -> None:  # type: ignore[no-untyped-def]
    queue.hold()  # the job waits in the queue until released, however fast the worker is
    since = len(world.env.http_requests)

    result = await world.alice.slash(
        world.channel, "imagine", prompt="a lighthouse in a storm --ar 16:9 --seed 7"
    )

    # Acknowledged first, privately (type 5 = deferred, flag 64 = ephemeral), then confirmed privately.
    first_answer = next(r for r in world.env.http_requests[since:] if r.path.endswith("/callback"))
    assert first_answer.json == {"type": 5, "data": {"flags": 64}}
    (job,) = await jobs_of(bot_sessions, world.alice.id)
    assert result.ephemeral and result.response is not None
    assert result.response.content.startswith(f"Queued 1 job (4 credits held): `{job.id}`")

    waiting = world.channel.last_message
    assert waiting is not None and waiting.content.startswith(
        f"{headline(job.prompt, world.alice)} Waiting to start… (position 1 in queue, ETA ~"
    )
    assert "--seed 7" in job.prompt and "--ar 16:9" in job.prompt

    # Progress as the worker reports it, a burst of steps with previews among them: the message
    # shows the percentage and the latest preview, edits throttled and coalesced. (Published here,
    # so that no assertion depends on how fast the worker renders; tests/worker tests its events.)
    publisher = RedisEventPublisher(bot_settings.redis_url)
    for percent in range(0, 100, 10):
        preview = png_bytes(64, 36) if percent % 20 == 0 else None
        publisher.publish(JobEvent.progress(str(job.id), percent, preview))
    latest = f"{headline(job.prompt, world.alice)} (90 %)"

    def edits() -> list[Any]:
        return requests(world.env, "PATCH", f"/messages/{waiting.id}")

    await eventually(lambda: any(e.json["content"] == latest for e in edits()), what="the 90 % edit")
    assert 0 < len(edits()) < 10, "progress edits should be throttled and coalesced"
    assert all(
        re.fullmatch(rf"{re.escape(headline(job.prompt, world.alice))} \(\d+ %\)", e.json["content"])
        for e in edits()
    )
    assert any(a["filename"] == "progress.png" for a in edits()[-1].json.get("attachments", []))

    await queue.release()  # the worker's turn now
    message = await wait_for_result(world, job.id)

    # The result: the prompt with every parameter (seed included), who asked, the grid, nine buttons.
    assert message.content == headline(job.prompt, world.alice)
    grid = await attachment_image(message)
    assert message.attachments[0].filename == "grid.png"
    assert grid.format == "PNG" and grid.size == (1344, 768)
    hex_id = job.id.hex
    assert button_rows(message) == [
        [(f"U{i}", f"sj:u:{hex_id}:{i}") for i in range(1, 5)],
        [(f"V{i}", f"sj:v:{hex_id}:{i}") for i in range(1, 5)],
        [("🔄", f"sj:r:{hex_id}")],
    ]
    # The progress message made way for the result; the database knows it was delivered.
    assert waiting.id not in [m.id for m in world.channel.history()]
    delivered = await reload(bot_sessions, job.id)
    assert delivered.status == JobStatus.SUCCEEDED and delivered.delivered_at is not None
    assert delivered.message_id == message.id
    assert await ledger_kinds(bot_sessions, job.id) == [LedgerKind.HOLD, LedgerKind.SETTLE]


async def test_a_bad_prompt_is_a_private_error_and_charges_nothing(world: World, bot_sessions) -> None:  # type: ignore[no-untyped-def]
    result = await world.alice.slash(world.channel, "imagine", prompt="a cat --ar 9:1")

    assert result.ephemeral and result.response is not None
    assert result.response.content == "--ar 9:1 is too wide: use a ratio between 1:4 and 4:1"
    assert world.channel.history() == []  # nothing public
    assert await jobs_of(bot_sessions, world.alice.id) == []
    assert await balance_of(bot_sessions, world.alice.id) == 0  # not even today's grant moved


async def test_a_job_over_the_3_running_plus_10_queued_limit_is_refused(  # type: ignore[no-untyped-def]
    world: World, bot_sessions, queue: GatedQueue
) -> None:
    queue.hold()  # no worker sees these jobs: all 13 stay queued for the whole test
    for number in range(13):
        result = await world.alice.slash(world.channel, "imagine", prompt=f"tiny sketch {number} --q .25")
        assert result.response is not None and result.response.content.startswith("Queued 1 job")
    jobs = await jobs_of(bot_sessions, world.alice.id)
    assert [job.status for job in jobs] == [JobStatus.QUEUED] * 13
    balance = await balance_of(bot_sessions, world.alice.id)

    refused = await world.alice.slash(world.channel, "imagine", prompt="one too many --q .25")

    assert refused.ephemeral and refused.response is not None
    assert refused.response.content.startswith("You have 13 jobs running or waiting and this adds 1")
    assert "the limit is 13" in refused.response.content
    assert len(await jobs_of(bot_sessions, world.alice.id)) == 13
    assert await balance_of(bot_sessions, world.alice.id) == balance


async def test_cancel_refunds_a_job_and_its_message_says_so(  # type: ignore[no-untyped-def]
    world: World, bot_sessions, queue: GatedQueue
) -> None:
    queue.hold()  # still queued when cancelled, however fast the worker is
    await world.alice.slash(world.channel, "imagine", prompt="a slow cathedral --q 2")
    (job,) = await jobs_of(bot_sessions, world.alice.id)
    waiting = world.channel.last_message
    assert waiting is not None

    wrong = await world.alice.slash(world.channel, "cancel", job_id="not-a-job")
    assert wrong.ephemeral and wrong.response is not None
    assert wrong.response.content.startswith("There is no job not-a-job: check the id")
    not_hers = await world.bob.slash(world.channel, "cancel", job_id=str(job.id))
    assert not_hers.response is not None
    assert (
        not_hers.response.content
        == f"Job {job.id} belongs to someone else: you can only cancel your own jobs."
    )

    cancelled = await world.alice.slash(world.channel, "cancel", job_id=str(job.id))

    assert cancelled.ephemeral and cancelled.response is not None
    assert cancelled.response.content.startswith(f"Cancelled job `{job.id}` before it started")
    assert f"all {job.cost} credits are back" in cancelled.response.content
    done = await wait_for_status(bot_sessions, job.id)
    assert done.status == JobStatus.CANCELLED
    assert await ledger_kinds(bot_sessions, job.id) == [LedgerKind.HOLD, LedgerKind.REFUND]
    async with bot_sessions() as session:
        assert (
            await ledger_sum(session, world.alice.id) == await balance_of(bot_sessions, world.alice.id) == 40
        )

    async def shows_cancelled() -> bool:
        return any(
            m.id == waiting.id and m.content.endswith("— cancelled; the credits were refunded")
            for m in world.channel.history()
        )

    await eventually(shows_cancelled, what="the job's message to say it was cancelled")
    again = await world.alice.slash(world.channel, "cancel", job_id=str(job.id))
    assert again.response is not None
    assert again.response.content == f"Job {job.id} has already cancelled: there is nothing to cancel."


async def test_show_reposts_a_result_with_working_buttons(world: World, bot_sessions) -> None:  # type: ignore[no-untyped-def]
    await world.alice.slash(world.channel, "imagine", prompt="a red fox --q .25 --seed 11")
    await world.alice.slash(world.channel, "imagine", prompt="a secret garden --q .25 --private --seed 12")
    public, private = await jobs_of(bot_sessions, world.alice.id)
    original = await wait_for_result(world, public.id)
    await wait_for_result(world, private.id)

    choices = await world.bob.autocomplete(world.channel, "show", "job_id", "")
    assert choices == []  # bob has no results of his own
    choices = await world.alice.autocomplete(world.channel, "show", "job_id", "fox")
    assert [c["value"] for c in choices] == [str(public.id)]

    shown = await world.bob.slash(world.channel, "show", job_id=str(public.id))

    assert not shown.ephemeral and shown.response is not None
    assert shown.response.content == f"{headline(public.prompt, world.alice)} (shown by {world.bob.mention})"
    assert (await attachment_image(shown.response)).size == (1024, 1024)
    assert button_rows(shown.response.message) == button_rows(original)
    click = await world.bob.click(shown.response.message, label="V2")  # live, and checked: not his
    assert click.ephemeral and click.response is not None
    assert click.response.content.startswith(
        f"Only {world.alice.mention} can use the buttons on this result."
    )

    hidden = await world.bob.slash(world.channel, "show", job_id=str(private.id))
    assert hidden.ephemeral and hidden.response is not None
    assert hidden.response.content.startswith(f"There is no job {private.id}")
    mine = await world.alice.slash(world.channel, "show", job_id=str(private.id))
    assert not mine.ephemeral and mine.response is not None and mine.response.attachments


async def test_a_bot_restart_between_submit_and_completion_still_delivers(
    world: World, bot_sessions, bot_settings, queue: GatedQueue
) -> None:  # type: ignore[no-untyped-def]
    env = world.env
    queue.hold()  # the job may not end before the bot is down
    await world.alice.slash(world.channel, "imagine", prompt="a phoenix rising --q .5 --seed 3")
    (job,) = await jobs_of(bot_sessions, world.alice.id)
    waiting = world.channel.last_message
    assert waiting is not None

    # The bot goes down: it hears nothing while the worker finishes the job.
    old_bot = env.bot
    await old_bot.close()
    await queue.release()
    finished = await wait_for_status(bot_sessions, job.id)
    assert finished.status == JobStatus.SUCCEEDED and finished.delivered_at is None

    # A new process comes up: its start-up sweep finds the undelivered result in the database.
    await restart_bot(env, bot_settings, queue)
    message = await wait_for_result(world, job.id)
    await old_bot.engine.dispose()

    assert message.content == headline(job.prompt, world.alice)
    assert (await attachment_image(message)).size == (1024, 1024)
    assert waiting.id not in [m.id for m in world.channel.history()]
    assert (await reload(bot_sessions, job.id)).delivered_at is not None
    click = await world.alice.click(message, label="U4")  # an old button, routed to the new bot
    assert click.response is not None and click.response.content.startswith("Upscale of image 4: queued")


async def test_a_restart_before_the_job_ends_keeps_editing_the_same_message(
    world: World, bot_sessions, bot_settings, queue: GatedQueue
) -> None:  # type: ignore[no-untyped-def]
    queue.hold()  # the job may not end before the new bot is up
    await world.alice.slash(world.channel, "imagine", prompt="a long voyage --q .5 --seed 4")
    (job,) = await jobs_of(bot_sessions, world.alice.id)
    waiting = world.channel.last_message
    assert waiting is not None
    await restart_bot(world.env, bot_settings, queue)
    since = len(world.env.http_requests)
    await queue.release()

    message = await wait_for_result(world, job.id)

    assert message.content == headline(job.prompt, world.alice)
    # The new bot found the message in the database: it went on editing it, then removed it.
    after = world.env.http_requests[since:]
    assert any(r.method == "PATCH" and r.path.endswith(f"/messages/{waiting.id}") for r in after)
    assert any(r.method == "DELETE" and r.path.endswith(f"/messages/{waiting.id}") for r in after)


async def test_a_result_that_ends_after_the_interaction_token_expired_is_delivered(
    world: World, bot_sessions, queue: GatedQueue
) -> None:  # type: ignore[no-untyped-def]
    queue.hold()  # both jobs wait until the clock has moved past the token's life
    await world.alice.slash(world.channel, "imagine", prompt="a patient heron --q .25 --repeat 2")
    first, second = await jobs_of(bot_sessions, world.alice.id)
    asked_at = world.env.now()
    asked_requests = len(world.env.http_requests)
    await world.env.advance_time(16 * 60)  # an interaction token lives 15 minutes
    assert (await reload(bot_sessions, second.id)).status == JobStatus.QUEUED
    await queue.release()

    message = await wait_for_result(world, second.id)

    assert message.created_at - asked_at > dt.timedelta(minutes=15)
    await wait_for_result(world, first.id)

    # The interaction token served within its first seconds only: the deferral, the confirmation
    # and the two waiting messages; the bot's token did everything after.
    def token_calls(requests: list[simcord.HttpLogEntry]) -> list[str]:
        return [r.method for r in requests if "/interactions/" in r.path or "/webhooks/" in r.path]

    assert token_calls(world.env.http_requests[:asked_requests]) == ["POST"] * 4
    assert token_calls(world.env.http_requests[asked_requests:]) == []


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        (403, 50013, "I am not allowed to post in <#{channel}> any more (missing permission)"),
        (404, 10003, "the channel <#{channel}> was deleted"),
    ],
)
async def test_a_result_that_cannot_be_posted_is_marked_and_reported_once_by_info(  # type: ignore[no-untyped-def]
    world: World, bot_sessions, queue: GatedQueue, status: int, code: int, reason: str
) -> None:
    queue.hold()  # the result may not be posted before Discord starts refusing
    await world.alice.slash(world.channel, "imagine", prompt="a lost postcard --q .25 --seed 6")
    (job,) = await jobs_of(bot_sessions, world.alice.id)
    # Discord refuses the result for good: the permission was taken away, or the channel deleted.
    path = f"/channels/{world.channel.id}/messages"
    world.env.inject_error("POST", path, status=status, code=code, message="refused", times=None)
    await queue.release()

    async def marked() -> bool:
        return (await reload(bot_sessions, job.id)).delivery_error is not None

    await eventually(marked, what="the job to be marked undeliverable")
    failed = await reload(bot_sessions, job.id)
    assert failed.status == JobStatus.SUCCEEDED and failed.delivered_at is not None
    assert failed.delivery_error == reason.format(channel=world.channel.id)

    info = await world.alice.slash(world.channel, "info")
    assert info.ephemeral and info.response is not None
    (embed,) = info.response.embeds
    warning = next(f for f in embed.fields if f.name == "⚠️ Results I could not post")
    assert f"`{job.id}`" in (warning.value or "") and reason.format(channel=world.channel.id) in (
        warning.value or ""
    )
    again = await world.alice.slash(world.channel, "info")
    assert again.response is not None
    assert all(f.name != "⚠️ Results I could not post" for f in again.response.embeds[0].fields)


async def test_an_attached_image_becomes_an_image_prompt(world: World, bot_sessions, bot_settings) -> None:  # type: ignore[no-untyped-def]
    picture = png_bytes(300, 200)
    result = await world.alice.slash(
        world.channel,
        "imagine",
        prompt="the same, at dusk --iw 2 --q .25 --seed 8",
        image=("photo.png", picture),
    )
    assert result.response is not None and result.response.content.startswith("Queued 1 job")
    (job,) = await jobs_of(bot_sessions, world.alice.id)
    assert job.spec["image_weight"] == 2.0
    key = job.spec["image_key"]
    assert key.startswith("prompts/") and (bot_settings.resolved_storage_dir / key).exists()

    message = await wait_for_result(world, job.id)

    assert message.content.startswith("🖼️ ") and "--iw 2" in message.content
    assert (await attachment_image(message)).size == (1024, 1024)


@pytest.mark.parametrize(
    ("filename", "data", "expected"),
    [
        ("notes.txt", b"hello", "the attached file is text/plain: attach a PNG, JPEG or WebP image"),
        ("fake.png", b"GIF89a" + b"\0" * 64, "the attached file is not a PNG, JPEG or WebP image"),
        ("huge.png", png_bytes(4097, 8), "the attached image is 4097×8 pixels and the limit is 4096 a side"),
        (
            "heavy.png",
            b"\x89PNG\r\n\x1a\n" + b"\0" * (11 * 1024 * 1024),
            "the attached image is 11 MB and the limit is 10 MB",
        ),
    ],
)
async def test_a_bad_attachment_is_refused_before_anything_is_queued(  # type: ignore[no-untyped-def]
    world: World, bot_sessions, filename: str, data: bytes, expected: str
) -> None:
    result = await world.alice.slash(world.channel, "imagine", prompt="a cat", image=(filename, data))

    assert result.ephemeral and result.response is not None
    assert result.response.content.startswith(expected)
    assert await jobs_of(bot_sessions, world.alice.id) == []
    assert world.channel.history() == []


async def test_iw_without_an_image_is_explained(world: World, bot_sessions) -> None:  # type: ignore[no-untyped-def]
    result = await world.alice.slash(world.channel, "imagine", prompt="a cat --iw 2")
    assert result.response is not None
    assert result.response.content.startswith("--iw weighs an image prompt, and there is none")
    assert await jobs_of(bot_sessions, world.alice.id) == []


async def test_imagine_refuses_a_channel_it_cannot_post_in_before_charging(
    world: World, bot_sessions
) -> None:  # type: ignore[no-untyped-def]
    me = world.guild.me
    assert me is not None
    closed = world.guild.create_text_channel(
        "read-only", overwrites={me: discord.PermissionOverwrite(send_messages=False, attach_files=False)}
    )
    result = await world.alice.slash(closed, "imagine", prompt="a cat")
    assert result.ephemeral and result.response is not None
    assert result.response.content.startswith(
        "I can't post results in this channel: I'm missing the Send Messages, Attach Files permission."
    )
    assert await jobs_of(bot_sessions, world.alice.id) == []


async def test_info_shows_balance_grant_queue_mode_and_defaults(  # type: ignore[no-untyped-def]
    world: World, bot_sessions, queue: GatedQueue
) -> None:
    queue.hold()  # both jobs stay queued while /info looks
    await world.alice.slash(world.channel, "imagine", prompt="a long first job --q 2")
    await world.alice.slash(world.channel, "imagine", prompt="a second one --q .25 --relax")
    first, second = await jobs_of(bot_sessions, world.alice.id)

    info = await world.alice.slash(world.channel, "info")

    assert info.ephemeral and info.response is not None
    fields = {f.name: f.value or "" for f in info.response.embeds[0].fields}
    assert fields["Balance"] == f"{await balance_of(bot_sessions, world.alice.id)} credits"
    assert fields["Today's free credits"] == "40 (received)"
    assert fields["Mode"] == "fast"
    assert fields["Defaults (/settings)"] == "none (the server's defaults)"
    assert fields["Running (0)"] == "none"
    queued = fields["Queued (2)"]
    assert re.search(rf"`{first.id}` a long first job — #1 in fast queue, ETA ~\d+", queued)
    assert re.search(rf"`{second.id}` a second one — #1 in relax queue, ETA ~\d+", queued)

    choices = await world.alice.autocomplete(world.channel, "cancel", "job_id", "second")
    assert [c["value"] for c in choices] == [str(second.id)]
