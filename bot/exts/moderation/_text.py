"""Text that fits where Discord puts it: a prompt's excerpt, an age, a list cut short with a count."""

from __future__ import annotations

from collections.abc import Sequence

import discord

# Discord's limits.
MAX_CONTENT = 2000
MAX_DESCRIPTION = 4096
MAX_FIELD = 1024


def excerpt(text: str, limit: int) -> str:
    """One line of someone's text, at most `limit` characters, markdown shown as typed."""
    line = " ".join(text.split())
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return discord.utils.escape_markdown(line)


def age(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds // 86400} d"


def fit_lines(lines: Sequence[str], limit: int, *, empty: str = "none") -> str:
    """The lines, one per line, as many as fit in `limit` characters, then how many did not."""
    return _fit(lines, "\n", limit, empty)


def fit_words(words: Sequence[str], limit: int = MAX_FIELD, *, empty: str = "none") -> str:
    """`a`, `b`, `c`, as many as fit, then how many did not."""
    return _fit([f"`{word}`" for word in words], ", ", limit, empty)


def _fit(items: Sequence[str], separator: str, limit: int, empty: str) -> str:
    if not items:
        return empty
    shown: list[str] = []
    used = 0
    for item in items:
        after = len(items) - len(shown) - 1  # what would still be left out with this one in
        reserve = len(f"{separator}… and {after} more") if after else 0
        joined = len(item) + (len(separator) if shown else 0)
        if used + joined + reserve > limit:
            break
        shown.append(item)
        used += joined
    left = len(items) - len(shown)
    if left == 0:
        return separator.join(shown)
    more = f"… and {left - (0 if shown else 1)} more"
    if not shown:  # one very long item: cut it rather than show nothing
        room = limit - (len(separator) + len(more) if left > 1 else 0) - 1
        cut = items[0][:room] + "…"
        return cut + (separator + more if left > 1 else "")
    return separator.join([*shown, more])
