"""A result's image as a Discord attachment: named for what it is, and under the guild's size limit;
and the blurred stand-in a held result shows instead."""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image as PILImage
from PIL import ImageFilter

from db.models import Job
from sojourn.services.results import is_single_image

JPEG_QUALITY = 92
DEFAULT_FILESIZE_LIMIT = 10 * 1024 * 1024  # outside a guild (or before its limit is known)
# A held result's preview keeps colours and rough shapes, never detail: the image is shrunk to
# HELD_DETAIL px on its long side (every finer feature is averaged away), then shown at HELD_SIDE px,
# blurred again so that even the shrunken pixels do not show as blocks.
HELD_DETAIL = 16
HELD_SIDE = 128
HELD_BLUR_RADIUS = 6
HELD_FILENAME = "held.png"


def upload_stem(job: Job) -> str:
    """The attachment's name: `grid` for a 2×2 grid, `image` for a single image."""
    return "image" if is_single_image(job) else "grid"


def grid_upload(read: Callable[[str], bytes], key: str, limit: int, stem: str = "grid") -> tuple[bytes, str]:
    """The image as stored (PNG), or as a high-quality JPEG when the PNG is over the upload limit."""
    png = read(key)
    if len(png) <= limit:
        return png, f"{stem}.png"
    with PILImage.open(io.BytesIO(png)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue(), f"{stem}.jpg"


def blurred_preview(read: Callable[[str], bytes], key: str) -> bytes:
    """A small, heavily blurred PNG of the stored image, for a result held for review."""
    with PILImage.open(io.BytesIO(read(key))) as image:
        image.draft("RGB", (HELD_DETAIL * 4, HELD_DETAIL * 4))  # a JPEG decodes small from the start
        coarse = image.convert("RGB")
    coarse.thumbnail((HELD_DETAIL, HELD_DETAIL), PILImage.Resampling.BOX)
    scale = HELD_SIDE / max(coarse.size)
    size = (max(1, round(coarse.width * scale)), max(1, round(coarse.height * scale)))
    shown = coarse.resize(size, PILImage.Resampling.BILINEAR)
    shown = shown.filter(ImageFilter.GaussianBlur(HELD_BLUR_RADIUS))
    buffer = io.BytesIO()
    shown.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
