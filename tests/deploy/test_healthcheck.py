"""docker/healthcheck.py, the images' HEALTHCHECK, against real services: exit 0 while they answer,
1 with one line saying why when they do not."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sojourn.bootstrap import settings_environment
from tests.conftest import running_worker, worker_settings
from tests.deploy.files import HEALTHCHECK_SCRIPT

REDIS_DB = 13


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(**values: str) -> dict[str, str]:
    """This process's environment without sojourn's settings, plus `values`."""
    kept = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SOJOURN_") and key not in ("REDIS_URL", "DISCORD_TOKEN")
    }
    return kept | values


def healthcheck(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK_SCRIPT), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_services_is_healthy_while_the_database_and_redis_answer(  # type: ignore[no-untyped-def]
    database_url: str, redis_base_url: str, tmp_path: Path
) -> None:
    env = _environment(SOJOURN_DATABASE_URL=database_url, REDIS_URL=redis_base_url)
    result = healthcheck("services", env=env, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "healthy", result.stdout + result.stderr

    closed = _free_port()
    no_database = env | {"SOJOURN_DATABASE_URL": f"postgresql+asyncpg://sojourn@127.0.0.1:{closed}/sojourn"}
    result = healthcheck("services", env=no_database, cwd=tmp_path)
    assert result.returncode == 1 and "the database does not answer" in result.stdout, result.stdout

    no_redis = env | {"REDIS_URL": f"redis://127.0.0.1:{closed}/0"}
    result = healthcheck("services", env=no_redis, cwd=tmp_path)
    assert result.returncode == 1 and "Redis does not answer" in result.stdout, result.stdout


@pytest.fixture
def web_server(database_url: str, tmp_path: Path) -> Iterator[int]:
    """`sojourn web` on a free loopback port; yields the port."""
    port = _free_port()
    env = _environment(
        SOJOURN_DATABASE_URL=database_url,
        SOJOURN_DATA_DIR=str(tmp_path / "data"),
        SOJOURN_WEB__HOST="127.0.0.1",
        SOJOURN_WEB__PORT=str(port),
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "sojourn", "web"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_web_is_healthy_while_the_gallery_answers(web_server: int, database_url: str, tmp_path: Path) -> None:
    # As in compose: the gallery listens on 0.0.0.0 and the check asks it on loopback.
    env = _environment(
        SOJOURN_DATABASE_URL=database_url, SOJOURN_WEB__HOST="0.0.0.0", SOJOURN_WEB__PORT=str(web_server)
    )
    deadline = time.monotonic() + 60
    while (result := healthcheck("web", env=env, cwd=tmp_path)).returncode != 0:
        assert time.monotonic() < deadline, f"the gallery never answered: {result.stdout}"
        time.sleep(0.5)
    assert result.stdout.strip() == "healthy"
    result = healthcheck("http", f"http://127.0.0.1:{web_server}/", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout

    closed = str(_free_port())
    result = healthcheck("web", env=env | {"SOJOURN_WEB__PORT": closed}, cwd=tmp_path)
    assert result.returncode == 1 and "does not answer" in result.stdout, result.stdout
    result = healthcheck("http", f"http://127.0.0.1:{web_server}/no-such-page", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout


def test_worker_is_healthy_while_this_containers_node_answers_a_ping(  # type: ignore[no-untyped-def]
    database_url: str, redis_base_url: str, tiny_models, tmp_path: Path
) -> None:
    # `%h` expands to this host's name in the worker and in the check alike, as in each replica.
    settings = worker_settings(
        database_url, redis_base_url, REDIS_DB, tmp_path / "data", tiny_models, worker_name="deploy-check@%h"
    )
    env = settings_environment(settings)
    with running_worker(settings):
        result = healthcheck("worker", env=env, cwd=tmp_path)
        assert result.returncode == 0 and result.stdout.strip() == "healthy", result.stdout + result.stderr
        other = env | {"SOJOURN_WORKER_NAME": "another-replica@%h"}
        result = healthcheck("worker", env=other, cwd=tmp_path)
        assert result.returncode == 1 and f"another-replica@{socket.gethostname()}" in result.stdout
