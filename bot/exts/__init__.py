"""One extension package per feature; each has `async def setup(bot)` in its `__init__`."""

from __future__ import annotations

import pkgutil


def _discover() -> tuple[str, ...]:
    return tuple(f"{__name__}.{module.name}" for module in pkgutil.iter_modules(__path__) if module.ispkg)


EXTENSIONS = _discover()
