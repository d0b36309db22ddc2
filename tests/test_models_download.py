"""Real models as a server owner gets them: the tiny-model notice, and `sojourn models download`.

The hub cannot be reached here, so the download runs offline (`HF_HUB_OFFLINE=1`) against a hub
cache laid out as `huggingface_hub` lays it out (`models--org--name/refs/main`, `snapshots/<commit>/`,
and the repository's full file listing in `trees/<commit>.json`), holding the tiny models. The real
`snapshot_download` then resolves every request from that cache, and refuses one whose allow patterns
select a listed file the snapshot lacks: a pattern that let a `.bin`, a `.ckpt` or a non-fp16
duplicate through would fail the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from huggingface_hub import get_cached_repo_tree
from huggingface_hub._tree_cache import TreeCacheEntry, write_tree_cache
from huggingface_hub.utils import filter_repo_objects

from sojourn import bootstrap
from sojourn.model_download import (
    Component,
    ModelDownloadError,
    allow_patterns,
    download_models,
    model_components,
    verify_model,
    weight_patterns,
    weights_variant,
)
from sojourn.settings import ModelPaths, Settings

REPO = Path(__file__).resolve().parent.parent
HUB_IDS = ModelPaths()  # the settings' defaults: what `sojourn models download` fetches
UNCLIP_MIRROR = "sd2-community/stable-diffusion-2-1-unclip"

# --- the notice -------------------------------------------------------------------------------


def link_tiny_models(tiny_models: ModelPaths, folder: Path) -> None:
    """Put the session's tiny models where `ensure_runnable_models` looks for them (no rebuild)."""
    folder.mkdir(parents=True)
    for name, path in zip(
        ("sdxl-base", "sdxl-refiner", "unclip", "vae"), tiny_models.model_dump().values(), strict=True
    ):
        (folder / name).symlink_to(path)


def test_the_fall_back_to_tiny_models_says_the_pictures_are_noise_and_how_to_get_real_ones(  # type: ignore[no-untyped-def]
    tmp_path: Path, tiny_models, monkeypatch, capsys
) -> None:
    settings = Settings(data_dir=tmp_path, models=ModelPaths())  # hub ids, as a fresh checkout has
    link_tiny_models(tiny_models, bootstrap.tiny_models_dir(settings))
    monkeypatch.setattr(bootstrap, "gpu_available", lambda: False)

    runnable = bootstrap.ensure_runnable_models(settings)

    assert runnable.models.base == str(bootstrap.tiny_models_dir(settings) / "sdxl-base")
    captured = capsys.readouterr()
    assert captured.out == ""  # `sojourn render` keeps stdout for its JSON lines
    notice = " ".join(captured.err.split())
    for words in (
        "tiny random-weight TEST models",
        "noise, not images",
        "`sojourn models download`",
        "SOJOURN_MODELS__BASE",
        "__REFINER, __UNCLIP and __VAE",
        str(bootstrap.tiny_models_dir(settings)),
    ):
        assert words in notice


def test_configured_local_models_are_used_without_a_notice(
    tmp_path: Path, tiny_models, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bootstrap, "gpu_available", lambda: False)
    settings = Settings(data_dir=tmp_path, models=tiny_models)
    assert bootstrap.ensure_runnable_models(settings).models == tiny_models
    assert capsys.readouterr().err == ""


# --- which files: the allow patterns ------------------------------------------------------------

