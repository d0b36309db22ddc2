"""A worker's memory as it takes on the derived pipelines (the buttons), and what each action costs.

Run: `.venv/bin/python bench/worker_memory.py [--runs 3]`, one fresh process per run (resident
memory only grows within a process). On tiny random-weight models, built fresh, at real sizes:
a 1024² txt2img grid, then upscale (→ 2048²), Vary (Subtle) and Zoom Out 2× (all on the SDXL
modules already loaded), then Vary (Strong) (Stable unCLIP: an SD 2.1 model, so its encoders,
UNet and VAE cannot be SDXL's). After each stage: process RSS, the bytes of unique parameter and
buffer storage across every loaded pipeline, and module references (unique vs total) to show the
sharing. Then each action's time, median of `--runs` after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
import torch
from PIL import Image
from torch import nn

from inference.models import ModelRegistry
from inference.render import render_job_images
from inference.tiny_models import make_tiny_models
from sojourn.actions import Render
from sojourn.spec import JobSpec, PromptPart, SourceImage

MiB = 1024 * 1024


def module_footprint(registry: ModelRegistry) -> tuple[int, int, int, int]:
    """(unique storage bytes, bytes if nothing were shared, unique modules, module references)."""
    storages: dict[int, int] = {}
    unshared_bytes = 0
    modules: set[int] = set()
    references = 0
    for pipe in registry.loaded_pipelines().values():
        for component in pipe.components.values():
            if not isinstance(component, nn.Module):
                continue
            references += 1
            modules.add(id(component))
            for tensor in [*component.parameters(), *component.buffers()]:
                storage = tensor.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
                unshared_bytes += storage.nbytes()
    return sum(storages.values()), unshared_bytes, len(modules), references


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    process = psutil.Process()

    with tempfile.TemporaryDirectory() as folder:
        registry = ModelRegistry(make_tiny_models(Path(folder)), "cpu")
        grid = JobSpec(prompt=(PromptPart(text="a lighthouse in a storm"),), seed=7)
        rows: list[tuple[str, float, tuple[int, int, int, int], str]] = []

        def stage(name: str) -> None:
            pipelines = ", ".join(registry.loaded_pipelines())
            rows.append((name, process.memory_info().rss / MiB, module_footprint(registry), pipelines))

        stage("(0) nothing loaded")
        source = render_job_images(registry, grid)[1]
        stage("(a) after a txt2img grid")

        link = SourceImage(job_id="0" * 32, index=2, key="-", width=1024, height=1024, seed=8)
        derived = {
            "upscale": grid.model_copy(
                update={
                    "action": Render.UPSCALE,
                    "source": link,
                    "width": 2048,
                    "height": 2048,
                    "images": 1,
                    "strength": 0.3,
                    "seed": 8,
                }
            ),
            "vary_subtle": grid.model_copy(
                update={"action": Render.VARY_SUBTLE, "source": link, "strength": 0.35, "seed": 100}
            ),
            "zoom_out": grid.model_copy(
                update={"action": Render.ZOOM_OUT, "source": link, "zoom": 2.0, "strength": 1.0, "seed": 200}
            ),
            "vary_strong": grid.model_copy(
                update={
                    "action": Render.VARY_STRONG,
                    "source": link,
                    "strength": 0.3,
                    "noise_level": 100,
                    "seed": 300,
                }
            ),
        }
        loads_before_derived = dict(registry.load_counts)
        for name in ("upscale", "vary_subtle", "zoom_out"):
            render_job_images(registry, derived[name], source_image=source)
        stage("(b) + upscale, vary_subtle, zoom_out")
        loads_shared = dict(registry.load_counts)
        render_job_images(registry, derived["vary_strong"], source_image=source)
        stage("(c) + vary_strong (unCLIP)")

        print(f"tiny models, CPU, torch threads {torch.get_num_threads()}")
        print(
            "| stage | RSS (MiB) | unique weights (MiB) | weights if unshared (MiB) "
            "| modules unique / references | pipelines |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        for name, rss, (unique, unshared, modules, references), pipelines in rows:
            print(
                f"| {name} | {rss:.1f} | {unique / MiB:.2f} | {unshared / MiB:.2f} "
                f"| {modules} / {references} | {pipelines or '-'} |"
            )
        print(f"from_pretrained loads: before the derived actions {loads_before_derived}")
        print(f"  after upscale, vary_subtle, zoom_out {loads_shared}")
        print(f"  after vary_strong {dict(registry.load_counts)}")

        timed: dict[str, Callable[[], list[Image.Image]]] = {
            "txt2img grid 4×1024²": lambda: render_job_images(registry, grid),
            "upscale 1024²→2048²": lambda: render_job_images(
                registry, derived["upscale"], source_image=source
            ),
            "vary_subtle 4×1024²": lambda: render_job_images(
                registry, derived["vary_subtle"], source_image=source
            ),
            "zoom_out 2× 4×1024²": lambda: render_job_images(
                registry, derived["zoom_out"], source_image=source
            ),
            "vary_strong 4×1024²": lambda: render_job_images(
                registry, derived["vary_strong"], source_image=source
            ),
        }
        print("\n| action (30 steps) | runs (s) | median (s) |\n| --- | --- | --- |")
        for name, run in timed.items():
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                run()
                times.append(time.perf_counter() - started)
            runs = " ".join(f"{t:.2f}" for t in times)
            print(f"| {name} | {runs} | {statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
