"""A result's image as a Discord attachment: named for what it is, and under the guild's size limit."""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image as PILImage

from db.models import Job
from sojourn.services.results import is_single_image

JPEG_QUALITY = 92
DEFAULT_FILESIZE_LIMIT = 10 * 1024 * 1024  # outside a guild (or before its limit is known)


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
