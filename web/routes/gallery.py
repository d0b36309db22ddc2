"""The gallery's HTML pages: everyone's public results (`/`) and one member's (`/users/{id}`)."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from sojourn.services.gallery import gallery_page
from sojourn.services.profiles import public_profiles
from web.deps import MAX_USER_ID, Filters, Session, Templates
from web.routes.listing import listing_context

router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)


@router.get("/")
async def home(request: Request, session: Session, templates: Templates, query: Filters) -> HTMLResponse:
    page = await gallery_page(session, query)
    # Each thumbnail's caption names its creator: one more query for the page's members.
    profiles = await public_profiles(session, {item.user_id for item in page.items})
    context = {
        "title": "Gallery",
        "heading": None,
        "profiles": profiles,
        **listing_context(request, query, page),
    }
    return templates.TemplateResponse(request, "gallery.html", context)


@router.get("/users/{user_id}")
async def member(
    request: Request, user_id: str, session: Session, templates: Templates, query: Filters
) -> HTMLResponse:
    member_id = parse_user_id(user_id)
    query = dataclasses.replace(query, user_id=member_id)
    page = await gallery_page(session, query)
    profile = (await public_profiles(session, [member_id])).get(member_id)
    name = profile.display_name if profile else None
    heading = f"{name}'s work" if name else "A member's work"
    context = {
        "title": heading,
        "heading": heading,
        "heading_avatar": profile.avatar_url if profile else None,
        "profiles": {},  # the heading names them; every caption would repeat it
        **listing_context(request, query, page),
    }
    return templates.TemplateResponse(request, "gallery.html", context)


def parse_user_id(text: str) -> int:
    """A Discord user id from a URL, or 404 (an id no one can have is simply not here)."""
    if not (0 < len(text) <= 19 and text.isascii() and text.isdigit()) or not 0 < int(text) <= MAX_USER_ID:
        raise HTTPException(404)
    return int(text)