# The file listing of stabilityai/stable-diffusion-xl-base-1.0 (its shape, as of 2026), with a .bin
# and a .ckpt added: every other format and a full-precision duplicate of each weight file.
SDXL_BASE_LISTING = [
    ".gitattributes", "01.png", "LICENSE.md", "README.md", "comparison.png", "pipeline.png",
    "model_index.json",
    "sd_xl_base_1.0.safetensors", "sd_xl_base_1.0_0.9vae.safetensors", "sd_xl_base_1.0.ckpt",
    "sd_xl_offset_example-lora_1.0.safetensors",
    "scheduler/scheduler_config.json",
    *(f"text_encoder{n}/{name}" for n in ("", "_2") for name in (
        "config.json", "model.fp16.safetensors", "model.safetensors", "pytorch_model.bin",
        "flax_model.msgpack", "model.onnx", "openvino_model.bin", "openvino_model.xml",
    )),
    "text_encoder_2/model.onnx_data",
    *(f"tokenizer{n}/{name}" for n in ("", "_2") for name in (
        "merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json",
    )),
    *(f"unet/{name}" for name in (
        "config.json", "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model.bin", "diffusion_flax_model.msgpack", "model.onnx", "model.onnx_data",
        "openvino_model.bin", "openvino_model.xml",
    )),
    *(f"{vae}/{name}" for vae in ("vae", "vae_1_0") for name in (
        "config.json", "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.safetensors",
        "diffusion_flax_model.msgpack",
    )),
    *(f"{part}/{name}" for part in ("vae_decoder", "vae_encoder") for name in (
        "config.json", "model.onnx", "openvino_model.bin", "openvino_model.xml",
    )),
]  # fmt: skip
SDXL_BASE_INDEX = {
    "_class_name": "StableDiffusionXLPipeline",
    "force_zeros_for_empty_prompt": True,
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
# madebyollin/sdxl-vae-fp16-fix: one model at the root, its weights in plain safetensors only.
VAE_FIX_LISTING = [
    ".gitattributes", "README.md", "images/activation-magnitudes.jpg", "config.json",
    "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
    "sdxl_vae.safetensors", "sdxl.vae.safetensors",
]  # fmt: skip


def components_of(index: dict[str, object], tmp_path: Path) -> list[Component]:
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    return model_components(tmp_path)


def test_the_allow_patterns_pick_exactly_the_fp16_weights_and_the_configs(tmp_path: Path) -> None:
    components = components_of(SDXL_BASE_INDEX, tmp_path)
    picked = set(filter_repo_objects(SDXL_BASE_LISTING, allow_patterns=allow_patterns(components)))
    assert picked == {
        "model_index.json",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        "text_encoder/model.fp16.safetensors",
        "text_encoder_2/config.json",
        "text_encoder_2/model.fp16.safetensors",
        *(f"tokenizer{n}/{name}" for n in ("", "_2") for name in (
            "merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json",
        )),
        "unet/config.json",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/config.json",
        "vae/diffusion_pytorch_model.fp16.safetensors",
    }  # fmt: skip


def test_a_component_without_fp16_weights_gets_its_plain_safetensors_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"_class_name": "AutoencoderKL"}')
    components = model_components(tmp_path)
    assert components == [Component("", has_weights=True)]
    first_pass = set(filter_repo_objects(VAE_FIX_LISTING, allow_patterns=allow_patterns(components)))
    assert first_pass == {"config.json"}
    plain = set(
        filter_repo_objects(VAE_FIX_LISTING, allow_patterns=weight_patterns(components, variant=None))
    )
    assert plain == {"diffusion_pytorch_model.safetensors"}


def test_sharded_fp16_weights_are_picked_in_either_library_s_naming() -> None:
    listing = [
        "unet/diffusion_pytorch_model-00001-of-00002.fp16.safetensors",  # diffusers
        "unet/diffusion_pytorch_model-00001-of-00002.safetensors",
        "text_encoder/model.fp16-00001-of-00002.safetensors",  # transformers
        "text_encoder/model-00001-of-00002.safetensors",
    ]
    patterns = weight_patterns([Component("unet", True), Component("text_encoder", True)])
    assert set(filter_repo_objects(listing, allow_patterns=patterns)) == {listing[0], listing[2]}


def test_null_components_and_weightless_ones_are_told_apart(tmp_path: Path) -> None:
    index = {
        "_class_name": "StableDiffusionXLImg2ImgPipeline",
        "requires_aesthetics_score": True,
        "text_encoder": [None, None],
        "feature_extractor": ["transformers", "CLIPImageProcessorPil"],
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
    }
    assert components_of(index, tmp_path) == [
        Component("feature_extractor", False),
        Component("scheduler", False),
        Component("tokenizer_2", False),
        Component("unet", True),
    ]


# --- the whole command, against a hub cache -----------------------------------------------------


def publish(
    cache: Path,
    repo_id: str,
    source: Path,
    *,
    fp16: bool,
    decoys: Iterable[str] = (),
    omit: Iterable[str] = (),
) -> Path:
    """Lay `source` out in `cache` as a downloaded hub repository `repo_id` (weights renamed to the
    fp16 variant if `fp16`); the cached listing also names `decoys`, files the snapshot does not hold."""
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    storage = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    entries: dict[str, TreeCacheEntry] = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        name = path.relative_to(source).as_posix()
        if fp16 and name.endswith(".safetensors"):
            name = name.removesuffix(".safetensors") + ".fp16.safetensors"
        entries[name] = TreeCacheEntry(
            size=path.stat().st_size, blob_id=hashlib.sha1(name.encode()).hexdigest()
        )
        if name not in set(omit):
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, snapshot / name)
    for name in decoys:
        entries[name] = TreeCacheEntry(size=1, blob_id=hashlib.sha1(name.encode()).hexdigest())
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(commit)
    write_tree_cache(str(storage), commit, entries)
    # The library itself must read this listing back, or its completeness check would be vacuous.
    assert {f.path for f in get_cached_repo_tree(repo_id, cache_dir=cache)} == set(entries)
    return snapshot


