"""What the routes depend on: a read-only session, the image storage, the templates, the filters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from sojourn.services.gallery import GalleryQuery, Period, Sort
from sojourn.storage import ImageStorage

MAX_SEARCH_CHARS = 200
MAX_USER_ID = 2**63 - 1  # Discord ids are 64-bit; beyond this Postgres' bigint would fail


async def read_only_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, its transaction read-only where the database can say so."""
    async with request.app.state.sessions() as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("SET TRANSACTION READ ONLY"))
        yield session


def image_storage(request: Request) -> ImageStorage:
    storage: ImageStorage = request.app.state.storage
    return storage


def templates(request: Request) -> Jinja2Templates:
    found: Jinja2Templates = request.app.state.templates
    return found


def gallery_filters(
    sort: Annotated[str, Query(description="new (newest first) or top (most ❤ first)")] = Sort.NEW,
    period: Annotated[str, Query(description="day, week, month or all")] = Period.ALL,
    q: Annotated[str | None, Query(max_length=MAX_SEARCH_CHARS, description="words of the prompt")] = None,
    cursor: Annotated[
        str | None, Query(max_length=1000, description="`next_cursor` of the previous page")
    ] = None,
) -> GalleryQuery:
    """The gallery's filters, read the same way by every page and the API (checked by the service)."""
    return GalleryQuery(
        sort=sort, period=period, search=q if q and q.strip() else None, cursor=cursor or None
    )


Session = Annotated[AsyncSession, Depends(read_only_session)]
Storage = Annotated[ImageStorage, Depends(image_storage)]
Templates = Annotated[Jinja2Templates, Depends(templates)]
Filters = Annotated[GalleryQuery, Depends(gallery_filters)]
