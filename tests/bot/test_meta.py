"""Every extension loads (and unloads), no command name or custom_id template collides, and the
buttons, their templates and the remix modal are exactly `sojourn.actions.ACTIONS`."""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import discord
import pytest
from discord import app_commands

import bot as bot_package
from bot import create_bot
from bot.appeal import APPEAL_FORM_TEMPLATE, AppealButton, AppealForm
from bot.exts import EXTENSIONS
from bot.exts.buttons import grid_view, single_image_view
from bot.exts.buttons._remix import REMIX_MODAL_TEMPLATE, RemixModal
from bot.exts.buttons._views import CUSTOM_ID_TEMPLATE
from bot.exts.gallery._views import MAX_POSITION, GalleryFilters, GalleryJobButton, GalleryPageButton
from bot.exts.moderation._appeals import AppealDecisionButton
from bot.exts.moderation._log import LogPageButton, LogQuery
from bot.exts.moderation._queue import CancelJobButton
from bot.exts.moderation._review import DECISIONS as REVIEW_DECISIONS
from bot.exts.moderation._review import ReviewButton
from bot.exts.settings._views import panel_view
from sojourn.actions import ACTIONS, BY_CODE, REMIXABLE, ButtonAction, actions_on
from sojourn.services.gallery import Period, Sort
from sojourn.services.users import UserDefaults
from sojourn.settings import ButtonSettings, Settings
from sojourn.spec import IMAGES_PER_JOB

GALLERY = "https://gallery.example"
IMAGES_ON = {"grid": IMAGES_PER_JOB, "single": 1}  # a 2×2 grid; an upscale's one image


