"""GPU throughput of a full-size SDXL job through the worker's own code path, per GPU path setting.

Measures the wall time of `inference.render.render_job_images` for a 4-image 1024×1024 grid at 30
steps (SDXL base 1.0 + refiner 1.0 + the fp16-fix VAE), loaded by `ModelRegistry` as the worker loads them,
once per combination of the settings the worker applies at load time (`SOJOURN_DTYPE` and
`SOJOURN_PERFORMANCE__*`, README "GPU path settings"): fp16 with SDPA (baseline), then bf16, fused QKV
projections, channels_last and torch.compile one at a time, then all of them together.
The models are the real architectures, built from their public configs (written out below) with random
weights: the speed of a forward pass does not depend on the values of the weights. They are saved once with
`save_pretrained` into a work folder (default /tmp/sdxl-random, about 13 GB, fp16) and reused by later runs.
Nothing is downloaded.

    python bench/gpu_sdxl.py                 # on a CUDA machine: every combination, 3 timed grids each
    python bench/gpu_sdxl.py --combos baseline,bf16,fuse_qkv,channels_last --runs 5
    python bench/gpu_sdxl.py --combos compile,all,all-autotune
    python bench/gpu_sdxl.py --check         # anywhere: build every model on the meta device and
                                             # compare parameter counts with the published sizes

Each combination loads a fresh registry, renders the grid's size once as the worker's warm-up does
(`SOJOURN_PERFORMANCE__WARM_BUCKETS`: with compile on, that is the compile, and its seconds are the
start-up cost per bucket), then times `--runs` grids. The table gives load and warm-up seconds, the median
seconds per grid, the ratio to the compute floor from /work/shared/NOTES-diffusers.md (~2.1 s for a 4-image
grid at ~800 TFLOP/s bf16, an H100's or an H200's) and the peak GPU memory. The default combinations should
take about 8 minutes on an H100-class GPU once the models are saved (an estimate; not yet run on one):
under a 10-minute limit per command, run them in two halves with --combos.
Exit codes: 0 done, 1 a parameter count is off by more than 1 %, 2 no GPU (and no --check).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import inspect
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random weights: nothing may be fetched
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

# --- Public configs (config.json of stabilityai/stable-diffusion-xl-base-1.0 and -refiner-1.0) ----------

BASE_UNET: dict[str, Any] = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "class_embed_type": None,
    "class_embeddings_concat": False,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "cross_attention_dim": 2048,
    "cross_attention_norm": None,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "encoder_hid_dim": None,
    "encoder_hid_dim_type": None,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_only_cross_attention": None,
    "mid_block_scale_factor": 1,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "num_attention_heads": None,
    "num_class_embeds": None,
    "only_cross_attention": False,
    "out_channels": 4,
    # 6 micro-conditioning numbers (original size, crop top-left, target size) × 256 + pooled bigG (1280)
    "projection_class_embeddings_input_dim": 2816,
    "resnet_out_scale_factor": 1.0,
    "resnet_skip_time_act": False,
    "resnet_time_scale_shift": "default",
    "sample_size": 128,
    "time_cond_proj_dim": None,
    "time_embedding_act_fn": None,
    "time_embedding_dim": None,
    "time_embedding_type": "positional",
    "timestep_post_act": None,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "upcast_attention": None,
    "use_linear_projection": True,
}

REFINER_UNET: dict[str, Any] = {
    **BASE_UNET,
    "attention_head_dim": [6, 12, 24, 24],
    "block_out_channels": [384, 768, 1536, 1536],
    "cross_attention_dim": 1280,  # bigG only
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    # 5 micro-conditioning numbers (original size, crop top-left, aesthetic score) × 256 + pooled bigG
    "projection_class_embeddings_input_dim": 2560,
    "transformer_layers_per_block": 4,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
}

_CLIP_TEXT_COMMON: dict[str, Any] = {
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "dropout": 0.0,
    "eos_token_id": 2,  # 2 = legacy pooling at argmax(input_ids); the tokenizer's eos is its highest id
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "pad_token_id": 1,
    "vocab_size": 49408,
}

TEXT_ENCODER: dict[str, Any] = {  # CLIPTextModel, OpenAI CLIP ViT-L/14
    **_CLIP_TEXT_COMMON,
    "hidden_act": "quick_gelu",
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "projection_dim": 768,
}

TEXT_ENCODER_2: dict[str, Any] = {  # CLIPTextModelWithProjection, OpenCLIP ViT-bigG/14
    **_CLIP_TEXT_COMMON,
    "hidden_act": "gelu",
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "projection_dim": 1280,
}

VAE: dict[str, Any] = {  # AutoencoderKL; the fp16-fix VAE is the same with force_upcast False
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 1024,
    "scaling_factor": 0.13025,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
}
VAE_FP16_FIX: dict[str, Any] = {**VAE, "force_upcast": False}

SCHEDULER: dict[str, Any] = {  # EulerDiscreteScheduler, as shipped with base and refiner
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "sample_max_value": 1.0,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "use_karras_sigmas": False,
}

# Published sizes (the fp16 safetensors files hold 2 bytes per parameter: base UNet 5.14 GB, refiner UNet
# 4.52 GB — the SDXL report's "2.3B" is that figure rounded —, CLIP-L 246 MB, bigG 1.39 GB, VAE 167 MB).
EXPECTED_PARAMS: dict[str, float] = {
    "base unet": 2.567e9,
    "refiner unet": 2.26e9,
    "text_encoder (CLIP ViT-L)": 123.1e6,
    "text_encoder_2 (OpenCLIP bigG)": 694.7e6,
    "vae": 83.65e6,
}
TOLERANCE = 0.01

# Compute floor, from the NOTES: TFLOP per 1024² image (UNet forward, VAE decode) and an H100's bf16 rate.
TFLOP_PER_STEP_WITH_CFG = 13.5
TFLOP_VAE_DECODE = 10.5
H100_TFLOPS = 800.0
IMAGES_PER_JOB = 4
PROMPT = "a lighthouse on a cliff in a storm, crashing waves, dramatic sky, oil painting"
MARKER = "sojourn-bench.json"


# --- Building -----------------------------------------------------------------------------------------


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def build_models(device: str | torch.device, dtype: torch.dtype) -> dict[str, torch.nn.Module]:
    """Every full-size component, randomly initialised on `device`, directly in `dtype`."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    models: dict[str, torch.nn.Module] = {}

    def make(name: str, factory: Any) -> None:
        with torch.device(device), default_dtype(dtype):  # initialised in place, already half-precision
            models[name] = factory().eval().requires_grad_(False)

    torch.manual_seed(0)
    make("text_encoder", lambda: CLIPTextModel(CLIPTextConfig(**TEXT_ENCODER)))
    make("text_encoder_2", lambda: CLIPTextModelWithProjection(CLIPTextConfig(**TEXT_ENCODER_2)))
    make("unet", lambda: UNet2DConditionModel.from_config(BASE_UNET))
    make("refiner_unet", lambda: UNet2DConditionModel.from_config(REFINER_UNET))
    make("vae", lambda: AutoencoderKL.from_config(VAE))
    return models


