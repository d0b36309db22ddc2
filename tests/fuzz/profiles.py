"""How hard the fuzz suite tries: hypothesis profiles sized by `SOJOURN_FUZZ_EXAMPLES`.

`make test` (the variable unset) runs a small, derandomized sample, the same every run, so CI
stays fast and a failure reproduces. `make fuzz` sets it to 100,000: a fresh random search each
run, whose failures hypothesis saves in `.hypothesis/` and replays first next time.
"""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings

DEFAULT_EXAMPLES = 300
EXAMPLES = int(os.environ.get("SOJOURN_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))

_COMMON: dict[str, object] = {
    "max_examples": EXAMPLES,
    "deadline": None,  # a 100,000-character prompt takes longer than hypothesis's default 200 ms
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.large_base_example,
        HealthCheck.data_too_large,
    ],
}
settings.register_profile("sojourn-ci", derandomize=True, database=None, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("sojourn-fuzz", derandomize=False, **_COMMON)  # type: ignore[arg-type]

PROFILE = "sojourn-fuzz" if "SOJOURN_FUZZ_EXAMPLES" in os.environ else "sojourn-ci"
# Applied per test (`@FUZZ`), not loaded globally, so other suites keep their own settings.
FUZZ = settings.get_profile(PROFILE)

# Generated inputs per property, printed at the end of the run (tests/fuzz/conftest.py).
inputs_run: Counter[str] = Counter()
