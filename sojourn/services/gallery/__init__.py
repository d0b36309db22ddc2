"""The community gallery: one visibility rule, its pages, a result's page, and the showcase."""

from sojourn.services.gallery.cursor import BadCursor
from sojourn.services.gallery.likes import toggle_like
from sojourn.services.gallery.query import (
    GalleryItem,
    GalleryPage,
    GalleryQuery,
    Period,
    Sort,
    gallery_page,
    likes_as_of,
)
from sojourn.services.gallery.search import search_words
from sojourn.services.gallery.server import require_manage_server, set_showcase, set_web_gallery
from sojourn.services.gallery.showcase import record_showcase_message, record_showcase_post, showcase_due
from sojourn.services.gallery.visibility import can_see, set_private, visible_in_gallery

__all__ = [
    "BadCursor",
    "GalleryItem",
    "GalleryPage",
    "GalleryQuery",
    "Period",
    "Sort",
    "can_see",
    "gallery_page",
    "likes_as_of",
    "record_showcase_message",
    "record_showcase_post",
    "require_manage_server",
    "search_words",
    "set_private",
    "set_showcase",
    "set_web_gallery",
    "showcase_due",
    "toggle_like",
    "visible_in_gallery",
]
