"""Aspect ratios and the SDXL resolution buckets they render at."""

from __future__ import annotations

import math

# About one megapixel each, multiples of 64: the sizes SDXL was trained on.
LANDSCAPE_BUCKETS = ((1152, 896), (1216, 832), (1344, 768), (1536, 640))
SQUARE_BUCKET = (1024, 1024)
# Every size a text-to-image job renders at: the square, then each landscape size and its portrait.
ALL_BUCKETS = (SQUARE_BUCKET, *LANDSCAPE_BUCKETS, *((height, width) for width, height in LANDSCAPE_BUCKETS))
MAX_RATIO = 4  # from 1:4 to 4:1


def resolution_for(width_ratio: int, height_ratio: int) -> tuple[int, int]:
    """The bucket nearest the ratio in log space, never of the other orientation."""
    candidates = [SQUARE_BUCKET]
    if width_ratio > height_ratio:
        candidates += LANDSCAPE_BUCKETS
    elif width_ratio < height_ratio:
        candidates += [(height, width) for width, height in LANDSCAPE_BUCKETS]
    target = math.log(width_ratio / height_ratio)
    return min(candidates, key=lambda bucket: abs(math.log(bucket[0] / bucket[1]) - target))
