"""A result's PNG files, served only while the result is visible; no URL part reaches a path unchecked."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

from sojourn.services.gallery import can_see
from web.deps import Session, Storage
from web.routes.jobs import parse_job_id

router = APIRouter(include_in_schema=False)

# A result's image never changes under its URL; a result made private or removed drops out of
# caches within a day (and at once from this server: every request is checked again).
CACHE_CONTROL = "public, max-age=86400"
MAX_INDEX = 16


@router.get("/images/{job_id}/{index}.png")
async def image_file(
    request: Request, job_id: str, index: str, session: Session, storage: Storage
) -> Response:
    if not (index.isascii() and index.isdigit() and len(index) <= 2 and int(index) <= MAX_INDEX):
        raise HTTPException(404)
    job = await can_see(session, parse_job_id(job_id), viewer_id=None)
    image = next((image for image in job.images if image.index == int(index)), None) if job else None
    if job is None or image is None:
        raise HTTPException(404)
    etag = f'"{job.id.hex}-{image.index}"'
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    try:
        path = storage.local_path(image.storage_key)  # refuses an unsafe key (ValueError)
    except ValueError:
        raise HTTPException(404) from None
    if path is None or not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, media_type="image/png", headers=headers)
