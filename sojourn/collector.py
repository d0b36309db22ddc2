"""The garbage collector's settings for a long-running process once its startup is done."""

from __future__ import annotations

import gc

# Python's thresholds are 700, 10, 10. With startup frozen out of its count, a bot process ran a
# full collection every few seconds of a burst, 15-25 ms each, and one in a 200-burst's first
# 50 ms put ~30 ms on its p99 to defer (BENCHMARKS.md, "Defer path"): young collections 7x rarer,
# and a full one only after 100 middle ones.
THRESHOLDS = (5_000, 20, 100)


def freeze_startup() -> None:
    """Move everything alive now out of the collector's reach, and collect less often from now on.

    Startup's modules, caches and models are long-lived: unfrozen, a full collection during a
    burst walked ~600k of them in one 300 ms pause that every pending request waited out.
    """
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