def pipeline_decoys(source: Path, root_files: Iterable[str]) -> list[str]:
    """What a real pipeline repository holds beside the fp16 files: for every weighted component a
    full-precision duplicate, a .bin, ONNX, Flax and OpenVINO files; single-file checkpoints, images."""
    decoys = [
        *root_files,
        "README.md",
        "01.png",
        "vae_1_0/config.json",
        "vae_1_0/diffusion_pytorch_model.fp16.safetensors",
    ]
    for weights in source.glob("*/*.safetensors"):
        component = weights.parent.name
        stem = weights.name.removesuffix(".safetensors")
        bin_name = "pytorch_model.bin" if stem == "model" else "diffusion_pytorch_model.bin"
        decoys += [f"{component}/{weights.name}", f"{component}/{bin_name}", f"{component}/model.onnx"]
        decoys += [
            f"{component}/flax_model.msgpack",
            f"{component}/openvino_model.bin",
            f"{component}/openvino_model.xml",
        ]
    return decoys


@pytest.fixture
def hub_cache(tmp_path: Path, tiny_models: ModelPaths) -> Path:
    """A hub cache holding the four default models (unCLIP under its community copy's name)."""
    cache = tmp_path / "hf" / "hub"
    base, refiner, unclip = Path(tiny_models.base), Path(tiny_models.refiner), Path(tiny_models.unclip)
    publish(
        cache,
        HUB_IDS.base,
        base,
        fp16=True,
        decoys=pipeline_decoys(base, ["sd_xl_base_1.0.safetensors", "sd_xl_base_1.0.ckpt"]),
    )
    publish(
        cache,
        HUB_IDS.refiner,
        refiner,
        fp16=True,
        decoys=pipeline_decoys(refiner, ["sd_xl_refiner_1.0.safetensors"]),
    )
    publish(cache, UNCLIP_MIRROR, unclip, fp16=True, decoys=pipeline_decoys(unclip, ["sd21-unclip-h.ckpt"]))
    publish(
        cache, HUB_IDS.vae, Path(tiny_models.vae), fp16=False,
        decoys=["diffusion_pytorch_model.bin", "sdxl_vae.safetensors", "sdxl.vae.safetensors", "README.md"],
    )  # fmt: skip
    return cache


