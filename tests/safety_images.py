"""Real images with real safety scores, for tests of what happens above and below a threshold.

No mocks: the scores come from the real open_nsfw model (`inference.safety.OpenNsfwChecker`), so a
test that sets its threshold just under `skin_blob_score()` sends a real score over it.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw

from inference.safety import OpenNsfwChecker

# A skin-toned ellipse on a warm background: nothing explicit, but the model's most "suspicious"
# flat shape we found (about 0.57; noise scores under 0.002).
SKIN = (210, 150, 120)
BACKGROUND = (180, 120, 100)


@functools.cache
def opennsfw_checker() -> OpenNsfwChecker:
    """The real checker, loaded once per test process."""
    return OpenNsfwChecker()


def skin_blob(size: int = 512) -> Image.Image:
    image = Image.new("RGB", (size, size), BACKGROUND)
    ImageDraw.Draw(image).ellipse((size * 0.15, size * 0.1, size * 0.85, size * 0.95), fill=SKIN)
    return image


@functools.cache
def skin_blob_score(size: int = 512) -> float:
    """`skin_blob(size)`'s real score (about 0.57 at 512 px)."""
    return opennsfw_checker().score([skin_blob(size)])[0]


def noise(size: int = 512, seed: int = 0) -> Image.Image:
    """Uniform RGB noise, what random-weight models render (scores about 0.001)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)
