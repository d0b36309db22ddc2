"""Reading what the bot did on the simulated Discord."""

from __future__ import annotations

import io
import uuid
from typing import Any

import discord
import simcord
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import FINAL_STATUSES, Job, JobStatus, LedgerEntry, LedgerKind
from tests.bot.conftest import World, eventually


def result_message(channel: simcord.ChannelHandle, job_id: uuid.UUID) -> discord.Message | None:
    """The newest message in the channel whose buttons belong to this job."""
    for message in reversed(channel.history()):
        if any(
            f":{job_id.hex}" in (getattr(child, "custom_id", None) or "")
            for row in message.components
            for child in getattr(row, "children", [])
        ):
            return message
    return None


async def wait_for_result(world: World, job_id: uuid.UUID) -> discord.Message:
    await eventually(
        lambda: result_message(world.channel, job_id) is not None, what=f"the result of {job_id}"
    )
    await world.env.settle()
    message = result_message(world.channel, job_id)
    assert message is not None
    return message


async def wait_for_status(
    sessions: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    statuses: tuple[JobStatus, ...] = FINAL_STATUSES,
) -> Job:
    found: list[Job] = []

    async def reached() -> bool:
        async with sessions() as session:
            job = await session.get(Job, job_id)
        found[:] = [job] if job is not None else []
        return job is not None and job.status in statuses

    await eventually(reached, what=f"job {job_id} to reach {[s.value for s in statuses]}")
    return found[0]


async def reload(sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> Job:
    async with sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def ledger_kinds(sessions: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> list[LedgerKind]:
    async with sessions() as session:
        rows = await session.execute(
            select(LedgerEntry.kind).where(LedgerEntry.job_id == job_id).order_by(LedgerEntry.id)
        )
        return list(rows.scalars())


def button_rows(message: discord.Message) -> list[list[tuple[str, str]]]:
    """(label or emoji, custom_id or url) of every button, row by row."""
    return [
        [
            (child.label or str(child.emoji), child.custom_id or child.url)  # type: ignore[attr-defined]
            for child in row.children
        ]
        for row in message.components
    ]


def requests(env: simcord.Env, method: str, path_end: str = "") -> list[Any]:
    return [r for r in env.http_requests if r.method == method and r.path.endswith(path_end)]


async def attachment_image(message: discord.Message | simcord.ResponseMessage) -> Image.Image:
    data = await message.attachments[0].read()
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_bytes(width: int, height: int, colour: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()
