"""What `/mod words list` and `/mod words test` show."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.exts.moderation._text import MAX_CONTENT, fit_lines, fit_words
from sojourn.default_words import DEFAULT_WORD_RULES
from sojourn.services.moderation.words import ALLOW, OFF, RULE_ACTIONS, ServerWords
from sojourn.word_filter import WordAction, WordMatch


def words_embed(words: ServerWords) -> discord.Embed:
    """The server's own rules, its allow list and the defaults, each list cut short with a count."""

    def own(action: str) -> list[str]:
        return [row.pattern for row in words.own if row.action == action]

    turned_off = own(OFF)
    if words.defaults_on:
        in_force = len(words.rules) - len([row for row in words.own if row.action in RULE_ACTIONS])
        defaults = (
            f"on: {in_force} of the {len(DEFAULT_WORD_RULES)} shipped rules "
            "(/mod words test checks a prompt against them; /mod settings default_words:False turns them off)"
        )
    else:
        defaults = "off (/mod settings default_words:True turns them on)"
    embed = discord.Embed(title="This server's word list", colour=discord.Colour.orange())
    embed.add_field(name="Blocked", value=fit_words(own(WordAction.BLOCK.value)), inline=False)
    embed.add_field(
        name="Warned about (the job runs, and it is logged)",
        value=fit_words(own(WordAction.WARN.value)),
        inline=False,
    )
    embed.add_field(name="Allow list (never matches)", value=fit_words(own(ALLOW)), inline=False)
    embed.add_field(name="Default word list", value=defaults, inline=False)
    embed.add_field(name="Defaults turned off here", value=fit_words(turned_off), inline=False)
    embed.set_footer(
        text="Add with /mod words add, allow with /mod words allow, remove with /mod words remove."
    )
    return embed


def dry_run_text(matches: Sequence[WordMatch], permutations: int) -> str:
    """Which rule matches which part of the prompt, and what /imagine would do with it."""
    checked = f" (any of its {permutations} permutations)" if permutations > 1 else ""
    if not matches:
        return (
            f"No rule matches this prompt{checked}: /imagine would run it. "
            "This was a dry run; nothing was recorded."
        )
    blocks = any(match.rule.action == WordAction.BLOCK for match in matches)
    verdict = (
        "/imagine would refuse it, and count a strike."
        if blocks
        else "/imagine would run it, and log the warning."
    )
    lines = [
        ("⛔ " if match.rule.action == WordAction.BLOCK else "⚠️ ")
        + discord.utils.escape_markdown(match.describe())
        for match in matches
    ]
    head = f"This prompt{checked} matches:\n"
    tail = f"\n{verdict} This was a dry run; nothing was recorded."
    return head + fit_lines(lines, MAX_CONTENT - len(head) - len(tail)) + tail
