"""A result's image files, served only while the result is visible; no URL part reaches a path unchecked.

`/images/{job}/{index}.png` is the original; `.webp` its thumbnail, made by the worker beside it
(`sojourn thumbnails` makes those of results older than thumbnails; until then the original is
sent in its place). A file on this host is streamed from disk; one in a bucket is read (in a thread)
and sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

from sojourn.services.gallery import can_see
from sojourn.storage import ImageStorage, thumbnail_key
from web.deps import Session, Storage
from web.routes.jobs import parse_job_id

router = APIRouter(include_in_schema=False)

# A result's image never changes under its URL; a result made private or removed drops out of
# caches within a day (and at once from this server: every request is checked again).
CACHE_CONTROL = "public, max-age=86400"
MAX_INDEX = 16


@router.get("/images/{job_id}/{index}.png")
async def original(request: Request, job_id: str, index: str, session: Session, storage: Storage) -> Response:
    return await _image_file(request, job_id, index, session, storage, thumbnail=False)


@router.get("/images/{job_id}/{index}.webp")
async def thumbnail(
    request: Request, job_id: str, index: str, session: Session, storage: Storage
) -> Response:
    return await _image_file(request, job_id, index, session, storage, thumbnail=True)


async def _image_file(
    request: Request, job_id: str, index: str, session: Session, storage: ImageStorage, *, thumbnail: bool
) -> Response:
    if not (index.isascii() and index.isdigit() and len(index) <= 2 and int(index) <= MAX_INDEX):
        raise HTTPException(404)
    job = await can_see(session, parse_job_id(job_id), viewer_id=None)
    image = next((image for image in job.images if image.index == int(index)), None) if job else None
    if job is None or image is None:
        raise HTTPException(404)
    found: Path | bytes | None = None
    if thumbnail:  # the thumbnail if there is one yet, else the original
        found, media_type = await _stored_file(storage, thumbnail_key(image.storage_key)), "image/webp"
    if found is None:
        found, media_type = await _stored_file(storage, image.storage_key), "image/png"
    if found is None:
        raise HTTPException(404)
    # The ETag names the file sent, so a thumbnail made later replaces the original in caches.
    etag = f'"{job.id.hex}-{image.index}-{media_type.removeprefix("image/")}"'
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if isinstance(found, Path):
        return FileResponse(found, media_type=media_type, headers=headers)
    return Response(found, media_type=media_type, headers=headers)


async def _stored_file(storage: ImageStorage, key: str) -> Path | bytes | None:
    """The key's file on this host, else its bytes from the backend; None if it has none."""
    try:
        path = storage.local_path(key)  # refuses an unsafe key (ValueError)
        if path is not None:
            return path if path.is_file() else None
        return await asyncio.to_thread(storage.get, key)
    except (ValueError, FileNotFoundError):
        return None
