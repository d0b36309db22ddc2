"""docker/compose.yaml: a real Compose accepts it, its commands exist, and workers scale."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sojourn.cli import _build_parser
from tests.deploy.files import (
    HEALTHCHECK_SCRIPT,
    REPO,
    compose,
    dockerfile,
    env_example,
    environment,
    mounts,
    services,
)

APP_SERVICES = ("migrate", "bot", "web", "worker", "flower")  # built from docker/Dockerfile
LONG_RUNNING = ("postgres", "redis", "bot", "web", "worker", "flower")
BUILD = {"context": "..", "dockerfile": "docker/Dockerfile"}  # the context: the repository root


def _project(root: Path) -> Path:
    """docker/ laid out under `root` as in the repository, with .env.example as its .env."""
    shutil.copytree(REPO / "docker", root / "docker", ignore=shutil.ignore_patterns(".env"))
    shutil.copy(root / "docker" / ".env.example", root / "docker" / ".env")
    return root / "docker" / "compose.yaml"


def _config(docker_compose: list[str], file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*docker_compose, "-f", str(file), *extra, "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_real_compose_accepts_the_file_with_the_example_settings(
    docker_compose: list[str], tmp_path: Path
) -> None:
    file = _project(tmp_path)
    for profile in ((), ("--profile", "flower")):
        result = _config(docker_compose, file, *profile)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_check_rejects_a_broken_file(docker_compose: list[str], tmp_path: Path) -> None:
    file = _project(tmp_path)
    file.write_text(file.read_text().replace("stop_grace_period:", "stop_grace_periods:", 1))
    result = _config(docker_compose, file)
    assert result.returncode != 0 and "stop_grace_periods" in result.stdout + result.stderr
    (file.parent / ".env").unlink()  # the settings file is required
    assert _config(docker_compose, file).returncode != 0


def _healthcheck_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sojourn_healthcheck", HEALTHCHECK_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_runs(command: list[str], where: str) -> None:
    """A command our images run exists: a `sojourn` subcommand, a health check, or Flower."""
    if command[0] == "sojourn":
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                _build_parser().parse_args(command[1:])
        except SystemExit as stop:  # --help exits 0
            if stop.code != 0:
                pytest.fail(f"{where}: `{shlex.join(command)}` is not a sojourn command")
    elif command[0] == "sojourn-healthcheck":
        try:
            _healthcheck_module().CHECKS[command[1]]
        except KeyError:
            pytest.fail(f"{where}: `{shlex.join(command)}` is not a health check")
    else:  # Flower, in the one image that installs it
        assert command[:2] == ["sh", "-c"] and re.match(r"exec celery .* flower\b", command[2]), where
        assert any(words[0].startswith("flower") for words in dockerfile().pip_installs("flower")), where


def test_every_command_the_images_run_exists() -> None:
    for name in APP_SERVICES:
        service = services()[name]
        _assert_runs(service["command"], f"compose service {name}")
        test = service.get("healthcheck", {}).get("test")
        if test and test != ["NONE"] and not service["healthcheck"].get("disable"):
            assert test[0] == "CMD", f"compose service {name}: health check in exec form"
            _assert_runs(test[1:], f"compose service {name}'s health check")
    for target in ("app", "worker", "flower"):
        _assert_runs(dockerfile().exec_form(target, "CMD"), f"Dockerfile target {target}")
        _assert_runs(dockerfile().exec_form(target, "HEALTHCHECK"), f"{target}'s HEALTHCHECK")


def _target(service: dict[str, Any]) -> str:
    return str(service["build"]["target"])


def test_every_long_running_service_has_a_health_check() -> None:
    for name in LONG_RUNNING:
        service = services()[name]
        own = service.get("healthcheck")
        if own is None:
            assert "build" in service, f"{name} has no health check"
            assert dockerfile().instructions(_target(service), "HEALTHCHECK"), f"{name} has no health check"
        else:
            assert not own.get("disable") and own["test"], f"{name} has no health check"
        assert service["restart"] == "unless-stopped", name


def test_the_schema_is_migrated_once_before_anything_reads_the_database() -> None:
    migrate = services()["migrate"]
    assert migrate["command"] == ["sojourn", "migrate"] and migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    after_migrate = {"condition": "service_completed_successfully"}
    for name in ("bot", "web", "worker"):
        assert services()[name]["depends_on"]["migrate"] == after_migrate, name
    for name in ("bot", "worker", "flower"):  # the broker
        assert services()[name]["depends_on"]["redis"] == {"condition": "service_healthy"}, name


def test_postgres_and_redis_keep_their_data_and_third_party_images_are_pinned() -> None:
    assert "/var/lib/postgresql/data" in mounts(services()["postgres"]).values()
    assert mounts(services()["redis"]) == {"redis-data": "/data"}
    assert services()["redis"]["command"][-2:] == ["--appendonly", "yes"]
    for name, service in services().items():
        if "build" in service:
            assert all(service["build"][key] == value for key, value in BUILD.items()), name
            continue
        image, _, tag = service["image"].partition(":")
        assert re.match(r"^\d+\.\d+(\.\d+)?-\w+$", tag), f"{name}: pin {image} to a version tag, not {tag!r}"


def test_each_app_service_reads_docker_env_and_builds_its_target() -> None:
    expected = {"migrate": "app", "bot": "app", "web": "app", "worker": "worker", "flower": "flower"}
    for name, target in expected.items():
        service = services()[name]
        assert service["env_file"] in (".env", [".env"]), name
        assert _target(service) == target and target in dockerfile().stages, name
        assert service["image"] == f"sojourn:{target}", name
        assert service.get("init") is True, name


def test_workers_scale_with_a_node_name_and_a_gpu_each() -> None:
    worker = services()["worker"]
    assert "container_name" not in worker and "hostname" not in worker  # one per replica
    names = [line for line in env_example() if line.name == "SOJOURN_WORKER_NAME"]
    assert "SOJOURN_WORKER_NAME" not in environment(worker)
    assert names and not names[0].set and "%h" in names[0].value  # the container's host name
    assert worker["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    ]
    assert worker["stop_grace_period"]


def test_images_and_model_weights_live_on_shared_volumes() -> None:
    for name in ("bot", "web", "worker"):
        service = services()[name]
        assert environment(service)["SOJOURN_STORAGE_DIR"] == mounts(service)["images"], name
    worker = services()["worker"]
    cache = mounts(worker)["model-cache"]
    assert environment(worker)["HF_HOME"] == cache == dockerfile().env("worker")["HF_HOME"]
    declared = set(compose()["volumes"])
    used = {volume for service in services().values() for volume in mounts(service)}
    assert used == declared


def test_the_web_gallery_is_published_and_flower_only_on_loopback_behind_a_profile() -> None:
    web = services()["web"]
    env = environment(web)
    assert env["SOJOURN_WEB__HOST"] == "0.0.0.0"
    published = [port.rsplit(":", 1)[-1] for port in web["ports"]]
    assert published == [env["SOJOURN_WEB__PORT"]]
    flower = services()["flower"]
    assert flower["profiles"] == ["flower"]
    assert all(port.startswith("127.0.0.1:") for port in flower["ports"])
    assert "profiles" not in web and "profiles" not in services()["worker"]


def test_secrets_come_only_from_docker_env() -> None:
    # docker/.env holds them, and docker/.gitignore keeps it out of git.
    for name, service in services().items():
        for key, value in environment(service).items():
            if re.search(r"TOKEN|PASSWORD|SECRET", key):
                assert value.startswith("${"), f"{name}: {key} must come from docker/.env"
    assert "DISCORD_TOKEN" not in {key for service in services().values() for key in environment(service)}
    assert ".env" in (REPO / "docker" / ".gitignore").read_text().split()