class NoQueue:
    """Nothing is submitted in these tests."""

    async def enqueue(self, job_id: uuid.UUID, mode: str, dispatch: int = 0) -> None:
        raise AssertionError("nothing should be queued here")


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
    bot = create_bot(settings, queue=NoQueue())
    try:
        assert set(EXTENSIONS) == {
            "bot.exts.buttons", "bot.exts.gallery", "bot.exts.imagine", "bot.exts.info", "bot.exts.jobs",
            "bot.exts.moderation", "bot.exts.prefer", "bot.exts.settings",
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
    bot = create_bot(settings, queue=NoQueue())
    try:
        for extension in EXTENSIONS:
            await bot.load_extension(extension)
        names = _qualified_names(bot.tree.get_commands())
        assert len(names) == len(set(names))
        assert set(names) == {
            "imagine", "info", "settings", "show", "cancel",
            "prefer", "prefer option", "prefer option set", "prefer option list", "prefer option delete",
            "prefer suffix", "server", "server buttons", "server gallery", "delete", "gallery",
            "visibility",
            "mod", "mod ban", "mod unban", "mod credits", "mod user", "mod words", "mod words add",
            "mod words remove", "mod words allow", "mod words list", "mod words test", "mod delete",
            "mod queue", "mod review", "mod appeals", "mod log", "mod settings",
        }  # fmt: skip
    finally:
        await bot.engine.dispose()


def _moderation_buttons(job_id: uuid.UUID) -> list[discord.ui.Item[Any]]:
    """One of each moderation button, with the largest ids they can carry."""
    biggest = 10**18 - 1
    return [
        AppealButton(biggest),
        CancelJobButton(job_id, 25),
        *(ReviewButton(decision, job_id) for decision in REVIEW_DECISIONS),
        AppealDecisionButton("accept", biggest, 5),
        AppealDecisionButton("reject", biggest, 5),
        LogPageButton(LogQuery(user_id=2**64 - 1, kind="appeal_accepted", before_id=2**63 - 1)),
        LogPageButton(LogQuery(), "Newest"),
    ]


def _gallery_buttons(job_id: uuid.UUID) -> list[discord.ui.Item[Any]]:
    """One of each gallery button, the page buttons with the longest filters they can carry."""
    longest = GalleryFilters(Sort.TOP, Period.MONTH, 2**64 - 1, True, ("a" * 40,))
    return [
        GalleryPageButton(longest, MAX_POSITION),
        GalleryPageButton(GalleryFilters(), 0),
        GalleryJobButton("like", job_id),
        GalleryJobButton("show", job_id),
    ]


def test_custom_id_templates_never_overlap() -> None:
    classes = _dynamic_item_classes()
    assert {cls.__name__ for cls in classes} == {
        "ResultButton", "SettingSelect", "SettingToggle",
        "AppealButton", "AppealDecisionButton", "CancelJobButton", "LogPageButton", "ReviewButton",
        "GalleryPageButton", "GalleryJobButton",
    }  # fmt: skip
    job_id = uuid.uuid4()
    components = [
        *grid_view(job_id).children,
        *single_image_view(job_id, favorites=3).children,  # no 🔗 Web link: no gallery
        *panel_view(UserDefaults()).children,
        *_moderation_buttons(job_id),
        *_gallery_buttons(job_id),
    ]
    custom_ids = [item.custom_id for item in components]  # type: ignore[attr-defined]
    assert len(custom_ids) == len(_expected_buttons("grid", job_id)) + len(
        _expected_buttons("single", job_id)
    ) + len(panel_view(UserDefaults()).children) + len(_moderation_buttons(job_id)) + len(
        _gallery_buttons(job_id)
    )
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
        "sj:appeal:",  # no strike
        "sj:appeal:12a",
        "sj:appeal:-1",
        "sj:appeal:" + "9" * 19,  # longer than any id
        "sj:appeal-form:12",  # the form's id is not a button's
        "sj:mod:cancel:" + "a" * 31,
        "sj:mod:cancel:" + "A" * 32,
        "sj:mod:review:publish:" + "a" * 32,  # no such decision
        "sj:mod:review:approve:" + "a" * 32 + ":1",
        "sj:mod:appeal:accept:",
        "sj:mod:appeal:undo:12",
        "sj:mod:appeal:accept:1.5",
        "sj:mod:log:1:BAN:0",
        "sj:mod:log:-1:ban:0",
        "sj:mod:log:1:ban:0:0",
        "sj:mod:log:1:ban",
        "sj:gal:p:nx:0:0:0:",  # no such period
        "sj:gal:p:na:0:2:0:",
        "sj:gal:p:na:0:0:1000:",  # past the last position
        "sj:gal:p:na:0:0:0:cat dog",  # a search is words joined by +
        "sj:gal:p:na:0:0:0:cat_dog",
        "sj:gal:p:na:0:0:0:+cat",
        "sj:gal:like:" + "a" * 31,
        "sj:gal:fav:" + "a" * 32,
        "sj:gal:show:" + "a" * 32 + ":1",
    ],
)
def test_hostile_custom_ids_match_no_template(custom_id: str) -> None:
    assert not any(
        cls.__discord_ui_compiled_template__.fullmatch(custom_id) for cls in _dynamic_item_classes()
    )


def test_the_appeal_form_id_is_its_own_and_fits() -> None:
    form = AppealForm(10**18 - 1)
    match = APPEAL_FORM_TEMPLATE.fullmatch(form.custom_id)
    assert match and int(match["strike"]) == 10**18 - 1 and len(form.custom_id) <= 100
    assert not any(
        cls.__discord_ui_compiled_template__.fullmatch(form.custom_id) for cls in _dynamic_item_classes()
    )


def test_remix_modal_ids_are_their_own_and_fit() -> None:
    for action in REMIXABLE:
        index = 4 if action.per_image else None
        modal = RemixModal(action, uuid.uuid4(), index, "a cat --ar 1:1")
        match = REMIX_MODAL_TEMPLATE.fullmatch(modal.custom_id)
        assert match and match["action"] == action.code and len(modal.custom_id) <= 100
        assert modal.title == f"Remix: {action.name}"
        assert not any(
            cls.__discord_ui_compiled_template__.fullmatch(modal.custom_id) for cls in _dynamic_item_classes()
        )


def _candidate_codes() -> set[str]:
    """Every code of the table, and near misses of each: a prefix, an extension, a letter off."""
    codes = {action.code for action in ACTIONS}
    return codes | {code[:-1] for code in codes} | {code + "x" for code in codes} | {"x", "m", "set", ""}