def make_pipelines(models: dict[str, torch.nn.Module]) -> tuple[Any, Any]:
    """The base and refiner pipelines, wired as the public repositories are (refiner: bigG only)."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLImg2ImgPipeline, StableDiffusionXLPipeline

    from inference.tiny_models import byte_level_tokenizer  # the project's offline CLIP tokenizer

    tokenizer_2 = byte_level_tokenizer(pad_token="!")  # SDXL's tokenizer_2 pads with "!"
    base = StableDiffusionXLPipeline(
        vae=models["vae"],
        text_encoder=models["text_encoder"],
        text_encoder_2=models["text_encoder_2"],
        tokenizer=byte_level_tokenizer(),
        tokenizer_2=tokenizer_2,
        unet=models["unet"],
        scheduler=EulerDiscreteScheduler.from_config(SCHEDULER),
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
    refiner = StableDiffusionXLImg2ImgPipeline(
        vae=models["vae"],
        text_encoder=None,
        text_encoder_2=models["text_encoder_2"],
        tokenizer=None,
        tokenizer_2=tokenizer_2,
        unet=models["refiner_unet"],
        scheduler=EulerDiscreteScheduler.from_config(SCHEDULER),
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
        add_watermarker=False,
    )
    return base, refiner


def configs_digest() -> str:
    blob = json.dumps([BASE_UNET, REFINER_UNET, TEXT_ENCODER, TEXT_ENCODER_2, VAE, SCHEDULER], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def model_paths(workdir: Path) -> Any:
    from sojourn.settings import ModelPaths

    return ModelPaths(
        base=str(workdir / "sdxl-base"),
        refiner=str(workdir / "sdxl-refiner"),
        vae=str(workdir / "sdxl-vae-fp16-fix"),
        unclip=str(workdir / "unclip-not-built"),  # not used by a text-to-image job
    )


def ensure_saved(workdir: Path, device: torch.device, dtype: torch.dtype) -> Any:
    """Build and save the random-weight folders unless a previous run left them; return their paths."""
    from diffusers import AutoencoderKL

    paths = model_paths(workdir)
    marker = workdir / MARKER
    saved = json.loads(marker.read_text()) if marker.is_file() else {}
    if saved.get("configs") == configs_digest():
        print(f"reusing the random-weight models in {workdir} (saved as {saved.get('dtype')})")
        return paths
    print(f"building full-size SDXL base + refiner with random {dtype} weights on {device} ...", flush=True)
    started = time.perf_counter()
    models = build_models(device, dtype)
    base, refiner = make_pipelines(models)
    built = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    base.save_pretrained(paths.base)
    refiner.save_pretrained(paths.refiner)
    # Stands in for madebyollin/sdxl-vae-fp16-fix: same architecture, no forced fp32 upcast.
    with torch.device(device), default_dtype(dtype):
        fp16_fix = AutoencoderKL.from_config(VAE_FP16_FIX)
    fp16_fix.load_state_dict(models["vae"].state_dict())
    fp16_fix.save_pretrained(paths.vae)
    marker.write_text(json.dumps({"configs": configs_digest(), "dtype": str(dtype)}))
    print(f"built in {built - started:.1f} s, saved in {time.perf_counter() - built:.1f} s")
    del models, base, refiner, fp16_fix
    gc.collect()
    torch.cuda.empty_cache()
    return paths


# --- --check ------------------------------------------------------------------------------------------


def check() -> int:
    """Build every component on the meta device and compare parameter counts with the published sizes."""
    models = build_models("meta", torch.float16)
    make_pipelines(models)  # proves the pipelines accept the components
    counts = {
        "base unet": models["unet"],
        "refiner unet": models["refiner_unet"],
        "text_encoder (CLIP ViT-L)": models["text_encoder"],
        "text_encoder_2 (OpenCLIP bigG)": models["text_encoder_2"],
        "vae": models["vae"],
    }
    failed = False
    print(f"{'component':<32}{'parameters':>16}{'expected':>16}{'off by':>10}")
    for name, module in counts.items():
        n = sum(p.numel() for p in module.parameters())
        expected = EXPECTED_PARAMS[name]
        off = n / expected - 1
        verdict = "ok" if abs(off) <= TOLERANCE else "WRONG"
        failed |= verdict != "ok"
        print(f"{name:<32}{n:>16,}{expected:>16,.0f}{off:>+9.2%}  {verdict}")
    total = sum(sum(p.numel() for p in m.parameters()) for m in counts.values())
    print(f"{'total (one copy of each)':<32}{total:>16,}")
    print(f"configs digest {configs_digest()}")

    from inference.devices import resolve_device, resolve_dtype
    from inference.models import ModelRegistry
    from inference.render import render_job_images

    wanted = ["registry", "spec", "on_progress", "is_cancelled", "preview_every"]
    params = list(inspect.signature(render_job_images).parameters)
    if params[: len(wanted)] != wanted:
        print(f"render_job_images takes {params}, expected {wanted}")
        failed = True
    used = ("preload", "base", "refiner", "load_count")
    missing = [name for name in used if not hasattr(ModelRegistry, name)]
    if missing:
        print(f"ModelRegistry lacks {missing}, which the benchmark uses")
        failed = True
    if "performance" not in inspect.signature(ModelRegistry).parameters:
        print("ModelRegistry takes no `performance` settings, which the combinations set")
        failed = True
    for name in COMBOS:
        dtype_name, performance = combo_settings(name, 1024)  # raises on a field that no longer exists
        print(f"combo {name:<14}{dtype_name:<10}{describe(performance)}")
    print(
        f"worker path: {ModelRegistry.__module__}.{ModelRegistry.__name__}, "
        f"render_job_images{tuple(params)}, "
        f"resolve_device('cpu') = {resolve_device('cpu')}, "
        f"resolve_dtype('float16', …) = {resolve_dtype('float16', resolve_device('cpu'))}"
    )
    print("FAILED" if failed else "all configs match the published sizes")
    return 1 if failed else 0


# --- The benchmark ---------------------------------------------------------------------------------

# Each combination: the dtype, and the `PerformanceSettings` fields that differ from the baseline's.
BASELINE: dict[str, Any] = {"sdpa": True, "fuse_qkv": False, "channels_last": False, "compile": False}
COMBOS: dict[str, tuple[str, dict[str, Any]]] = {
    "baseline": ("float16", {}),
    "bf16": ("bfloat16", {}),
    "fuse_qkv": ("float16", {"fuse_qkv": True}),
    "channels_last": ("float16", {"channels_last": True}),
    "compile": ("float16", {"compile": True}),
    # The worker's defaults with SOJOURN_DTYPE=bfloat16 and SOJOURN_PERFORMANCE__COMPILE=true.
    "all": ("bfloat16", {"fuse_qkv": True, "channels_last": True, "compile": True}),
    # The same, compiled in the slowest-to-compile mode (not in the default list: minutes more).
    "all-autotune": (
        "bfloat16",
        {
            "fuse_qkv": True,
            "channels_last": True,
            "compile": True,
            "compile_mode": "max-autotune-no-cudagraphs",
        },
    ),
}
DEFAULT_COMBOS = ["baseline", "bf16", "fuse_qkv", "channels_last", "compile", "all"]


def combo_settings(name: str, size: int) -> tuple[str, Any]:
    """The dtype and the worker's `PerformanceSettings` of one combination, warming up `size`²."""
    from sojourn.settings import PerformanceSettings

    dtype_name, fields = COMBOS[name]
    return dtype_name, PerformanceSettings(**{**BASELINE, **fields, "warm_buckets": [f"{size}x{size}"]})


