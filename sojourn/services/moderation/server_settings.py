"""A server's moderation settings: its `guild_settings` row over the project's defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import GuildSettings
from sojourn.clock import utcnow
from sojourn.errors import UserError
from sojourn.services.moderation import audit_log
from sojourn.services.moderation.audit_log import AuditAction
from sojourn.services.moderation.permissions import Actor, require_moderator
from sojourn.settings import ModerationSettings, SafetyMode


@dataclass(frozen=True)
class ServerModeration:
    safety_mode: SafetyMode
    safety_threshold: float
    allow_in_age_restricted: bool
    strikes_before_ban: int
    strike_window_hours: int
    strike_ban_hours: int
    moderator_role_id: int | None
    imagine_channels: tuple[int, ...]  # empty: every channel
    default_words: bool

    def describe(self) -> list[str]:
        channels = ", ".join(f"<#{channel}>" for channel in self.imagine_channels) or "every channel"
        role = f"<@&{self.moderator_role_id}>" if self.moderator_role_id else "none (Manage Server only)"
        age_restricted = "delivered" if self.allow_in_age_restricted else "held like anywhere else"
        return [
            f"Image safety check: **{self.safety_mode.value}**, threshold {self.safety_threshold:g}",
            f"In age-restricted channels, images over the threshold are {age_restricted}",
            f"Automatic ban: {self.strike_ban_hours} h after {self.strikes_before_ban} strikes "
            f"within {self.strike_window_hours} h",
            f"Moderator role: {role}",
            f"/imagine allowed in: {channels}",
            f"Default word list: {'on' if self.default_words else 'off'}",
        ]


# What `/mod settings` may change, each with the check its value must pass.
CHANGEABLE: dict[str, Callable[[Any], Any]] = {
    "safety_mode": lambda value: SafetyMode(value),
    "safety_threshold": lambda value: _within(float(value), 0.0, 1.0, "the threshold"),
    "allow_in_age_restricted": bool,
    "strikes_before_ban": lambda value: int(_within(int(value), 1, 100, "strikes before a ban")),
    "strike_window_hours": lambda value: int(_within(int(value), 1, 24 * 365, "the strike window")),
    "strike_ban_hours": lambda value: int(_within(int(value), 1, 24 * 365, "the ban's length")),
    "moderator_role_id": lambda value: None if value in (None, 0) else int(value),
    "imagine_channels": lambda value: sorted({int(channel) for channel in value}),
    # Edits of the channel list, applied to the list as it is under the row's lock (in this order).
    "imagine_channels_clear": bool,
    "imagine_channel_add": int,
    "imagine_channel_remove": int,
    "default_words": bool,
}


def _within(value: float, low: float, high: float, what: str) -> float:
    if not low <= value <= high:
        raise UserError(f"{what.capitalize()} must be between {low:g} and {high:g} (you gave {value:g}).")
    return value


def server_moderation_of(row: GuildSettings | None, defaults: ModerationSettings) -> ServerModeration:
    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    return ServerModeration(
        safety_mode=SafetyMode(pick(row and row.safety_mode, defaults.safety_mode)),
        safety_threshold=float(pick(row and row.safety_threshold, defaults.safety_threshold)),
        allow_in_age_restricted=bool(row.allow_in_age_restricted)
        if row
        else defaults.allow_in_age_restricted,
        strikes_before_ban=int(pick(row and row.strikes_before_ban, defaults.strikes_before_ban)),
        strike_window_hours=int(pick(row and row.strike_window_hours, defaults.strike_window_hours)),
        strike_ban_hours=int(pick(row and row.strike_ban_hours, defaults.strike_ban_hours)),
        moderator_role_id=row.moderator_role_id if row else None,
        imagine_channels=tuple(row.imagine_channels or ()) if row else (),
        default_words=bool(pick(row and row.default_words, defaults.default_words)),
    )


async def server_moderation(
    session: AsyncSession, defaults: ModerationSettings, guild_id: int | None
) -> ServerModeration:
    row = await session.get(GuildSettings, guild_id) if guild_id is not None else None
    return server_moderation_of(row, defaults)


async def guild_row(session: AsyncSession, guild_id: int, defaults: ModerationSettings) -> GuildSettings:
    """The server's settings row, locked, created with the defaults on first change."""
    row = await session.get(GuildSettings, guild_id, with_for_update=True)
    if row is None:
        row = GuildSettings(
            guild_id=guild_id,
            anyone_can_press=False,
            imagine_channels=[],
            updated_at=utcnow(),
        )
        session.add(row)
        await session.flush()
    return row


async def update_server_moderation(
    sessions: async_sessionmaker[AsyncSession],
    defaults: ModerationSettings,
    actor: Actor,
    **changes: Any,
) -> ServerModeration:
    """Change some of the server's settings (names from `CHANGEABLE`), logged; returns them all."""
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise UserError(f"There is no moderation setting {', '.join(sorted(unknown))}.")
    async with sessions.begin() as session:
        guild_id = await require_moderator(session, actor)
        try:
            checked = {name: CHANGEABLE[name](value) for name, value in changes.items()}
        except ValueError as error:
            raise UserError(f"That setting's value does not work: {error}.") from None
        if checked.get("moderator_role_id") == guild_id:  # Discord's @everyone role has the server's id
            raise UserError("@everyone cannot be the moderator role: pick a role only your moderators have.")
        row = await guild_row(session, guild_id, defaults)
        channels = _edited_channels(list(row.imagine_channels or []), checked)
        for name, value in checked.items():
            if not name.startswith("imagine_channel"):
                setattr(row, name, value.value if isinstance(value, SafetyMode) else value)
        row.imagine_channels = channels
        row.updated_at = utcnow()
        if checked:
            await audit_log.record(
                session,
                AuditAction.SETTINGS,
                guild_id=guild_id,
                actor_id=actor.user_id,
                detail=", ".join(f"{name}={_shown(value)}" for name, value in checked.items()),
            )
        return server_moderation_of(row, defaults)


def _edited_channels(channels: list[int], checked: dict[str, Any]) -> list[int]:
    if "imagine_channels" in checked:
        channels = list(checked["imagine_channels"])
    if checked.get("imagine_channels_clear"):
        channels = []
    if "imagine_channel_add" in checked and checked["imagine_channel_add"] not in channels:
        channels.append(checked["imagine_channel_add"])
    if "imagine_channel_remove" in checked:
        removed = checked["imagine_channel_remove"]
        if removed not in channels:
            raise UserError(
                f"<#{removed}> is not one of the /imagine channels (see /mod settings). Nothing was changed."
            )
        channels.remove(removed)
    return sorted(channels)


def _shown(value: Any) -> str:
    return value.value if isinstance(value, SafetyMode) else str(value)


def check_imagine_channel(server: ServerModeration, channel_id: int | None) -> None:
    """/imagine only where the server allows it (no channels set: everywhere)."""
    if server.imagine_channels and channel_id not in server.imagine_channels:
        where = ", ".join(f"<#{channel}>" for channel in server.imagine_channels[:10])
        raise UserError(f"This server allows /imagine only in {where}: try it there. Nothing was charged.")