def test_the_button_template_admits_exactly_the_codes_of_the_table() -> None:
    job = uuid.uuid4().hex
    for code in _candidate_codes():
        for tail in ("", ":1"):
            match = re.fullmatch(CUSTOM_ID_TEMPLATE, f"sj:{code}:{job}{tail}")
            assert (match is not None) == (code in BY_CODE), code
            assert match is None or match["action"] == code


def test_the_remix_modal_template_admits_exactly_the_remixable_codes() -> None:
    remixable = {action.code for action in REMIXABLE}
    assert remixable == {action.code for action in ACTIONS if action.remixable} and remixable
    job = uuid.uuid4().hex
    for code in _candidate_codes():
        match = REMIX_MODAL_TEMPLATE.fullmatch(f"sj:m:{code}:{job}:1")
        assert (match is not None) == (code in remixable), code


@pytest.mark.parametrize("action", [action for action in ACTIONS if action.makes_job], ids=lambda a: a.code)
def test_every_action_that_makes_a_job_is_labelled_and_priced(action: ButtonAction) -> None:
    assert action.button_label(1) or action.emoji
    assert action.name and action.kind is not None
    if action.cost_setting is not None:
        assert isinstance(getattr(ButtonSettings(), action.cost_setting), int)
    else:  # 🔄: a new grid of the same prompt, priced as /imagine prices it
        assert action.render is None and action.on == "grid" and not action.per_image


def _expected_buttons(placement: str, job_id: uuid.UUID) -> list[tuple[str, str | None, str | None, int]]:
    """(custom_id, label, emoji, row) of every button the table puts on that kind of result."""
    return [
        (
            f"sj:{action.code}:{job_id.hex}" + (f":{index}" if index is not None else ""),
            action.button_label(index),
            action.emoji,
            action.row,
        )
        for action in actions_on(placement)  # type: ignore[arg-type]
        for index in (range(1, IMAGES_ON[placement] + 1) if action.per_image else [None])
    ]


def _rows(view: discord.ui.View) -> list[list[dict[str, Any]]]:
    """The view as Discord receives it: rows of components."""
    return [row["components"] for row in view.to_components()]


def _buttons(view: discord.ui.View) -> list[tuple[str, str | None, str | None, int]]:
    """(custom_id, label, emoji, row) of every button with a custom_id, as sent to Discord."""
    return [
        (
            component["custom_id"],
            component.get("label"),
            component["emoji"]["name"] if "emoji" in component else None,
            row_number,
        )
        for row_number, row in enumerate(_rows(view))
        for component in row
        if "custom_id" in component
    ]


def test_a_grid_shows_exactly_the_tables_grid_buttons() -> None:
    job_id = uuid.uuid4()
    assert _buttons(grid_view(job_id)) == _expected_buttons("grid", job_id)
    assert [len(row) for row in _rows(grid_view(job_id))] == [4, 4, 1]


def test_a_single_image_shows_exactly_the_tables_single_image_buttons_and_the_web_link() -> None:
    job_id = uuid.uuid4()
    view = single_image_view(job_id, gallery_url=GALLERY)
    assert _buttons(view) == _expected_buttons("single", job_id)
    links = [component for row in _rows(view) for component in row if "url" in component]
    assert [link["url"] for link in links] == [f"{GALLERY}/jobs/{job_id}"]
    counted = _buttons(single_image_view(job_id, favorites=3))
    assert [label for custom_id, label, _, _ in counted if custom_id.startswith("sj:fav:")] == ["3"]


def test_no_action_code_is_written_out_in_the_bot() -> None:
    """The codes live in `sojourn.actions` alone: no "sj:u:" or `"vs"` literal in bot/."""
    root = Path(bot_package.__file__).parent
    codes = {action.code for action in ACTIONS}
    for path in root.rglob("*.py"):
        text = path.read_text()
        for code in codes:
            for literal in (f'"{code}"', f"'{code}'", f"sj:{code}:", f"{code}|"):
                assert literal not in text, f"{path.relative_to(root)} writes out the action code {code!r}"
