"""The settings panel: three select menus and four buttons, each a `DynamicItem`.

The panel keeps no state: every control's custom_id names only the setting, the user is whoever
clicks (an ephemeral panel is only ever seen by its owner), and the current values are read from
the database on every change, so the panel keeps working after a restart.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.errors import errors_as_replies
from sojourn.errors import UserError
from sojourn.prompt.text import format_number
from sojourn.services.users import (
    ASPECT_CHOICES,
    QUALITY_CHOICES,
    STYLIZE_CHOICES,
    UserDefaults,
    load_preferences,
    reset_defaults,
    update_defaults,
)

_SELECTS: dict[str, tuple[str, tuple[Any, ...], int]] = {
    # setting: (what the menu says, the choices, row)
    "quality": ("Quality (--q): time spent, and credits", QUALITY_CHOICES, 0),
    "stylize": ("Stylize (--s): how strongly the style applies", STYLIZE_CHOICES, 1),
    "aspect": ("Aspect ratio (--ar)", ASPECT_CHOICES, 2),
}


def _choice_value(choice: Any) -> str:
    return format_number(choice) if isinstance(choice, float) else str(choice)


def _parse_choice(setting: str, value: str) -> Any:
    if setting == "quality":
        return float(value)
    if setting == "stylize":
        return int(value)
    return value


class SettingSelect(
    discord.ui.DynamicItem[discord.ui.Select[Any]], template=r"sj:set:(?P<setting>quality|stylize|aspect)"
):
    def __init__(self, setting: str, defaults: UserDefaults | None = None) -> None:
        placeholder, choices, row = _SELECTS[setting]
        current = getattr(defaults or UserDefaults(), setting)
        options = [
            discord.SelectOption(
                label=f"{placeholder.split(' (')[0]} {_choice_value(choice)}",
                value=_choice_value(choice),
                default=choice == current,
            )
            for choice in choices
        ]
        super().__init__(
            discord.ui.Select(
                custom_id=f"sj:set:{setting}", placeholder=placeholder, options=options, row=row
            )
        )
        self.setting = setting

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> SettingSelect:
        return cls(match["setting"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        async with errors_as_replies(interaction):
            _, choices, _ = _SELECTS[self.setting]
            picked = self.item.values  # hostile until checked: only what the menu offers
            if len(picked) != 1 or picked[0] not in {_choice_value(choice) for choice in choices}:
                raise UserError("That settings panel is out of date: run /settings again.")
            value = _parse_choice(self.setting, picked[0])
            defaults = await update_defaults(
                interaction.client.sessions,  # type: ignore[attr-defined]
                interaction.user.id,
                **{self.setting: value},
            )
            await interaction.response.edit_message(embed=panel_embed(defaults), view=panel_view(defaults))


_TOGGLES = ("private", "mode", "remix", "reset")


class SettingToggle(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"sj:set:(?P<setting>private|mode|remix|reset)"
):
    def __init__(self, setting: str, defaults: UserDefaults | None = None) -> None:
        defaults = defaults or UserDefaults()
        label, on = {
            "private": ("Private (stealth)" if defaults.private else "Public", defaults.private),
            "mode": ("Relax mode" if defaults.mode == "relax" else "Fast mode", defaults.mode == "fast"),
            "remix": ("Remix on" if defaults.remix else "Remix off", defaults.remix),
            "reset": ("Reset all", False),
        }[setting]
        style = (
            discord.ButtonStyle.danger
            if setting == "reset"
            else (discord.ButtonStyle.success if on else discord.ButtonStyle.secondary)
        )
        super().__init__(discord.ui.Button(custom_id=f"sj:set:{setting}", label=label, style=style, row=3))
        self.setting = setting

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> SettingToggle:
        return cls(match["setting"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        sessions = interaction.client.sessions  # type: ignore[attr-defined]
        async with errors_as_replies(interaction):
            if self.setting == "reset":
                defaults = await reset_defaults(sessions, interaction.user.id)
            else:
                async with sessions() as session:
                    current = (await load_preferences(session, interaction.user.id)).defaults
                flipped: dict[str, dict[str, Any]] = {
                    "private": {"private": not current.private},
                    "mode": {"mode": "fast" if current.mode == "relax" else "relax"},
                    "remix": {"remix": not current.remix},
                }
                defaults = await update_defaults(sessions, interaction.user.id, **flipped[self.setting])
            await interaction.response.edit_message(embed=panel_embed(defaults), view=panel_view(defaults))


PANEL_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (SettingSelect, SettingToggle)


def panel_view(defaults: UserDefaults) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for setting in _SELECTS:
        view.add_item(SettingSelect(setting, defaults))
    for setting in _TOGGLES:
        view.add_item(SettingToggle(setting, defaults))
    return view


def panel_embed(defaults: UserDefaults) -> discord.Embed:
    parameters = defaults.as_parameters()
    embed = discord.Embed(
        title="Your settings",
        description=(
            "Added under every prompt you write (what you type in a prompt wins):\n"
            + (f"`{parameters}`" if parameters else "nothing: the server's defaults")
        ),
        colour=discord.Colour.blurple(),
    )
    embed.add_field(name="Quality", value=format_number(defaults.quality))
    embed.add_field(name="Stylize", value=str(defaults.stylize))
    embed.add_field(name="Aspect ratio", value=defaults.aspect)
    embed.add_field(name="Visibility", value="private" if defaults.private else "public")
    embed.add_field(name="Mode", value=defaults.mode)
    embed.add_field(name="Remix", value="on" if defaults.remix else "off")
    return embed
