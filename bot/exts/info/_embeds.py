"""The /info card."""

from __future__ import annotations

import discord

from sojourn.services.account import AccountOverview, ActiveJob
from sojourn.services.moderation.bans import describe_ban
from sojourn.services.queue_info import describe_eta

MAX_LISTED = 8  # jobs per section; more are counted
PROMPT_CHARS = 60


def _short(prompt: str) -> str:
    text = prompt.split(" --", 1)[0]
    return discord.utils.escape_markdown(
        text if len(text) <= PROMPT_CHARS else text[: PROMPT_CHARS - 1] + "…"
    )


def _job_line(job: ActiveJob) -> str:
    if job.position is not None:
        where = f"#{job.position} in {job.mode} queue, ETA {describe_eta(job.eta_seconds or 0)}"
    else:
        where = f"{job.progress} %"
    return f"`{job.job_id}` {_short(job.prompt)} — {where}"


def _section(jobs: list[ActiveJob]) -> str:
    if not jobs:
        return "none"
    lines = [_job_line(job) for job in jobs[:MAX_LISTED]]
    if len(jobs) > MAX_LISTED:
        lines.append(f"… and {len(jobs) - MAX_LISTED} more")
    return "\n".join(lines)[:1024]


def account_embed(overview: AccountOverview) -> discord.Embed:
    preferences = overview.preferences
    defaults = preferences.defaults
    colour = discord.Colour.blurple() if overview.ban is None else discord.Colour.red()
    embed = discord.Embed(title="Your sojourn", colour=colour)
    if overview.ban is not None:
        where = "on this server" if overview.ban.guild_id is not None else "on every server"
        embed.add_field(
            name=f"🚫 Banned {where}",
            value=f"You are {describe_ban(overview.ban)}."[:1000]
            + "\nAsk a moderator if you think this is a mistake.",
            inline=False,
        )
    embed.add_field(name="Balance", value=f"{overview.balance} credits")
    grant = "received" if overview.granted_today else "comes with your next job"
    embed.add_field(name="Today's free credits", value=f"{overview.daily_free} ({grant})")
    embed.add_field(name="Mode", value=f"{defaults.mode}{' · remix on' if defaults.remix else ''}")
    embed.add_field(name=f"Running ({len(overview.running)})", value=_section(overview.running), inline=False)
    embed.add_field(name=f"Queued ({len(overview.queued)})", value=_section(overview.queued), inline=False)
    embed.add_field(
        name="Defaults (/settings)",
        value=f"`{defaults.as_parameters()}`" if defaults.as_parameters() else "none (the server's defaults)",
        inline=False,
    )
    if preferences.options or preferences.suffix:
        names = ", ".join(f"--{name}" for name in sorted(preferences.options)) or "none"
        suffix = f"`{preferences.suffix}`" if preferences.suffix else "none"
        embed.add_field(name="/prefer", value=f"options: {names}\nsuffix: {suffix}"[:1024], inline=False)
    if overview.delivery_failures:
        lines = [
            f"`{failure.job_id}` {_short(failure.prompt)}: {failure.reason}. "
            f"/show {failure.job_id} posts it here."
            for failure in overview.delivery_failures[:MAX_LISTED]
        ]
        embed.add_field(name="⚠️ Results I could not post", value="\n".join(lines)[:1024], inline=False)
    return embed
