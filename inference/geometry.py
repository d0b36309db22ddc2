"""Image geometry for the renderers: fitting, unCLIP's working size, zoom out's canvas and mask."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageOps

UNCLIP_PIXELS = 768 * 768  # Stable unCLIP 2.1's training resolution; larger only costs time
ZOOM_OVERLAP = 8  # px of the pasted source that the inpainting mask covers, so the seam blends

Box = tuple[int, int, int, int]  # left, top, right, bottom


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """`image` cropped to the aspect of `width`×`height` (centred) and resized to it."""
    return ImageOps.fit(image.convert("RGB"), (width, height), Image.Resampling.LANCZOS)


def unclip_size(width: int, height: int) -> tuple[int, int]:
    """The output's aspect at no more than unCLIP's 768² pixels, in multiples of 64."""
    scale = min(1.0, math.sqrt(UNCLIP_PIXELS / (width * height)))
    return max(64, int(width * scale) // 64 * 64), max(64, int(height * scale) // 64 * 64)


def zoom_out_canvas(
    source: Image.Image, width: int, height: int, zoom: float
) -> tuple[Image.Image, Image.Image, Box]:
    """The canvas, the mask (white: paint) and the box of the source on the canvas.

    The source, fitted into the output and shrunk by `zoom`, sits in the centre; its edge pixels
    extend outwards to fill the border, so the colours there are plausible before inpainting.
    The mask covers the border and `ZOOM_OVERLAP` px of the source's edge.
    """
    scale = min(width / source.width, height / source.height) / zoom
    inner_w, inner_h = max(1, round(source.width * scale)), max(1, round(source.height * scale))
    left, top = (width - inner_w) // 2, (height - inner_h) // 2
    shrunk = np.asarray(source.convert("RGB").resize((inner_w, inner_h), Image.Resampling.LANCZOS))
    padding = ((top, height - inner_h - top), (left, width - inner_w - left), (0, 0))
    canvas = Image.fromarray(np.pad(shrunk, padding, mode="edge"))
    mask = np.full((height, width), 255, dtype=np.uint8)
    keep = _inset((left, top, left + inner_w, top + inner_h), ZOOM_OVERLAP)
    mask[keep[1] : keep[3], keep[0] : keep[2]] = 0
    return canvas, Image.fromarray(mask), (left, top, left + inner_w, top + inner_h)


def paste_centre(image: Image.Image, canvas: Image.Image, box: Box) -> Image.Image:
    """`image` with the canvas's unmasked centre (the source, inset by the overlap) pasted back."""
    keep = _inset(box, ZOOM_OVERLAP)
    if keep[2] <= keep[0] or keep[3] <= keep[1]:
        return image
    result = image.copy()
    result.paste(canvas.crop(keep), keep[:2])
    return result


def _inset(box: Box, by: int) -> Box:
    left, top, right, bottom = box
    return left + by, top + by, max(left + by, right - by), max(top + by, bottom - by)
