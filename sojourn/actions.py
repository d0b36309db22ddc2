"""Every button under a result, declared once: what it is called, where it sits, what it makes.

The result views, the custom_id and remix-modal templates, the press service (kind, cost, the
derived spec), the result message's wording and the worker's dispatch all read `ACTIONS`. Adding
a button is one record here, one worker function (`inference.render.RENDERERS`) and its tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal


class JobKind(enum.StrEnum):
    """What kind of work a job row holds (stored; one per action, `/imagine` included)."""

    IMAGINE = "imagine"
    UPSCALE = "upscale"
    VARIATION = "variation"
    REROLL = "reroll"
    ZOOM = "zoom"


class Render(enum.StrEnum):
    """The worker function that renders a derived job (`JobSpec.action`); None is text-to-image."""

    UPSCALE = "upscale"  # one image at 2×: enlarge, then the refiner's img2img adds detail
    VARY_STRONG = "vary_strong"  # four images: Stable unCLIP on the source, refined
    VARY_SUBTLE = "vary_subtle"  # four images: SDXL img2img of the source
    ZOOM_OUT = "zoom_out"  # four images: the source shrunk on a larger canvas, border inpainted


Placement = Literal["grid", "single"]


@dataclass(frozen=True)
class ButtonAction:
    """One button: its custom_id code, looks, place, and the job it makes (if any)."""

    code: str  # in the custom_id: sj:<code>:<job hex>[:<image>]
    name: str  # in words, for confirmations and the remix modal's title
    on: Placement  # under a grid (U/V/🔄) or under a single upscaled image
    row: int  # the button row on that result
    label: str | None = None  # "{index}" is the image number (U1…U4); None: emoji only
    emoji: str | None = None
    per_image: bool = True  # one button per image of the result (U1–U4); False: one (🔄)
    remixable: bool = False  # remix mode opens the prompt for editing first
    kind: JobKind | None = None  # the job it makes; None: no job (❤)
    # `ButtonSettings` field with the press's price; None: what the pressed job cost (🔄), or free (❤).
    cost_setting: str | None = None
    render: Render | None = None  # the worker function; None: text-to-image (🔄) or no job (❤)
    zoom: float = 1.0  # Zoom Out's factor
    # What the result message says before the requester's mention ("Image #2", "Zoom Out 2× by").
    made: str = ""

    def button_label(self, index: int | None) -> str | None:
        return self.label.format(index=index) if self.label is not None else None

    def made_label(self, index: int | None) -> str:
        return self.made.format(index=index)

    @property
    def makes_job(self) -> bool:
        return self.kind is not None


UPSCALE = ButtonAction(
    code="u",
    name="Upscale",
    on="grid",
    row=0,
    label="U{index}",
    kind=JobKind.UPSCALE,
    cost_setting="upscale_cost",
    render=Render.UPSCALE,
    made="Image #{index}",
)
VARY = ButtonAction(
    code="v",
    name="Vary (Strong)",
    on="grid",
    row=1,
    label="V{index}",
    remixable=True,
    kind=JobKind.VARIATION,
    cost_setting="vary_strong_cost",
    render=Render.VARY_STRONG,
    made="Variations (Strong) by",
)
REROLL = ButtonAction(
    code="r",
    name="Re-roll",
    on="grid",
    row=2,
    emoji="🔄",
    per_image=False,
    remixable=True,
    kind=JobKind.REROLL,
)
VARY_STRONG = ButtonAction(
    code="vs",
    name="Vary (Strong)",
    on="single",
    row=0,
    label="Vary (Strong)",
    emoji="🪄",
    remixable=True,
    kind=JobKind.VARIATION,
    cost_setting="vary_strong_cost",
    render=Render.VARY_STRONG,
    made="Variations (Strong) by",
)
VARY_SUBTLE = ButtonAction(
    code="vt",
    name="Vary (Subtle)",
    on="single",
    row=0,
    label="Vary (Subtle)",
    emoji="🪄",
    remixable=True,
    kind=JobKind.VARIATION,
    cost_setting="vary_subtle_cost",
    render=Render.VARY_SUBTLE,
    made="Variations (Subtle) by",
)
UPSCALE_AGAIN = ButtonAction(
    code="up",
    name="Upscale (2×)",
    on="single",
    row=0,
    label="Upscale (2×)",
    emoji="⬆️",
    kind=JobKind.UPSCALE,
    cost_setting="upscale_cost",
    render=Render.UPSCALE,
    made="Upscaled (2×) by",
)
ZOOM_OUT_2 = ButtonAction(
    code="z2",
    name="Zoom Out 2×",
    on="single",
    row=1,
    label="Zoom Out 2×",
    emoji="🔍",
    kind=JobKind.ZOOM,
    cost_setting="zoom_out_cost",
    render=Render.ZOOM_OUT,
    zoom=2.0,
    made="Zoom Out 2× by",
)
ZOOM_OUT_15 = ButtonAction(
    code="z15",
    name="Zoom Out 1.5×",
    on="single",
    row=1,
    label="Zoom Out 1.5×",
    emoji="🔍",
    kind=JobKind.ZOOM,
    cost_setting="zoom_out_cost",
    render=Render.ZOOM_OUT,
    zoom=1.5,
    made="Zoom Out 1.5× by",
)
FAVORITE = ButtonAction(code="fav", name="Favorite", on="single", row=2, emoji="❤️")

# In the order the buttons appear on their result.
ACTIONS: tuple[ButtonAction, ...] = (
    UPSCALE,
    VARY,
    REROLL,
    VARY_STRONG,
    VARY_SUBTLE,
    UPSCALE_AGAIN,
    ZOOM_OUT_2,
    ZOOM_OUT_15,
    FAVORITE,
)
BY_CODE: dict[str, ButtonAction] = {action.code: action for action in ACTIONS}


def action_for(code: str) -> ButtonAction:
    """The action a custom_id's code names; `KeyError` for an unknown one."""
    return BY_CODE[code]


def actions_on(placement: Placement) -> tuple[ButtonAction, ...]:
    return tuple(action for action in ACTIONS if action.on == placement)


def codes_pattern(actions: tuple[ButtonAction, ...] = ACTIONS) -> str:
    """A regex alternation of the codes, longest first (so `vs` is not read as `v`)."""
    return "|".join(sorted((action.code for action in actions), key=len, reverse=True))


REMIXABLE: tuple[ButtonAction, ...] = tuple(action for action in ACTIONS if action.remixable)