def download_command(
    tmp_path: Path, *args: str, settings: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`sojourn models download` as a server owner runs it, offline, with HF_HOME in `tmp_path`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SOJOURN_", "HF_"))}
    env.update({"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)})
    env.update(settings or {})
    return subprocess.run(
        [sys.executable, "-m", "sojourn", "models", "download", *args],
        cwd=tmp_path,  # no .env of the checkout
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def printed_models(stdout: str) -> ModelPaths:
    values = dict(line.split("=", 1) for line in stdout.splitlines())
    assert sorted(values) == [f"SOJOURN_MODELS__{name}" for name in ("BASE", "REFINER", "UNCLIP", "VAE")]
    return ModelPaths(
        **{key.removeprefix("SOJOURN_MODELS__").lower(): value for key, value in values.items()}
    )


def test_download_prints_settings_whose_folders_the_worker_loads(
    tmp_path: Path, hub_cache: Path, tiny_models: ModelPaths
) -> None:  # type: ignore[no-untyped-def]
    # A setting from before Stability AI withdrew the SD 2.x repositories: the community copy serves.
    result = download_command(
        tmp_path, settings={"SOJOURN_MODELS__UNCLIP": "stabilityai/stable-diffusion-2-1-unclip"}
    )

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    paths = printed_models(result.stdout)
    assert Path(paths.base).is_relative_to(
        hub_cache / "models--stabilityai--stable-diffusion-xl-base-1.0" / "snapshots"
    )
    assert Path(paths.unclip).is_relative_to(hub_cache / "models--sd2-community--stable-diffusion-2-1-unclip")
    assert "trying the community copy sd2-community/stable-diffusion-2-1-unclip" in result.stderr
    assert (weights_variant(paths.base), weights_variant(paths.vae)) == ("fp16", None)

    # The worker's own loading code, on the printed folders.
    import torch
    from safetensors.torch import load_file

    from inference.models import ModelRegistry

    registry = ModelRegistry(paths, device="cpu", dtype="float32")
    registry.preload()  # base with the VAE, then the refiner on the base's modules
    _ = registry.unclip
    assert registry.load_counts == {"vae": 1, "base": 1, "refiner": 1, "unclip": 1}
    expected = load_file(Path(tiny_models.base) / "unet" / "diffusion_pytorch_model.safetensors")
    loaded = registry.base.unet.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in expected.items())


def test_a_second_download_fetches_nothing_and_prints_the_same_lines(tmp_path: Path, hub_cache: Path) -> None:
    first, second = download_command(tmp_path), download_command(tmp_path)
    assert first.returncode == second.returncode == 0, second.stderr
    assert first.stdout == second.stdout


def test_a_missing_repository_is_a_clear_error_with_exit_code_2(tmp_path: Path, hub_cache: Path) -> None:
    shutil.rmtree(hub_cache / "models--stabilityai--stable-diffusion-xl-refiner-1.0")
    result = download_command(tmp_path)
    assert result.returncode == 2
    assert "stabilityai/stable-diffusion-xl-refiner-1.0 could not be fetched" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_missing_weight_file_is_a_clear_error_with_exit_code_2(
    tmp_path: Path, tiny_models: ModelPaths
) -> None:
    cache = tmp_path / "hf" / "hub"
    publish(
        cache,
        HUB_IDS.base,
        Path(tiny_models.base),
        fp16=True,
        omit=["unet/diffusion_pytorch_model.fp16.safetensors"],
    )
    result = download_command(tmp_path)
    assert result.returncode == 2
    assert "stabilityai/stable-diffusion-xl-base-1.0 is only partly downloaded" in result.stderr
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_repository_with_only_bin_weights_is_refused_with_exit_code_2(
    tmp_path: Path, tiny_models: ModelPaths
) -> None:
    source = tmp_path / "source"
    shutil.copytree(tiny_models.base, source)
    (source / "unet" / "diffusion_pytorch_model.safetensors").rename(
        source / "unet" / "diffusion_pytorch_model.bin"
    )
    publish(tmp_path / "hf" / "hub", HUB_IDS.base, source, fp16=True)
    result = download_command(tmp_path)
    assert result.returncode == 2
    assert "the component 'unet' has no safetensors weights" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_truncated_weight_file_fails_verification(tmp_path: Path, tiny_models: ModelPaths) -> None:
    folder = tmp_path / "vae"
    shutil.copytree(tiny_models.vae, folder)
    weights = folder / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelDownloadError, match="incomplete or damaged"):
        verify_model(folder, "vae")
    with pytest.raises(ModelDownloadError, match="needs a StableDiffusionXLPipeline"):
        verify_model(Path(tiny_models.refiner), "base")


def test_download_to_a_folder_puts_each_model_in_its_own_subfolder(
    tmp_path: Path, tiny_models: ModelPaths
) -> None:
    """`--to DIR`: `snapshot_download(local_dir=DIR/<name>)`, served here by a stand-in hub that
    answers each call with the files its allow patterns select, as the hub does."""
    sources = {
        HUB_IDS.base: Path(tiny_models.base),
        HUB_IDS.refiner: Path(tiny_models.refiner),
        HUB_IDS.unclip: Path(tiny_models.unclip),
        HUB_IDS.vae: Path(tiny_models.vae),
    }
    calls: list[tuple[str, Path]] = []

    def snapshot(repo_id: str, *, allow_patterns: list[str], local_dir: Path) -> str:
        calls.append((repo_id, local_dir))
        source = sources[repo_id]
        files = [p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()]
        for name in filter_repo_objects(files, allow_patterns=allow_patterns):
            (local_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, local_dir / name)
        return str(local_dir)

    to = tmp_path / "models"
    paths = download_models(ModelPaths(), to=to, snapshot=snapshot, notify=lambda _message: None)

    assert paths == ModelPaths(
        base=str(to / "stable-diffusion-xl-base-1.0"),
        refiner=str(to / "stable-diffusion-xl-refiner-1.0"),
        unclip=str(to / "stable-diffusion-2-1-unclip"),
        vae=str(to / "sdxl-vae-fp16-fix"),
    )
    assert {local_dir for _repo, local_dir in calls} == {Path(p) for p in paths.model_dump().values()}
    # The tiny models have no fp16 files: each weighted component came in the plain-weights pass.
    assert sorted(p.name for p in (to / "sdxl-vae-fp16-fix").iterdir()) == [
        "config.json",
        "diffusion_pytorch_model.safetensors",
    ]


def test_local_folders_are_verified_not_downloaded(tiny_models: ModelPaths) -> None:
    def snapshot(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("nothing to download")

    assert download_models(tiny_models, snapshot=snapshot, notify=lambda _m: None) == ModelPaths(
        **{name: str(Path(path).resolve()) for name, path in tiny_models.model_dump().items()}
    )
