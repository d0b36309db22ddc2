"""The samplers a job may name (`JobSpec.scheduler`), each built from a checkpoint's own config."""

from __future__ import annotations

from typing import Any, Protocol

import torch
from diffusers.schedulers.scheduling_ddim import DDIMScheduler
from diffusers.schedulers.scheduling_dpmsolver_multistep import DPMSolverMultistepScheduler
from diffusers.schedulers.scheduling_euler_ancestral_discrete import EulerAncestralDiscreteScheduler
from diffusers.schedulers.scheduling_euler_discrete import EulerDiscreteScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin


class Scheduler(Protocol):
    """What the step planning reads from a scheduler (diffusers' `SchedulerMixin` declares none of it)."""

    order: int
    timesteps: torch.Tensor

    @property
    def config(self) -> Any: ...

    def set_timesteps(self, num_inference_steps: int) -> None: ...


SCHEDULERS: dict[str, tuple[type[SchedulerMixin], dict[str, Any]]] = {
    "dpmpp_2m_karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
    "dpmpp_2m_sde_karras": (
        DPMSolverMultistepScheduler,
        {"use_karras_sigmas": True, "algorithm_type": "sde-dpmsolver++"},
    ),
    "euler_a": (EulerAncestralDiscreteScheduler, {}),
    "euler": (EulerDiscreteScheduler, {}),
    "ddim": (DDIMScheduler, {}),
}


def make_scheduler(name: str, base_config: Any) -> Any:
    """A fresh scheduler by sojourn name, built from a checkpoint's own scheduler config."""
    try:
        cls, options = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}: use one of {', '.join(SCHEDULERS)}") from None
    return cls.from_config(base_config, **options)  # type: ignore[attr-defined]  # ConfigMixin's, on each class