def describe(performance: Any) -> str:
    on = [name for name in ("sdpa", "fuse_qkv", "channels_last") if getattr(performance, name)]
    if performance.compile:
        on.append(f"compile={performance.compile_mode}{'/dynamic' if performance.compile_dynamic else ''}")
    return "+".join(on)


def floor_seconds(steps: int, size: int) -> float:
    """The NOTES' compute floor for one grid: FLOPs scale (about) with the pixel count."""
    tflop = IMAGES_PER_JOB * (steps * TFLOP_PER_STEP_WITH_CFG + TFLOP_VAE_DECODE) * (size / 1024) ** 2
    return tflop / H100_TFLOPS


@contextmanager
def timed() -> Iterator[list[float]]:
    result: list[float] = []
    torch.cuda.synchronize()
    started = time.perf_counter()
    yield result
    torch.cuda.synchronize()
    result.append(time.perf_counter() - started)


def looks_degenerate(images: list[Any]) -> bool:
    """All-uniform images mean NaN/inf somewhere (cast to black): worth a warning, not a failure."""
    import numpy as np

    return all(float(np.asarray(image).std()) == 0.0 for image in images)


def run_combo(name: str, paths: Any, device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    """Load a fresh registry with the combination's settings, warm it up, time `args.runs` grids."""
    from inference.devices import resolve_dtype
    from inference.models import ModelRegistry
    from inference.render import render_job_images
    from sojourn.spec import JobSpec, PromptPart

    dtype_name, performance = combo_settings(name, args.size)
    dtype = resolve_dtype(dtype_name, device)
    print(f"\n== {name}: {dtype_name}, {describe(performance)}", flush=True)
    torch.cuda.reset_peak_memory_stats()
    registry = ModelRegistry(paths, device, dtype, performance)
    with timed() as loading:
        _ = registry.refiner  # base, refiner (sharing bigG and the VAE) and the fp16-fix VAE, as a worker
    registry.preload()  # the worker's warm-up: one short grid at the bucket (the compile, if on)
    warm_up = sum(registry.warm_up_seconds.values())
    print(f"load {loading[0]:.1f} s, warm-up {warm_up:.1f} s ({dict(registry.load_counts)})", flush=True)
    spec = JobSpec(
        prompt=(PromptPart(text=PROMPT),), seed=7, width=args.size, height=args.size, steps=args.steps
    )
    loads = registry.load_count
    seconds = []
    for run in range(1, args.runs + 1):
        with timed() as took:
            images = render_job_images(registry, spec, on_progress=None, is_cancelled=None, preview_every=5)
        seconds.append(took[0])
        print(f"run {run}: {took[0]:.3f} s", flush=True)
    if looks_degenerate(images):
        print("warning: every image is uniform (NaN/overflow from random weights?); timings still count")
    if registry.load_count != loads:
        print(f"warning: models were reloaded during the timed runs ({dict(registry.load_counts)})")
    result = {
        "combo": name,
        "dtype": dtype_name,
        "settings": describe(performance),
        "load": loading[0],
        "warm_up": warm_up,
        "median": statistics.median(seconds),
        "min": min(seconds),
        "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30,
    }
    del registry, images
    gc.collect()
    torch.cuda.empty_cache()
    torch._dynamo.reset()  # the next combination compiles its own graphs, within dynamo's limits
    return result


def bench(args: argparse.Namespace) -> int:
    import diffusers
    import transformers

    from inference.devices import resolve_device

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    combos = args.combos.split(",")
    unknown = [name for name in combos if name not in COMBOS]
    if unknown:
        print(f"unknown combination(s) {unknown}: choose from {', '.join(COMBOS)}")
        return 2
    started = time.perf_counter()
    device = resolve_device("cuda")
    paths = ensure_saved(Path(args.workdir), device, torch.float16)
    results = []
    for name in combos:
        results.append(run_combo(name, paths, device, args))
        print(f"({time.perf_counter() - started:.0f} s so far)", flush=True)

    floor = floor_seconds(args.steps, args.size)
    props = torch.cuda.get_device_properties(device)
    print()
    print(f"device        {props.name} ({props.total_memory / 2**30:.0f} GiB)")
    print(
        f"versions      torch {torch.__version__}, diffusers {diffusers.__version__}, "
        f"CUDA {torch.version.cuda}"
    )
    print(
        f"job           {IMAGES_PER_JOB} images {args.size}×{args.size}, {args.steps} steps, "
        f"median of {args.runs} runs; floor {floor:.2f} s at {H100_TFLOPS:.0f} TFLOP/s (NOTES)"
    )
    print()
    columns = ["combination", "dtype", "settings", "load s", "warm-up s", "s/grid", "×floor", "peak GiB"]
    rows = [
        [
            r["combo"],
            r["dtype"],
            r["settings"],
            f"{r['load']:.1f}",
            f"{r['warm_up']:.1f}",
            f"{r['median']:.2f}",
            f"{r['median'] / floor:.2f}",
            f"{r['peak_gib']:.1f}",
        ]
        for r in results
    ]
    widths = [max(len(row[i]) for row in [columns, *rows]) for i in range(len(columns))]
    for row in [columns, ["-" * width for width in widths], *rows]:
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="meta-device build + parameter counts only")
    parser.add_argument(
        "--combos",
        default=",".join(DEFAULT_COMBOS),
        help=f"comma-separated, from: {', '.join(COMBOS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="timed grids per combination (the median is shown)"
    )
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workdir", default="/tmp/sdxl-random")
    parser.add_argument("--size", type=int, default=1024, help="width and height in pixels")
    args = parser.parse_args()

    if args.check:
        return check()
    if not torch.cuda.is_available():
        print("no CUDA GPU here: this benchmark needs one (use --check to verify the configs on any machine)")
        return 2
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
