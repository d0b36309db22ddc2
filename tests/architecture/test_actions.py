"""The action table is the one declaration of each button: every record complete, every code its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sojourn.actions import ACTIONS, BY_CODE, actions_on
from sojourn.settings import ButtonSettings

REPO = Path(__file__).resolve().parents[2]
MAX_BUTTONS_PER_MESSAGE = 25  # Discord: five rows of five
MAX_ROWS = 5


def test_codes_are_unique_and_short_enough_for_a_custom_id() -> None:
    assert len(BY_CODE) == len(ACTIONS)
    # sj:<code>:<32 hex>:<index> must stay within Discord's 100 characters.
    assert all(len(f"sj:{action.code}:{'0' * 32}:4") <= 100 for action in ACTIONS)


@pytest.mark.parametrize("action", ACTIONS, ids=lambda action: action.code)
def test_every_record_is_complete(action) -> None:  # type: ignore[no-untyped-def]
    assert action.name
    assert action.label or action.emoji, "a button needs a label or an emoji"
    assert 0 <= action.row < MAX_ROWS
    if not action.makes_job:
        assert action.render is None and action.cost_setting is None and not action.remixable
        return
    assert action.made or action.render is None, "the result message must say what the button made"
    if action.render is None:
        # Only a new text-to-image grid (🔄) has no worker function of its own; it costs what the grid cost.
        assert not action.per_image and action.cost_setting is None
    else:
        assert action.cost_setting in ButtonSettings.model_fields, f"no price setting {action.cost_setting!r}"
        assert isinstance(getattr(ButtonSettings(), action.cost_setting), int)


def test_each_result_fits_in_one_message() -> None:
    for placement, images in (("grid", 4), ("single", 1)):
        count = sum(images if action.per_image else 1 for action in actions_on(placement))
        assert count + 1 <= MAX_BUTTONS_PER_MESSAGE  # + the 🔗 Web link


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_no_module_spells_an_action_code_of_its_own() -> None:
    """Codes are read from the table; the only other place a code may appear is a migration's history."""
    codes = set(BY_CODE)
    offenders = {}
    for package in ("sojourn", "bot", "inference", "db"):
        for path in (REPO / package).rglob("*.py"):
            if path == REPO / "sojourn" / "actions.py" or (REPO / "sojourn" / "prompt") in path.parents:
                continue  # the prompt language's own short names (--v, --r) are another namespace
            found = codes & _string_constants(path)
            if found:
                offenders[str(path.relative_to(REPO))] = sorted(found)
    assert offenders == {}
