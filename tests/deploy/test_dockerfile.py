"""docker/Dockerfile installs what `make install` installs, and its install layout runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.deploy.files import (
    DOCKERIGNORE,
    REPO,
    dockerfile,
    extras,
    makefile_installs,
    pyproject,
    shipped_packages,
)

TARGETS = {"app": "cpu", "worker": "cuda"}  # the images compose builds, by torch build
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _installs(target: str) -> tuple[list[str], list[str], list[str]]:
    """A target's pip upgrade, torch install and project install, checking there is nothing else."""
    installs = dockerfile().pip_installs(target)
    assert len(installs) == 3, f"{target}: expected pip, torch, the project; got {installs}"
    return installs[0], installs[1], installs[2]


def test_torch_is_the_makefiles_pin_cpu_build_for_the_app_and_cuda_build_for_the_worker() -> None:
    make = makefile_installs()
    assert make.torch_cpu[0].startswith("torch==")  # the Makefile pins the CPU build
    # ...and installs the GPU build from the default index: PyPI's Linux wheel is the CUDA build.
    assert make.torch_gpu == ["torch"]
    for target, build in TARGETS.items():
        _, torch, _ = _installs(target)
        assert torch[0] == make.torch_cpu[0], f"{target}: {torch[0]}; the Makefile: {make.torch_cpu[0]}"
        if build == "cpu":  # the Makefile's TORCH_CPU_ARGS, as the image sets it
            assert torch[1:] == ["--index-url", PYTORCH_CPU_INDEX], target
        else:
            assert torch[1:] == [], f"{target}: the CUDA build comes from PyPI, with no index arguments"


def test_pip_is_upgraded_first_and_torch_is_installed_before_the_package() -> None:
    # The package's `torch>=` requirement is then met by the build chosen, never PyPI's default.
    assert makefile_installs().upgrades_pip
    for target in TARGETS:
        upgrade, torch, project = _installs(target)
        assert upgrade == ["--upgrade", "pip"] and torch[0].startswith("torch") and project, target


def test_the_package_is_installed_like_the_makefile_does_less_the_dev_extra_and_not_editable() -> None:
    make_project = makefile_installs().project
    wanted = extras(make_project[-1]) - {"dev"}
    for target in TARGETS:
        _, _, project = _installs(target)
        assert "-e" not in project and "--editable" not in project, target
        assert len(project) == 1 and extras(project[0]) == wanted, f"{target}: {project}"
        assert project[0].split("[")[0] == _source_copy(target), f"{target} installs {project[0]}"


def _source_copy(target: str) -> str:
    """Where a target copies the source stage's tree (`COPY --from=source /src DEST`)."""
    copies = [args.split() for args in dockerfile().instructions(target, "COPY") if "--from=source" in args]
    assert len(copies) == 1, f"{target}: one COPY of the source stage"
    return copies[0][-1]


def _source_stage_copies() -> dict[str, str]:
    """The source stage's COPY lines: repository path -> path in the stage."""
    copies: dict[str, str] = {}
    for args in dockerfile().instructions("source", "COPY"):
        *sources, destination = args.split()
        for source in sources:
            copies[source] = destination if not destination.endswith("/") else destination + source
    return copies


def test_the_source_stage_copies_what_pip_install_reads() -> None:
    copies = _source_stage_copies()
    needed = ["pyproject.toml", pyproject()["project"]["readme"], *shipped_packages()]
    assert sorted(copies) == sorted(needed)
    assert all(destination.startswith("/src/") for destination in copies.values())


def test_the_build_context_admits_every_file_the_dockerfile_copies() -> None:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    assert "*" in lines  # everything else (.venv, .sojourn, caches) stays out of the context
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set(_source_stage_copies())
    for stage in dockerfile().stages.values():
        for name, args in stage.instructions:
            if name == "COPY" and "--from=" not in args and stage.name != "source":
                copied.update(args.split()[:-1])
    assert copied == admitted


def test_every_target_runs_as_a_user_with_a_health_check_on_a_pinned_base() -> None:
    base = dockerfile().base_image("app")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base
    for target in ("app", "worker", "flower"):
        assert dockerfile().base_image(target) == base  # one Python, one OS, for every service
        assert dockerfile().final_user(target) not in ("root", "0"), target
        assert dockerfile().instructions(target, "HEALTHCHECK"), target
    assert dockerfile().instructions("source", "RUN") == []


def test_the_installed_package_migrates_from_the_images_layout(tmp_path: Path) -> None:
    """As the images install it: the source stage's files and a plain `pip install`; then
    `sojourn migrate` (migrations/ ships in the wheel) and the gallery's templates work from there alone."""
    source = tmp_path / "src"
    source.mkdir()
    for path, destination in _source_stage_copies().items():
        copy = source / Path(destination).relative_to("/src")
        if (REPO / path).is_dir():
            shutil.copytree(REPO / path, copy, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(REPO / path, copy)
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target"]
    subprocess.run([*pip, str(site), str(source)], check=True, timeout=300)
    assert (site / "migrations" / "versions").is_dir()  # shipped in the wheel, where db/migrate.py looks

    data = tmp_path / "data"
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("SOJOURN_", "REDIS_URL"))
    }
    environment |= {"PYTHONPATH": str(site), "SOJOURN_DATA_DIR": str(data)}
    script = (
        "import db, web.app, sys; from sojourn.cli import main;"
        "assert db.__file__.startswith(sys.argv[1]), db.__file__;"
        "assert (web.app.HERE / 'templates').is_dir() and (web.app.HERE / 'static').is_dir();"
        "sys.exit(main(['migrate']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(site)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "latest schema" in result.stdout and (data / "sojourn.db").exists()
