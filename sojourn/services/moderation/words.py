"""Each server's word list (the shipped defaults, its own rules, its allow list) and the screening
of everything that becomes a prompt against it.

Rows: `block` and `warn` are rules (one for a default word replaces the default), `allow` is the
allow list, `off` turns one default rule off for this server (`/mod words remove` of a default
word). The matching itself is `sojourn.word_filter`, a pure function; this module only reads and
writes the lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import ServerWordRule
from sojourn.default_words import DEFAULT_WORD_RULES
from sojourn.errors import UserError
from sojourn.services.moderation import audit_log
from sojourn.services.moderation.audit_log import AuditAction
from sojourn.services.moderation.permissions import Actor, require_moderator
from sojourn.services.moderation.server_settings import ServerModeration, server_moderation
from sojourn.settings import ModerationSettings
from sojourn.spec import JobSpec
from sojourn.word_filter import WordAction, WordMatch, WordRule, rule_problem, word_list

ALLOW = "allow"
OFF = "off"  # a default rule this server turned off
RULE_ACTIONS = {action.value for action in WordAction}
MAX_RULES_PER_SERVER = 1000
MAX_WORDS_PER_COMMAND = 50


@dataclass(frozen=True)
class ServerWords:
    rules: tuple[WordRule, ...]
    allowed: tuple[str, ...]
    own: tuple[ServerWordRule, ...]  # this server's rows (rules, allow list, defaults turned off)
    server: ServerModeration  # the server's settings, read with the words

    @property
    def defaults_on(self) -> bool:
        return self.server.default_words

    def screen(self, texts: Iterable[str]) -> list[WordMatch]:
        """Every rule matched by any of the texts, once per rule, blocks first."""
        matcher = word_list(self.rules, self.allowed)  # compiled once per process and list
        found: dict[str, WordMatch] = {}
        for text in texts:
            for match in matcher.find(text):
                found.setdefault(match.rule.pattern, match)
        return sorted(found.values(), key=lambda match: match.rule.action != WordAction.BLOCK)


def blocking(matches: Sequence[WordMatch]) -> list[WordMatch]:
    return [match for match in matches if match.rule.action == WordAction.BLOCK]


def spec_texts(spec: JobSpec) -> list[str]:
    """What a job's spec will draw: each part of the prompt, and the --no text."""
    return [part.text for part in spec.prompt] + ([spec.negative_prompt] if spec.negative_prompt else [])


async def server_words(
    session: AsyncSession, defaults: ModerationSettings, guild_id: int | None
) -> ServerWords:
    server = await server_moderation(session, defaults, guild_id)
    own: tuple[ServerWordRule, ...] = ()
    if guild_id is not None:
        own = tuple(
            (
                await session.execute(
                    select(ServerWordRule)
                    .where(ServerWordRule.guild_id == guild_id)
                    .order_by(ServerWordRule.id)
                )
            ).scalars()
        )
    # A default is off here, or replaced by the server's own rule for the same word.
    replaced = {row.pattern for row in own if row.action == OFF or row.action in RULE_ACTIONS}
    rules = (
        [rule for rule in DEFAULT_WORD_RULES if rule.pattern not in replaced] if server.default_words else []
    )
    rules += [WordRule(row.pattern, WordAction(row.action)) for row in own if row.action in RULE_ACTIONS]
    return ServerWords(
        rules=tuple(rules),
        allowed=tuple(row.pattern for row in own if row.action == ALLOW),
        own=own,
        server=server,
    )


def _patterns(words: str) -> list[str]:
    """Comma-separated words or phrases, as typed, each checked."""
    patterns = list(
        dict.fromkeys(" ".join(word.split()).lower() for word in words.split(",") if word.strip())
    )
    if not patterns:
        raise UserError("Give at least one word or phrase (separate several with commas).")
    if len(patterns) > MAX_WORDS_PER_COMMAND:
        raise UserError(f"At most {MAX_WORDS_PER_COMMAND} words at a time; you gave {len(patterns)}.")
    for pattern in patterns:
        problem = rule_problem(pattern)
        if problem:
            raise UserError(f'"{pattern[:100]}" cannot be a word rule: {problem}. Nothing was changed.')
    return patterns


async def _upsert(session: AsyncSession, guild_id: int, pattern: str, action: str, by: int) -> None:
    row = await session.scalar(
        select(ServerWordRule).where(ServerWordRule.guild_id == guild_id, ServerWordRule.pattern == pattern)
    )
    if row is None:
        session.add(ServerWordRule(guild_id=guild_id, pattern=pattern, action=action, created_by=by))
    else:
        row.action, row.created_by = action, by
    await session.flush()


async def _has_row(session: AsyncSession, guild_id: int, pattern: str) -> bool:
    found = await session.scalar(
        select(ServerWordRule.id).where(
            ServerWordRule.guild_id == guild_id, ServerWordRule.pattern == pattern
        )
    )
    return found is not None


async def _check_room(session: AsyncSession, guild_id: int, adding: int) -> None:
    count = len(
        (await session.execute(select(ServerWordRule.id).where(ServerWordRule.guild_id == guild_id))).all()
    )
    if count + adding > MAX_RULES_PER_SERVER:
        raise UserError(
            f"This server has {count} word rules and the limit is {MAX_RULES_PER_SERVER}: "
            "remove some (/mod words remove) before adding more."
        )


