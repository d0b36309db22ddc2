"""Memory of the image-prompt validator on hostile attachments, as the bot process runs it.

Run: `.venv/bin/python bench/hostile_attachments.py [--runs 100]`. Each hostile file of
tests/services/test_hostile_attachments.py (decompression bombs, truncated files, a 60 KB EXIF
block, an animated WebP, SVG and HTML named .png, lying types, an empty file) goes through
`check_declared` + `read_image_prompt` `--runs` times, each case in a fresh process that has
imported the bot (so one case's peak cannot hide another's). Printed per case: what the
validator did, the time per validation, how much the process's peak RSS (`ru_maxrss`) grew over
the runs (the first included), and the peak of Python allocations (`tracemalloc`, a second pass;
Pillow's pixel buffers are C memory and show only in RSS). The last row is the largest image that
is accepted, for scale.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LARGEST = "largest accepted: 4096 × 4096 PNG (for scale)"


def _files() -> dict[str, tuple[str, bytes]]:
    from PIL import Image

    from tests.services.test_hostile_attachments import HOSTILE_FILES

    files = {file.case: (file.content_type, file.data) for file in HOSTILE_FILES}
    buffer = io.BytesIO()
    Image.linear_gradient("L").resize((4096, 4096)).convert("RGB").save(buffer, format="PNG")
    files[LARGEST] = ("image/png", buffer.getvalue())
    return files


def _measure(path: Path, content_type: str, runs: int) -> dict[str, object]:
    """In this process: validate one file `runs` times; the numbers for one row of the table."""
    import bot  # noqa: F401  (the bot process's own imports are the baseline)
    from sojourn.services.image_prompts import ImagePromptError, check_declared, read_image_prompt

    data = path.read_bytes()
    limits = {"max_bytes": 10 * 1024 * 1024, "max_side": 4096}

    def validate() -> str:
        try:
            check_declared(content_type, len(data), max_bytes=limits["max_bytes"])
            prompt = read_image_prompt(data, **limits)
        except ImagePromptError as error:
            return "refused: " + error.message
        return f"accepted ({prompt.width}×{prompt.height}{', first frame' if prompt.animated else ''})"

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    outcomes = {validate() for _ in range(runs)}
    per_run = (time.perf_counter() - started) / runs
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    for _ in range(runs):
        validate()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    (outcome,) = outcomes  # the same answer every time
    return {
        "bytes": len(data),
        "outcome": outcome,
        "ms": per_run * 1000,
        "rss_before_mib": rss_before / 1024,
        "rss_growth_mib": (rss_after - rss_before) / 1024,
        "traced_peak_kib": traced_peak / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)  # the child's one case
    parser.add_argument("--content-type", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.file is not None:
        print(json.dumps(_measure(args.file, args.content_type, args.runs)))
        return

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for number, (case, (content_type, data)) in enumerate(_files().items()):
            path = Path(folder) / f"{number}.bin"
            path.write_bytes(data)  # built here, so a child's baseline holds none of it
            runs = max(1, args.runs // 10) if case == LARGEST else args.runs
            command = [sys.executable, __file__, "--file", str(path), "--content-type", content_type]
            child = subprocess.run(
                [*command, "--runs", str(runs)], check=True, capture_output=True, text=True, cwd=ROOT
            )
            rows.append({**json.loads(child.stdout.splitlines()[-1]), "case": case, "runs": runs})

    print(f"Python {sys.version.split()[0]}; each case in a fresh process that imported the bot")
    print("| case | file | runs | outcome | per validation | peak RSS growth | tracemalloc peak |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for row in rows:
        outcome = str(row["outcome"])
        outcome = outcome if len(outcome) <= 60 else outcome[:59] + "…"
        print(
            f"| {row['case']} | {row['bytes']:,} B | {row['runs']} | {outcome} | {row['ms']:.2f} ms "
            f"| {row['rss_growth_mib']:.1f} MiB | {row['traced_peak_kib']:.0f} KiB |"
        )
    baseline = min(float(str(row["rss_before_mib"])) for row in rows)
    print(f"\nbaseline peak RSS of a process that imported the bot: {baseline:.0f} MiB")


if __name__ == "__main__":
    main()
