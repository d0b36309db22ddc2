from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.appeal import answer_appeal_form
from bot.exts.moderation._actor import actor_of
from bot.exts.moderation._appeals import appeals_page
from bot.exts.moderation._log import LogQuery, log_page
from bot.exts.moderation._members import banned_text, granted_text, report_embed, unbanned_text
from bot.exts.moderation._page import Page, answering
from bot.exts.moderation._queue import queue_page
from bot.exts.moderation._review import review_page
from bot.exts.moderation._settings import SettingsAsked, apply_settings, settings_text
from bot.exts.moderation._words import dry_run_text, words_embed
from sojourn.prompt.errors import PromptError
from sojourn.prompt.permutations import expand_permutations
from sojourn.services.moderation import bans, members, removal
from sojourn.services.moderation import words as word_lists  # `words` is the commands' option
from sojourn.services.moderation.audit_log import AuditAction
from sojourn.services.moderation.members import MAX_GRANT
from sojourn.settings import SafetyMode
from sojourn.word_filter import WordAction

if TYPE_CHECKING:
    from bot.bot import SojournBot

LOG_KINDS = [
    app_commands.Choice(name=action.value.replace("_", " "), value=action.value) for action in AuditAction
]
SAFETY_MODES = [app_commands.Choice(name=mode.value, value=mode.value) for mode in SafetyMode]


