"""PNG encoding of one rendered image: time and size per zlib setting, and the grid's downscale.

Run: `.venv/bin/python bench/png_encoding.py PHOTO...` with photos (any format; each is resized to
SDXL's 1344×768, as a render would be). Random-weight test models draw noise, which no setting
compresses, so judge on real pictures. Prints medians of `--repeat` runs on one thread.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import zlib
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sojourn.imaging import render_grid

SETTINGS = {
    "level 6 (Pillow's default)": {"compress_level": 6},
    "level 3": {"compress_level": 3},
    "level 1": {"compress_level": 1},
    "level 1, Z_RLE": {"compress_level": 1, "compress_type": zlib.Z_RLE},
    "level 1, Z_FILTERED": {"compress_level": 1, "compress_type": zlib.Z_FILTERED},
    "level 0 (stored)": {"compress_level": 0},
}


def median_ms(work, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def report(image: Image.Image, repeat: int) -> None:
    for name, options in SETTINGS.items():
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", **options)
        took = median_ms(lambda: image.save(io.BytesIO(), format="PNG", **options), repeat)  # noqa: B023
        print(f"  {name:<28} {took:7.1f} ms  {len(buffer.getvalue()) / 1e6:5.2f} MB")
    four = [image] * 4
    lanczos = median_ms(lambda: [i.resize((672, 384), Image.Resampling.LANCZOS) for i in four], repeat)
    grid = median_ms(lambda: render_grid(four), repeat)
    print(f"  grid of 4: Lanczos cells {lanczos:.1f} ms; render_grid {grid:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("photos", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    for path in args.photos:
        print(f"{path.name} at 1344×768")
        report(Image.open(path).convert("RGB").resize((1344, 768), Image.Resampling.LANCZOS), args.repeat)


if __name__ == "__main__":
    main()
