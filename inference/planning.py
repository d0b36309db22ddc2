"""How a job's steps split between the base and the refiner, counted as the pipelines will run them.

The counts drive the progress bar (one report per step, base and refiner together), so they follow
the pipelines' own cut-offs rather than a fraction of `steps`.
"""

from __future__ import annotations

from dataclasses import dataclass

from inference.schedulers import Scheduler
from sojourn.spec import JobSpec

REFINER_START = 0.8  # fraction of the schedule the base denoises before the refiner takes over


@dataclass(frozen=True)
class StepPlan:
    """Where the base stops and whether (and where) the refiner runs; step counts for progress."""

    base_end: float | None
    base_steps: int
    refiner_end: float | None
    refiner_steps: int

    @property
    def refine(self) -> bool:
        return self.refiner_steps > 0


def plan_steps(scheduler: Scheduler, steps: int, stop: int) -> StepPlan:
    """Split `steps` between base and refiner as the pipelines will (same timestep cut-offs)."""
    end = min(max(stop, 1), 100) / 100
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps.tolist()
    train_steps = scheduler.config.num_train_timesteps

    def cutoff(fraction: float) -> int:
        return round(train_steps - fraction * train_steps)

    base_end = min(end, REFINER_START)
    base_steps = sum(t >= cutoff(base_end) for t in timesteps)
    refiner_end = end if end < 1 else None
    refiner_steps = 0
    if end > REFINER_START:
        refiner_steps = sum(
            cutoff(REFINER_START) > t >= (cutoff(end) if refiner_end else -1) for t in timesteps
        )
    if refiner_steps == 0:  # e.g. --stop 81: nothing is left for the refiner; the base finishes
        return StepPlan(
            base_end=base_end if base_end < 1 else None,
            base_steps=base_steps,
            refiner_end=None,
            refiner_steps=0,
        )
    return StepPlan(
        base_end=REFINER_START, base_steps=base_steps, refiner_end=refiner_end, refiner_steps=refiner_steps
    )


def img2img_steps(scheduler: Scheduler, steps: int, strength: float, end: float | None) -> int:
    """Steps an img2img pass runs: the strength's share of the schedule, up to `end` (None: all)."""
    scheduler.set_timesteps(steps)
    start = max(steps - min(int(steps * strength), steps), 0)
    timesteps = scheduler.timesteps.tolist()[start * scheduler.order :]
    if end is None:
        return len(timesteps)
    cutoff = round(scheduler.config.num_train_timesteps - end * scheduler.config.num_train_timesteps)
    return sum(t >= cutoff for t in timesteps)


def refine_steps(spec: JobSpec) -> int:
    """The schedule an img2img pass at `spec.strength` is cut from: the job's steps, or more when
    that would leave it no step at all (img2img runs `int(steps × strength)` of them)."""
    steps = spec.steps
    while int(steps * spec.strength) < 1:
        steps += 1
    return steps
