"""What a job costs, computed from the work it asks of a GPU.

cost = ceil(images × megapixels × steps actually run / megapixel_steps_per_credit)

With the default 30 megapixel-steps per credit, a default grid (4 images, ~1 MP, 30 steps)
costs 4 credits, `--q 2` costs 8, `--q .25` costs 2 (7.5 steps, rounded up), and `--stop 50`
halves the steps run.
"""

from __future__ import annotations

import math

from sojourn.settings import Credits
from sojourn.spec import IMAGES_PER_JOB, JobSpec


def job_cost(spec: JobSpec, credits: Credits, images: int = IMAGES_PER_JOB) -> int:
    megapixels = spec.width * spec.height / 1024**2
    steps_run = spec.steps * spec.stop / 100
    return max(1, math.ceil(images * megapixels * steps_run / credits.megapixel_steps_per_credit - 1e-9))
