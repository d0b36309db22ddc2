"""PNG encoding with the parameters embedded, and the 2×2 grid. Pillow only."""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Sequence

from PIL import Image, PngImagePlugin

# zlib's run-length strategy: on photos at 1344×768, ~2× faster than level 3 (the default
# strategy) and 6-16 % smaller, as small as level 6's files (`bench/png_encoding.py`, BENCHMARKS.md).
PNG_COMPRESS_LEVEL = 1  # Z_RLE compresses alike at every level but 0 (none)
PNG_COMPRESS_TYPE = zlib.Z_RLE
THUMBNAIL_SIDE = 384  # the web gallery's tiles: a grid's thumbnail is ~20 KB instead of ~1.5 MB
THUMBNAIL_QUALITY = 80


def encode_png(image: Image.Image, *, parameters: str, metadata: dict[str, object]) -> bytes:
    """PNG with `parameters` (the canonical prompt, as A1111 tools read it) and a JSON `sojourn` chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters)
    info.add_text("sojourn", json.dumps(metadata, sort_keys=True, default=str))
    buffer = io.BytesIO()
    image.save(
        buffer,
        format="PNG",
        pnginfo=info,
        compress_level=PNG_COMPRESS_LEVEL,
        compress_type=PNG_COMPRESS_TYPE,
    )
    return buffer.getvalue()


def encode_thumbnail(image: Image.Image) -> bytes:
    """A WebP of at most `THUMBNAIL_SIDE` px on its longer side (never enlarged), no metadata."""
    thumbnail = image.convert("RGB")
    thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="WEBP", quality=THUMBNAIL_QUALITY, method=4)
    return buffer.getvalue()


def render_grid(images: Sequence[Image.Image], *, cell_scale: float = 0.5) -> Image.Image:
    """2×2 grid for browsing; cells are scaled so the grid is about one image's size.

    The full-resolution images are stored separately, so upscales never crop them back out.
    """
    if len(images) != 4:
        raise ValueError(f"a grid needs 4 images, got {len(images)}")
    width, height = images[0].size
    cell = (max(1, round(width * cell_scale)), max(1, round(height * cell_scale)))
    grid = Image.new("RGB", (cell[0] * 2, cell[1] * 2))
    for position, image in enumerate(images):
        tile = _scaled(image, cell)
        grid.paste(tile.convert("RGB"), ((position % 2) * cell[0], (position // 2) * cell[1]))
    return grid


def _scaled(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` at `size`; exactly half (the grid's usual cell) is a 2×2 box average, ~10× cheaper
    than Lanczos and as good for a browsing grid."""
    if image.size == size:
        return image
    if image.size == (size[0] * 2, size[1] * 2):
        return image.reduce(2)
    return image.resize(size, Image.Resampling.LANCZOS)
