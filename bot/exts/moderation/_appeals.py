"""`/mod appeals`: blocked prompts their authors appealed, with Accept / Reject, and telling them.

A button's custom_id carries the decision and the appeal (`sj:mod:appeal:<decision>:<appeal id>`);
`appeals` reloads the appeal and checks the press (a moderator of its server, still pending, so a
double click runs the prompt once). The author is told in the channel where they typed the
prompt, mentioned alone, since their direct messages may be closed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.errors import errors_as_replies
from bot.exts.moderation._actor import actor_of
from bot.exts.moderation._page import Page
from bot.exts.moderation._text import excerpt
from db.models import Strike
from sojourn.services.moderation.appeals import (
    Decision,
    PendingAppeal,
    accept_appeal,
    pending_appeals,
    reject_appeal,
)
from sojourn.services.moderation.permissions import Actor

if TYPE_CHECKING:
    from bot.bot import SojournBot

SHOWN = 5  # a row of two buttons each, within Discord's five rows and 6000 characters of embeds
DECISIONS = ("accept", "reject")
APPEAL_DECISION_TEMPLATE = rf"sj:mod:appeal:(?P<decision>{'|'.join(DECISIONS)}):(?P<appeal>[0-9]{{1,18}})"


class AppealDecisionButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=APPEAL_DECISION_TEMPLATE):
    def __init__(self, decision: str, appeal_id: int, number: int = 1) -> None:
        accept = decision == "accept"
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.success if accept else discord.ButtonStyle.danger,
                label=f"{'Accept' if accept else 'Reject'} {number}",
                custom_id=f"sj:mod:appeal:{decision}:{appeal_id}",
                row=(number - 1) % SHOWN,
            )
        )
        self.decision = decision
        self.appeal_id = appeal_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> AppealDecisionButton:
        return cls(match["decision"], int(match["appeal"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = cast("SojournBot", interaction.client)
        async with errors_as_replies(interaction):
            await interaction.response.defer()
            actor = actor_of(interaction)
            if self.decision == "accept":
                decision = await accept_appeal(bot.sessions, bot.settings, bot.queue, actor, self.appeal_id)
                note = await _run_accepted(bot, decision)
            else:
                decision = await reject_appeal(bot.sessions, actor, self.appeal_id)
                note = await _tell_rejected(bot, decision)
            await (await appeals_page(bot, actor, note=note)).replace(interaction)


async def _tell_member(bot: SojournBot, strike: Strike, text: str) -> str:
    """Post `text` to the prompt's author where they typed it; says how it went, for the moderator."""
    if strike.channel_id is None:
        return "I could not tell them: the prompt's channel is unknown."
    channel = bot.get_partial_messageable(strike.channel_id, guild_id=strike.guild_id)
    try:
        await channel.send(
            f"<@{strike.user_id}> {text}",
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=[discord.Object(strike.user_id)]
            ),
        )
    except discord.HTTPException as error:
        return (
            f"I could not tell them in <#{strike.channel_id}> (Discord said {error.status}): "
            "tell them yourself."
        )
    return f"They were told in <#{strike.channel_id}>."


async def _run_accepted(bot: SojournBot, decision: Decision) -> str:
    """Show the accepted prompt's jobs as /imagine does, and tell its author; the moderator's note."""
    appeal, strike = decision.appeal, decision.strike
    if decision.problem is not None:
        problem = decision.problem.rstrip(".") + "."
        told = await _tell_member(
            bot,
            strike,
            "a moderator accepted your appeal and lifted the strike, but the prompt could not run: "
            f"{problem} Nothing was charged; change that and /imagine it again.",
        )
        return (
            f"Accepted appeal #{appeal.id} of <@{strike.user_id}>: the strike is lifted, but the prompt "
            f"could not run: {problem} Nothing was charged. {told}"
        )
    if strike.channel_id is not None:
        channel = bot.get_partial_messageable(strike.channel_id, guild_id=strike.guild_id)
        await bot.delivery.announce(decision.jobs, channel)
    held = sum(job.cost for job in decision.jobs)
    noun = "job" if len(decision.jobs) == 1 else "jobs"
    told = await _tell_member(
        bot,
        strike,
        f"a moderator accepted your appeal: the strike is lifted and your prompt runs now "
        f"({len(decision.jobs)} {noun}, {held} credits held). The result will appear here.",
    )
    ids = ", ".join(f"`{job.id}`" for job in decision.jobs)
    return (
        f"Accepted appeal #{appeal.id} of <@{strike.user_id}>: the strike is lifted and the prompt runs "
        f"({ids}; {held} credits held from them). {told}"
    )


async def _tell_rejected(bot: SojournBot, decision: Decision) -> str:
    told = await _tell_member(
        bot,
        decision.strike,
        "a moderator rejected your appeal of a blocked prompt: the strike stays. Rephrase the prompt "
        "and try again, or ask a moderator why.",
    )
    return f"Rejected appeal #{decision.appeal.id} of <@{decision.strike.user_id}>: the strike stays. {told}"


def _embed(number: int, pending: PendingAppeal) -> discord.Embed:
    appeal, strike = pending.appeal, pending.strike
    embed = discord.Embed(
        title=f"{number}. Appeal #{appeal.id}",
        description=f"<@{appeal.user_id}> · <t:{int(appeal.created_at.timestamp())}:R>"
        + (f" · in <#{strike.channel_id}>" if strike.channel_id else ""),
        colour=discord.Colour.orange(),
    )
    embed.add_field(name="Prompt", value=excerpt(strike.prompt, 300) or "—", inline=False)
    embed.add_field(name="Blocked by", value=excerpt(strike.detail, 300) or "—", inline=False)
    embed.add_field(name="Their reason", value=excerpt(appeal.reason, 400) or "—", inline=False)
    return embed


def render_appeals(pending: Sequence[PendingAppeal], *, note: str = "") -> Page:
    head = f"{note}\n" if note else ""
    if not pending:
        return Page(content=head + "No appeals are waiting on this server.")
    shown = pending[:SHOWN]
    if len(pending) > SHOWN:
        head += f"The {SHOWN} oldest appeals; more are waiting: decide these, then run /mod appeals again.\n"
    head += (
        "Accept runs the prompt now (charged now) and lifts the strike; Reject keeps the strike. "
        "Its author is told either way."
    )
    view = discord.ui.View(timeout=None)
    for number, item in enumerate(shown, 1):
        view.add_item(AppealDecisionButton("accept", item.appeal.id, number))
        view.add_item(AppealDecisionButton("reject", item.appeal.id, number))
    return Page(
        content=head, embeds=[_embed(number, item) for number, item in enumerate(shown, 1)], view=view
    )


async def appeals_page(bot: SojournBot, actor: Actor, *, note: str = "") -> Page:
    return render_appeals(await pending_appeals(bot.sessions, actor, limit=SHOWN + 1), note=note)
