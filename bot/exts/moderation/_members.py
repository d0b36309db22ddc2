"""What `/mod ban`, `/mod unban`, `/mod credits` and `/mod user` say about a member."""

from __future__ import annotations

import discord

from bot.exts.moderation._text import MAX_FIELD, age, excerpt, fit_lines
from db.models import Ban
from sojourn.clock import utcnow
from sojourn.errors import discord_time
from sojourn.services.moderation.bans import BanOutcome, describe_ban
from sojourn.services.moderation.members import Grant, MemberReport

PROMPT_CHARS = 60


def banned_text(user_id: int, outcome: BanOutcome) -> str:
    ban = outcome.ban
    until = f"until {discord_time(ban.ends_at)}" if ban.ends_at else "until unbanned"
    reason = f" (reason: {ban.reason})" if ban.reason else ""
    cancelled = len(outcome.cancelled)
    jobs = (
        f" {cancelled} of their jobs here {'was' if cancelled == 1 else 'were'} cancelled and refunded."
        if cancelled
        else ""
    )
    return (
        f"<@{user_id}> is banned from sojourn on this server {until}{reason}.{jobs} "
        "Their commands and buttons are refused with the reason and the end; /mod unban lifts it."
    )


def unbanned_text(user_id: int, count: int) -> str:
    bans = "the ban" if count == 1 else f"{count} bans"
    return f"Lifted {bans} on <@{user_id}>: they can use sojourn on this server again."


def granted_text(user_id: int, asked: int, grant: Grant) -> str:
    if not grant.applied:
        return (
            f"That grant was already made (Discord delivered the command twice): nothing more moved. "
            f"<@{user_id}> has {grant.balance} credits."
        )
    if grant.amount > 0:
        return f"Gave <@{user_id}> {grant.amount} credits; they now have {grant.balance}."
    stopped = f" (you asked for {-asked}; a balance stops at 0)" if grant.amount != asked else ""
    return f"Took {-grant.amount} credits from <@{user_id}>{stopped}; they now have {grant.balance}."


def _ban_line(ban: Ban) -> str:
    now = utcnow()
    if ban.lifted_at is not None:
        state = f"lifted {discord_time(ban.lifted_at)}"
    elif ban.ends_at is not None and ban.ends_at <= now:
        state = "ended"
    else:
        state = "in force"
    scope = "" if ban.guild_id is not None else " (from every server)"
    by = f" by <@{ban.banned_by}>" if ban.banned_by else " by sojourn (strikes)"
    return f"<t:{int(ban.created_at.timestamp())}:d>{by}{scope}: {describe_ban(ban)} — {state}"


def report_embed(report: MemberReport) -> discord.Embed:
    """`/mod user`: everything a moderator needs about one member here."""
    embed = discord.Embed(
        title="Member report", description=f"<@{report.user_id}>", colour=discord.Colour.orange()
    )
    embed.add_field(name="Balance", value=f"{report.balance} credits")
    embed.add_field(
        name="Strikes",
        value=f"{report.strikes_in_window} in the last {report.window_hours} h "
        f"({report.strikes_before_ban} within {report.window_hours} h ban automatically)",
    )
    embed.add_field(
        name="Ban", value=describe_ban(report.active_ban) if report.active_ban else "not banned", inline=False
    )
    embed.add_field(
        name="Recent bans",
        value=fit_lines([_ban_line(ban) for ban in report.bans], MAX_FIELD),
        inline=False,
    )
    blocks = [
        f"<t:{int(strike.created_at.timestamp())}:R> “{excerpt(strike.prompt, PROMPT_CHARS)}”: "
        f"{excerpt(strike.detail, 150)}" + (" — lifted on appeal" if strike.revoked_at else "")
        for strike in report.blocks
    ]
    embed.add_field(name="Recent blocked prompts", value=fit_lines(blocks, MAX_FIELD), inline=False)
    jobs = [
        f"`{job.id}` {job.status.value}, {age((utcnow() - job.queued_at).total_seconds())} ago: "
        f"“{excerpt(job.prompt, PROMPT_CHARS)}”" + (" (deleted)" if job.removed_at else "")
        for job in report.jobs
    ]
    embed.add_field(name="Recent jobs here", value=fit_lines(jobs, MAX_FIELD), inline=False)
    return embed
