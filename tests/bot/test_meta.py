"""Every extension loads (and unloads), and no command name or custom_id template collides."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import uuid
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands

import bot as bot_package
from bot import create_bot
from bot.exts import EXTENSIONS
from bot.exts.settings._views import panel_view
from bot.presses import REMIX_MODAL_TEMPLATE, RemixModal
from bot.result_view import grid_view, single_image_view
from sojourn.services.buttons import Action
from sojourn.services.users import UserDefaults
from sojourn.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, redis_url=None)


def _every_bot_module() -> list[str]:
    return [
        module.name
        for module in pkgutil.walk_packages(bot_package.__path__, prefix="bot.")
        if not module.ispkg or module.name in EXTENSIONS
    ]


def _dynamic_item_classes() -> list[type[discord.ui.DynamicItem[Any]]]:
    for name in _every_bot_module():
        importlib.import_module(name)
    found: list[type[discord.ui.DynamicItem[Any]]] = []
    pending = list(discord.ui.DynamicItem.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        module = sys.modules.get(cls.__module__)
        # Unloading an extension drops its modules; a class from a dropped copy is no longer live.
        if cls.__module__.startswith("bot.") and getattr(module, cls.__qualname__, None) is cls:
            found.append(cls)
    return found


def _qualified_names(commands: list[app_commands.Command[Any, ..., Any] | app_commands.Group]) -> list[str]:
    names: list[str] = []
    for command in commands:
        names.append(command.qualified_name)
        if isinstance(command, app_commands.Group):
            names.extend(_qualified_names(command.commands))
    return names


async def test_every_extension_loads_unloads_and_reloads(settings: Settings) -> None:
    bot = create_bot(settings)
    try:
        assert set(EXTENSIONS) == {
            "bot.exts.buttons", "bot.exts.imagine", "bot.exts.info", "bot.exts.jobs", "bot.exts.prefer",
            "bot.exts.settings",
        }  # fmt: skip
        for extension in EXTENSIONS:
            await bot.load_extension(extension)
        loaded = _qualified_names(bot.tree.get_commands())
        for extension in EXTENSIONS:
            await bot.unload_extension(extension)
        assert bot.tree.get_commands() == [] and not bot.cogs
        for extension in EXTENSIONS:
            await bot.load_extension(extension)
        assert _qualified_names(bot.tree.get_commands()) == loaded
    finally:
        await bot.engine.dispose()


async def test_no_two_commands_share_a_name(settings: Settings) -> None:
    bot = create_bot(settings)
    try:
        for extension in EXTENSIONS:
            await bot.load_extension(extension)
        names = _qualified_names(bot.tree.get_commands())
        assert len(names) == len(set(names))
        assert set(names) == {
            "imagine", "info", "settings", "show", "cancel",
            "prefer", "prefer option", "prefer option set", "prefer option list", "prefer option delete",
            "prefer suffix", "server", "server buttons",
        }  # fmt: skip
    finally:
        await bot.engine.dispose()


def test_custom_id_templates_never_overlap() -> None:
    classes = _dynamic_item_classes()
    assert {cls.__name__ for cls in classes} == {"ResultButton", "SettingSelect", "SettingToggle"}
    job_id = uuid.uuid4()
    components = [
        *grid_view(job_id).children,
        *single_image_view(job_id, favorites=3).children,
        *panel_view(UserDefaults()).children,
    ]
    custom_ids = [item.custom_id for item in components]  # type: ignore[attr-defined]
    assert len(custom_ids) == 9 + 6 + len(panel_view(UserDefaults()).children)
    assert len(custom_ids) == len(set(custom_ids))
    for custom_id in custom_ids:
        assert custom_id.startswith("sj:") and len(custom_id) <= 100
        owners = [cls for cls in classes if cls.__discord_ui_compiled_template__.fullmatch(custom_id)]
        assert len(owners) == 1, f"{custom_id} is claimed by {owners}"


@pytest.mark.parametrize(
    "custom_id",
    [
        "sj:u:" + "0" * 31,  # too short an id
        "sj:u:" + "G" * 32 + ":1",  # not hex
        "sj:u:" + "a" * 32 + ":5",  # no image 5
        "sj:x:" + "a" * 32 + ":1",  # no such action
        "sj:up:" + "a" * 32 + ":1:2",  # trailing junk
        "sj:fav:" + "a" * 32 + ":1 ",
        "sj:m:v:" + "a" * 32 + ":1",  # a remix modal's id is not a button's
        "sj:set:quality:extra",
        "sj:set:everything",
        "xx:u:" + "a" * 32 + ":1",
    ],
)
def test_hostile_custom_ids_match_no_template(custom_id: str) -> None:
    assert not any(
        cls.__discord_ui_compiled_template__.fullmatch(custom_id) for cls in _dynamic_item_classes()
    )


def test_remix_modal_ids_are_their_own_and_fit() -> None:
    for action in (Action.VARY, Action.REROLL, Action.VARY_STRONG, Action.VARY_SUBTLE):
        modal = RemixModal(action, uuid.uuid4(), 4 if action != Action.REROLL else None, "a cat --ar 1:1")
        assert REMIX_MODAL_TEMPLATE.fullmatch(modal.custom_id) and len(modal.custom_id) <= 100
        assert not any(
            cls.__discord_ui_compiled_template__.fullmatch(modal.custom_id) for cls in _dynamic_item_classes()
        )
