"""A result's page: its images in full, the prompt with every parameter, ❤, and its lineage."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from db.models import Favorite, Job
from sojourn.services.gallery import can_see, visible_in_gallery
from sojourn.services.profiles import public_profiles
from web.deps import Session, Templates

router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)

# The spec's parameters a result's page lists, in this order (absent ones are skipped).
PARAMETERS = (
    ("aspect", "Aspect ratio"),
    ("preset", "Model"),
    ("steps", "Steps"),
    ("guidance", "Guidance"),
    ("stylize", "Stylize"),
    ("chaos", "Chaos"),
    ("weird", "Weird"),
    ("quality", "Quality"),
    ("stop", "Stop"),
    ("tile", "Tile"),
    ("raw", "Raw style"),
    ("scheduler", "Scheduler"),
    ("image_weight", "Image weight"),
    ("negative_prompt", "Negative prompt"),
)


def parse_job_id(text: str) -> uuid.UUID:
    """A job id from a URL, or 404."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise HTTPException(404) from None


@router.get("/jobs/{job_id}")
async def result(request: Request, job_id: str, session: Session, templates: Templates) -> HTMLResponse:
    # Anyone on the web is a stranger: what the galleries hide reads as missing (404), never 403.
    job = await can_see(session, parse_job_id(job_id), viewer_id=None)
    if job is None:
        raise HTTPException(404)
    likes = await session.scalar(
        select(func.count(func.distinct(Favorite.user_id))).where(Favorite.job_id == job.id)
    )
    parent = await can_see(session, job.parent_job_id, viewer_id=None) if job.parent_job_id else None
    children = (
        await session.scalars(
            select(Job.id)
            .where(Job.parent_job_id == job.id, visible_in_gallery())
            .order_by(Job.finished_at)
            .limit(50)
        )
    ).all()
    creator = (await public_profiles(session, [job.user_id])).get(job.user_id)
    # A grid's four images, or an upscale's one; the grid itself (index 0) only if nothing else.
    shown = [image for image in job.images if image.index > 0] or list(job.images)
    spec = job.spec or {}
    parameters = [(label, spec[key]) for key, label in PARAMETERS if spec.get(key) not in (None, "")]
    seed = spec.get("seed")
    if seed is None and shown:
        seed = shown[0].seed
    width, height = spec.get("width"), spec.get("height")
    if (width is None or height is None) and shown:
        width, height = shown[0].width, shown[0].height
    context = {
        "title": job.prompt[:80],
        "job": job,
        "images": shown,
        "parameters": parameters,
        "seed": seed,
        "size": f"{width}×{height}",
        "likes": likes or 0,
        "creator": creator,
        "parent": parent,
        "children": children,
    }
    return templates.TemplateResponse(request, "job.html", context)
