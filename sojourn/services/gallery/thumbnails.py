"""`sojourn thumbnails`: the web gallery's thumbnails of results made before the worker wrote them.

The worker writes a result's thumbnail beside its shown image (`sojourn.storage.thumbnail_key`)
before the result can be seen; this makes the missing ones once, for every finished result
(private ones too: a result made public later needs its tile). The web app itself writes nothing.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import dataclass

from PIL import Image as PILImage
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Image, Job, JobStatus
from sojourn.imaging import encode_thumbnail
from sojourn.services.gallery.query import shown_index
from sojourn.storage import ImageStorage, thumbnail_key

BATCH = 500


@dataclass(frozen=True)
class ThumbnailCount:
    made: int  # thumbnails written now
    present: int  # already there
    missing_original: int  # the image file itself is gone (deleted, or another host's storage)


async def make_missing_thumbnails(
    sessions: async_sessionmaker[AsyncSession], storage: ImageStorage
) -> ThumbnailCount:
    made = present = missing = 0
    after = uuid.UUID(int=0)
    while True:
        async with sessions() as session:
            batch = (
                await session.execute(
                    select(Job.id, Image.storage_key)
                    .join_from(Job, Image, and_(Image.job_id == Job.id, Image.index == shown_index(Job.kind)))
                    .where(Job.status == JobStatus.SUCCEEDED, Job.id > after)
                    .order_by(Job.id)
                    .limit(BATCH)
                )
            ).all()
        for _, key in batch:
            outcome = await asyncio.to_thread(_make_one, storage, key)
            made += outcome == "made"
            present += outcome == "present"
            missing += outcome == "missing"
        if len(batch) < BATCH:
            return ThumbnailCount(made=made, present=present, missing_original=missing)
        after = batch[-1][0]


def _make_one(storage: ImageStorage, key: str) -> str:
    if storage.exists(thumbnail_key(key)):
        return "present"
    if not storage.exists(key):
        return "missing"
    with PILImage.open(io.BytesIO(storage.get(key))) as image:
        storage.put(thumbnail_key(key), encode_thumbnail(image))
    return "made"