class Moderation(commands.Cog):
    """`/mod`: every command answers privately, and every one is checked by the services, whatever
    Discord's `default_permissions` show (a server admin can make the command visible to anyone)."""

    def __init__(self, bot: SojournBot) -> None:
        self.bot = bot

    mod = app_commands.Group(
        name="mod",
        description="Moderate sojourn on this server (moderators only)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )
    words_group = app_commands.Group(name="words", description="This server's word filter", parent=mod)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        await answer_appeal_form(interaction)

    # --- members ------------------------------------------------------------------------------------

    @mod.command(
        name="ban", description="Ban a member from sojourn here; their jobs here are cancelled, refunded"
    )
    @app_commands.describe(
        user="Who",
        hours="How long (leave out: until /mod unban)",
        reason="Why: they are shown it, and it is logged",
    )
    async def ban(
        self,
        interaction: discord.Interaction,
        user: discord.User,
        hours: float | None = None,
        reason: app_commands.Range[str, 0, 500] = "",
    ) -> None:
        async with answering(interaction):
            outcome = await bans.ban_user(
                self.bot.sessions, actor_of(interaction), user.id, hours=hours, reason=reason
            )
            await Page(banned_text(user.id, outcome)).send(interaction)

    @mod.command(name="unban", description="Lift a member's ban from sojourn here")
    @app_commands.describe(user="Who")
    async def unban(self, interaction: discord.Interaction, user: discord.User) -> None:
        async with answering(interaction):
            count = await bans.unban_user(self.bot.sessions, actor_of(interaction), user.id)
            await Page(unbanned_text(user.id, count)).send(interaction)

    @mod.command(
        name="credits", description="Give a member credits (or take some back, with a negative amount)"
    )
    @app_commands.describe(user="Who", amount="How many (negative: take back)", reason="Why: it is logged")
    async def credits(
        self,
        interaction: discord.Interaction,
        user: discord.User,
        amount: app_commands.Range[int, -MAX_GRANT, MAX_GRANT],
        reason: app_commands.Range[str, 1, 200],
    ) -> None:
        async with answering(interaction):
            grant = await members.grant_credits(
                self.bot.sessions,
                actor_of(interaction),
                user.id,
                amount,
                reason=reason,
                request_id=str(interaction.id),  # Discord's own id: a redelivered command grants once
            )
            await Page(granted_text(user.id, amount, grant)).send(interaction)

    @mod.command(
        name="user", description="A member's balance, strikes, bans, blocked prompts and recent jobs"
    )
    @app_commands.describe(user="Who")
    async def user(self, interaction: discord.Interaction, user: discord.User) -> None:
        async with answering(interaction):
            report = await members.member_report(
                self.bot.sessions, self.bot.settings.moderation, actor_of(interaction), user.id
            )
            await Page(embeds=[report_embed(report)]).send(interaction)

    # --- the word filter -------------------------------------------------------------------------------

    @words_group.command(name="add", description="Block (or warn on) words or phrases, comma-separated")
    @app_commands.describe(
        words="Comma-separated words or phrases; * at either end matches inside words (*porn*)",
        action="block: refused, a strike (default); warn: the job runs, and it is logged",
    )
    async def words_add(
        self, interaction: discord.Interaction, words: str, action: Literal["block", "warn"] = "block"
    ) -> None:
        async with answering(interaction):
            added = await word_lists.add_words(
                self.bot.sessions, actor_of(interaction), words, WordAction(action)
            )
            listed = ", ".join(f"`{pattern}`" for pattern in added)
            verb = "Blocked" if action == "block" else "Warning on"
            await Page(f"{verb} here: {listed}. Try a prompt against the list with /mod words test.").send(
                interaction
            )

    @words_group.command(
        name="remove", description="Drop words from the list or allow list (a default: off here)"
    )
    @app_commands.describe(words="Comma-separated, as /mod words list shows them")
    async def words_remove(self, interaction: discord.Interaction, words: str) -> None:
        async with answering(interaction):
            removed = await word_lists.remove_words(
                self.bot.sessions, self.bot.settings.moderation, actor_of(interaction), words
            )
            await Page(f"Removed: {', '.join(removed)}.").send(interaction)

    @words_group.command(name="allow", description="Words that never match a rule here, comma-separated")
    @app_commands.describe(words="Comma-separated whole words (no *), e.g. a name the filter trips on")
    async def words_allow(self, interaction: discord.Interaction, words: str) -> None:
        async with answering(interaction):
            allowed = await word_lists.allow_words(self.bot.sessions, actor_of(interaction), words)
            listed = ", ".join(f"`{pattern}`" for pattern in allowed)
            await Page(f"Allowed here (these never match a rule): {listed}.").send(interaction)

    @words_group.command(name="list", description="This server's word rules, allow list and defaults")
    async def words_list(self, interaction: discord.Interaction) -> None:
        async with answering(interaction):
            listed = await word_lists.list_words(
                self.bot.sessions, self.bot.settings.moderation, actor_of(interaction)
            )
            await Page(embeds=[words_embed(listed)]).send(interaction)

    @words_group.command(
        name="test", description="Which rule a prompt would match, and why (nothing is recorded)"
    )
    @app_commands.describe(prompt="A prompt as a member would type it, {a, b} permutations included")
    async def words_test(self, interaction: discord.Interaction, prompt: str) -> None:
        async with answering(interaction):
            try:
                texts = expand_permutations(prompt, self.bot.rules.limits.max_permutations)
            except PromptError:  # a prompt /imagine would refuse anyway: test it as typed
                texts = [prompt]
            matches = await word_lists.dry_run(
                self.bot.sessions, self.bot.settings.moderation, actor_of(interaction), texts
            )
            await Page(dry_run_text(matches, len(texts))).send(interaction)

    # --- results and jobs ------------------------------------------------------------------------------

    @mod.command(name="delete", description="Remove a result everywhere: its message, favorites, galleries")
    @app_commands.describe(
        job="The job id (from the result, /mod queue or /mod user)", purge="Delete its files too"
    )
    async def delete(self, interaction: discord.Interaction, job: str, purge: bool = False) -> None:
        async with answering(interaction):
            removed = await removal.delete_as_moderator(
                self.bot.sessions, self.bot.storage, actor_of(interaction), job, purge=purge
            )
            message = ""
            if removed.channel_id is not None and removed.message_id is not None:
                gone = await self.bot.delivery.remove_message(removed.channel_id, removed.message_id)
                message = (
                    " Its message is deleted."
                    if gone
                    else " Its message could not be deleted (already gone, or I may not): check the channel."
                )
            if removed.showcase_message is not None:
                await self.bot.delivery.remove_message(*removed.showcase_message)
                message += " Its showcase post is deleted."
            files = (
                f" Its {removed.purged_files} files are deleted."
                if purge
                else " Its files are kept for the moderators (purge:True deletes them)."
            )
            await Page(f"Deleted job `{removed.job_id}` of <@{removed.user_id}>.{message}{files}").send(
                interaction
            )

    @mod.command(name="queue", description="This server's running and waiting jobs, with Cancel buttons")
    async def queue(self, interaction: discord.Interaction) -> None:
        async with answering(interaction):
            await (await queue_page(self.bot, actor_of(interaction))).send(interaction)

    @mod.command(name="review", description="Results the image safety check held, one at a time")
    async def review(self, interaction: discord.Interaction) -> None:
        async with answering(interaction):
            page, _ = await review_page(self.bot, actor_of(interaction), interaction.guild)
            await page.send(interaction)

    @mod.command(name="appeals", description="Appeals of blocked prompts, with Accept and Reject")
    async def appeals(self, interaction: discord.Interaction) -> None:
        async with answering(interaction):
            await (await appeals_page(self.bot, actor_of(interaction))).send(interaction)

    @mod.command(name="log", description="The moderation log, newest first")
    @app_commands.describe(user="Only what concerns this member", kind="Only this kind of event")
    @app_commands.choices(kind=LOG_KINDS)
    async def log(
        self, interaction: discord.Interaction, user: discord.User | None = None, kind: str | None = None
    ) -> None:
        async with answering(interaction):
            query = LogQuery(user_id=user.id if user else None, kind=kind or "")
            await (await log_page(self.bot, actor_of(interaction), query)).send(interaction)

    # --- settings ----------------------------------------------------------------------------------------

    @mod.command(name="settings", description="This server's moderation settings; with options, change them")
    @app_commands.describe(
        safety_mode="The image safety check: off, review (hold for a moderator) or block (remove, a strike)",
        safety_threshold="The score (0 safe … 1 explicit) from which an image is held or removed",
        allow_in_age_restricted="Deliver in age-restricted channels what would be held elsewhere",
        strikes_before_ban="Strikes within the window that ban automatically",
        strike_window_hours="The window strikes are counted in, in hours",
        strike_ban_hours="How long an automatic ban lasts, in hours",
        moderator_role="Members with this role moderate sojourn here (besides Manage Server)",
        imagine_channel_add="Allow /imagine in this channel (once one is set, only in those)",
        imagine_channel_remove="Stop allowing /imagine in this channel",
        imagine_channels_clear="Allow /imagine in every channel again",
        default_words="Use the shipped default word list",
    )
    @app_commands.choices(safety_mode=SAFETY_MODES)
    async def settings(
        self,
        interaction: discord.Interaction,
        safety_mode: str | None = None,
        safety_threshold: app_commands.Range[float, 0.0, 1.0] | None = None,
        allow_in_age_restricted: bool | None = None,
        strikes_before_ban: app_commands.Range[int, 1, 100] | None = None,
        strike_window_hours: app_commands.Range[int, 1, 24 * 365] | None = None,
        strike_ban_hours: app_commands.Range[int, 1, 24 * 365] | None = None,
        moderator_role: discord.Role | None = None,
        imagine_channel_add: discord.TextChannel | None = None,
        imagine_channel_remove: discord.TextChannel | None = None,
        imagine_channels_clear: bool | None = None,
        default_words: bool | None = None,
    ) -> None:
        async with answering(interaction):
            asked = SettingsAsked(
                safety_mode=safety_mode,
                safety_threshold=safety_threshold,
                allow_in_age_restricted=allow_in_age_restricted,
                strikes_before_ban=strikes_before_ban,
                strike_window_hours=strike_window_hours,
                strike_ban_hours=strike_ban_hours,
                moderator_role=moderator_role,
                imagine_channel_add=imagine_channel_add,
                imagine_channel_remove=imagine_channel_remove,
                imagine_channels_clear=imagine_channels_clear,
                default_words=default_words,
            )
            server, changed = await apply_settings(self.bot, actor_of(interaction), asked)
            await Page(settings_text(server, changed)).send(interaction)
