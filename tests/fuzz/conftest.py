"""Prints how many generated inputs each fuzz property ran (what `make fuzz` is asked to report)."""

from __future__ import annotations

import pytest

from tests.fuzz.profiles import EXAMPLES, PROFILE, inputs_run


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not inputs_run:
        return
    terminalreporter.section(f"fuzz: hypothesis profile {PROFILE}, max_examples={EXAMPLES}")
    for name, count in sorted(inputs_run.items()):
        terminalreporter.write_line(f"{count:>9,} inputs  {name}")
    terminalreporter.write_line(f"{sum(inputs_run.values()):>9,} inputs  in all")
