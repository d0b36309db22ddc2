"""`/api/images`: the gallery as JSON, the same filters and cursors as its pages."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from sojourn.services.gallery import GalleryItem, gallery_page
from sojourn.services.gallery.query import MAX_LIMIT
from web.deps import MAX_USER_ID, Filters, Session

router = APIRouter(prefix="/api", tags=["gallery"])


class ImageOut(BaseModel):
    job_id: uuid.UUID
    image_index: int = Field(description="0: a grid of four; 1-4: one image")
    image_url: str = Field(description="the original PNG")
    thumbnail_url: str = Field(description="a WebP of at most 384 px a side")
    page_url: str = Field(description="the result's page")
    width: int
    height: int
    prompt: str
    # A string: Discord ids exceed JavaScript's exact integers (2^53).
    user_id: str
    created_at: dt.datetime
    finished_at: dt.datetime
    likes: int = Field(description="people who ❤ the result")

    @classmethod
    def of(cls, item: GalleryItem) -> ImageOut:
        return cls(
            job_id=item.job_id,
            image_index=item.image_index,
            image_url=f"/images/{item.job_id}/{item.image_index}.png",
            thumbnail_url=f"/images/{item.job_id}/{item.image_index}.webp",
            page_url=f"/jobs/{item.job_id}",
            width=item.width,
            height=item.height,
            prompt=item.prompt,
            user_id=str(item.user_id),
            created_at=item.created_at,
            finished_at=item.finished_at,
            likes=item.likes,
        )


class ImagesPage(BaseModel):
    items: list[ImageOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


@router.get("/images", summary="Public results, a page at a time")
async def images(
    session: Session,
    query: Filters,
    user_id: Annotated[int | None, Query(ge=1, le=MAX_USER_ID, description="only this member's")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 24,
) -> ImagesPage:
    """Newest (or most ❤) public results first; 400 with `detail` for a bad filter or cursor."""
    page = await gallery_page(session, dataclasses.replace(query, user_id=user_id, limit=limit))
    return ImagesPage(items=[ImageOut.of(item) for item in page.items], next_cursor=page.next_cursor)
