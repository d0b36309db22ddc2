"""Where the models run and in which precision, from the `device` and `dtype` settings."""

from __future__ import annotations

import torch

DTYPES = {
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float32": torch.float32,
    "fp32": torch.float32,
}


def resolve_device(setting: str | torch.device = "auto") -> torch.device:
    """`auto` is the first CUDA GPU when there is one, else the CPU."""
    if isinstance(setting, torch.device):
        return setting
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device is set to {setting!r} but no CUDA GPU is visible: set SOJOURN_DEVICE=cpu")
    return device


def resolve_dtype(setting: str | torch.dtype, device: torch.device) -> torch.dtype:
    """`auto` is float16 on CUDA, float32 elsewhere."""
    if isinstance(setting, torch.dtype):
        return setting
    if setting == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    try:
        return DTYPES[setting]
    except KeyError:
        raise ValueError(f"unknown dtype {setting!r}: use auto, float16, bfloat16 or float32") from None
