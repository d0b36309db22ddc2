"""The worker's pipeline alone on tiny models: 4 images at a real SDXL bucket, default steps.

Run: `.venv/bin/python bench/tiny_render.py [--runs 3] [--threads N]`. Prints each run, the
median, and the model-load counters (which must not move after the first render).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from inference.models import ModelRegistry
from inference.render import render_job_images
from sojourn.bootstrap import ensure_runnable_models
from sojourn.settings import Settings
from sojourn.spec import JobSpec, PromptPart


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--size", default="1024x1024")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(side) for side in args.size.split("x"))

    models = ensure_runnable_models(Settings(data_dir=Path(".sojourn"))).models
    registry = ModelRegistry(models, "cpu")
    spec = JobSpec(prompt=(PromptPart(text="a lighthouse in a storm"),), seed=7, width=width, height=height)
    render_job_images(registry, spec)  # warm-up: loads the models
    loads = dict(registry.load_counts)
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        render_job_images(registry, spec)
        times.append(time.perf_counter() - started)
    print(f"4 images {width}x{height}, {spec.steps} steps, torch threads {torch.get_num_threads()}")
    print("runs (s):", " ".join(f"{t:.2f}" for t in times), f"  median {statistics.median(times):.2f} s")
    print(f"model loads after warm-up {loads}, after the runs {dict(registry.load_counts)}")


if __name__ == "__main__":
    main()
