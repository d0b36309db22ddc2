"""What the gallery's pages share: the filter tabs and the next-page link, as plain URLs."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from sojourn.services.gallery import GalleryPage, GalleryQuery, Period, Sort

SORT_LABELS = {Sort.NEW: "New", Sort.TOP: "Top"}
PERIOD_LABELS = {
    Period.DAY: "Today",
    Period.WEEK: "This week",
    Period.MONTH: "This month",
    Period.ALL: "All time",
}


@dataclass(frozen=True)
class Tab:
    label: str
    url: str
    active: bool


def _url(request: Request, **changes: str) -> str:
    url = request.url.remove_query_params("cursor").include_query_params(**changes)
    return f"{url.path}?{url.query}"


def listing_context(request: Request, query: GalleryQuery, page: GalleryPage) -> dict[str, object]:
    """The template context every gallery page has: its items, tabs, search and next-page link."""
    next_url = None
    if page.next_cursor is not None:
        url = request.url.include_query_params(cursor=page.next_cursor)
        next_url = f"{url.path}?{url.query}"
    return {
        "items": page.items,
        "sorts": [
            Tab(label, _url(request, sort=sort), sort == query.sort) for sort, label in SORT_LABELS.items()
        ],
        "periods": [
            Tab(label, _url(request, period=period), period == query.period)
            for period, label in PERIOD_LABELS.items()
        ],
        "sort": str(query.sort),
        "period": str(query.period),
        "search": query.search or "",
        "next_url": next_url,
        "first_page": query.cursor is None,
    }