async def add_words(
    sessions: async_sessionmaker[AsyncSession],
    actor: Actor,
    words: str,
    action: WordAction = WordAction.BLOCK,
) -> list[str]:
    """`/mod words add`: block (or warn on) each word or phrase; returns the patterns added."""
    async with sessions.begin() as session:
        guild_id = await require_moderator(session, actor)
        patterns = _patterns(words)
        await _check_room(session, guild_id, len(patterns))
        for pattern in patterns:
            await _upsert(session, guild_id, pattern, action.value, actor.user_id)
        await audit_log.record(
            session,
            AuditAction.WORDS_ADD,
            guild_id=guild_id,
            actor_id=actor.user_id,
            detail=f"{action.value}: {', '.join(patterns)}"[:2000],
        )
    return patterns


async def allow_words(sessions: async_sessionmaker[AsyncSession], actor: Actor, words: str) -> list[str]:
    """`/mod words allow`: these words never match any rule on this server."""
    async with sessions.begin() as session:
        guild_id = await require_moderator(session, actor)
        patterns = _patterns(words)
        if any("*" in pattern for pattern in patterns):
            raise UserError("The allow list takes whole words, without *. Nothing was changed.")
        await _check_room(session, guild_id, len(patterns))
        for pattern in patterns:
            await _upsert(session, guild_id, pattern, ALLOW, actor.user_id)
        await audit_log.record(
            session,
            AuditAction.WORDS_ALLOW,
            guild_id=guild_id,
            actor_id=actor.user_id,
            detail=", ".join(patterns)[:2000],
        )
    return patterns


async def remove_words(
    sessions: async_sessionmaker[AsyncSession], defaults: ModerationSettings, actor: Actor, words: str
) -> list[str]:
    """`/mod words remove`: drop the server's own rules or allow-list entries, or turn a default off."""
    default_patterns = {rule.pattern for rule in DEFAULT_WORD_RULES}
    async with sessions.begin() as session:
        guild_id = await require_moderator(session, actor)
        patterns = _patterns(words)
        removed = []
        for pattern in patterns:
            # The server's own rule or allow-list entry goes (a default it replaced applies again);
            # a default the server has no row for is turned off; one already off stays off.
            result = await session.execute(
                delete(ServerWordRule)
                .where(
                    ServerWordRule.guild_id == guild_id,
                    ServerWordRule.pattern == pattern,
                    ServerWordRule.action != OFF,
                )
                .returning(ServerWordRule.action)
            )
            if result.scalar_one_or_none() is not None:
                removed.append(pattern)
            elif pattern in default_patterns and not await _has_row(session, guild_id, pattern):
                await _upsert(session, guild_id, pattern, OFF, actor.user_id)
                removed.append(f"{pattern} (a default, now off here)")
        if not removed:
            raise UserError(
                f"None of {', '.join(patterns)[:200]} is on this server's list (see /mod words list)."
            )
        await audit_log.record(
            session,
            AuditAction.WORDS_REMOVE,
            guild_id=guild_id,
            actor_id=actor.user_id,
            detail=", ".join(removed)[:2000],
        )
    return removed


async def list_words(
    sessions: async_sessionmaker[AsyncSession], defaults: ModerationSettings, actor: Actor
) -> ServerWords:
    async with sessions() as session:
        guild_id = await require_moderator(session, actor)
        return await server_words(session, defaults, guild_id)


async def dry_run(
    sessions: async_sessionmaker[AsyncSession],
    defaults: ModerationSettings,
    actor: Actor,
    texts: Sequence[str],
) -> list[WordMatch]:
    """`/mod words test`: a dry run, nothing recorded; the caller expands the prompt into `texts`."""
    async with sessions() as session:
        guild_id = await require_moderator(session, actor)
        words = await server_words(session, defaults, guild_id)
    return words.screen(texts)


class WordsBlocked(Exception):
    """Raised inside a submission's transaction (so it rolls back); the caller records the strike."""

    def __init__(self, matches: list[WordMatch]) -> None:
        super().__init__(matches)
        self.matches = matches


async def screen_prompt(
    session: AsyncSession,
    defaults: ModerationSettings,
    guild_id: int | None,
    texts: Iterable[str],
    *,
    excused: Iterable[str] = (),
) -> list[WordMatch]:
    """Raise `WordsBlocked` if a block rule matches (bar the `excused` patterns: an accepted
    appeal's); else return the warn rules that matched, for the log."""
    return screen(await server_words(session, defaults, guild_id), texts, excused=excused)


def screen(words: ServerWords, texts: Iterable[str], *, excused: Iterable[str] = ()) -> list[WordMatch]:
    """`screen_prompt` against a server's words already read."""
    matches = words.screen(texts)
    excused = set(excused)
    blocks = [match for match in blocking(matches) if match.rule.pattern not in excused]
    if blocks:
        raise WordsBlocked(blocks)
    return [match for match in matches if match.rule.action == WordAction.WARN]


async def log_warnings(
    session: AsyncSession,
    warnings: Sequence[WordMatch],
    *,
    guild_id: int | None,
    user_id: int,
    job_ids: Sequence[object],
) -> None:
    if warnings:
        await audit_log.record(
            session,
            AuditAction.WARN,
            guild_id=guild_id,
            actor_id=None,
            target_user_id=user_id,
            job_id=job_ids[0] if len(job_ids) == 1 else None,  # type: ignore[arg-type]
            detail="; ".join(match.describe() for match in warnings)[:2000],
        )
