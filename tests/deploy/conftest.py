"""A real Compose implementation for the deploy tests, installed from Debian's packages when absent
(as scripts/with-services.sh installs PostgreSQL): its `config` is the check of docker/compose.yaml."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

# Debian 12 packages Compose 1.29 as `docker-compose`; later releases package Compose 2, which also
# runs on its own (as `docker-compose`, or the CLI plugin's binary).
CANDIDATES = (["docker-compose"], ["/usr/libexec/docker/cli-plugins/docker-compose"], ["docker", "compose"])


def _find_compose() -> list[str] | None:
    for command in CANDIDATES:
        if shutil.which(command[0]) is None:
            continue
        if subprocess.run([*command, "version"], capture_output=True, timeout=60).returncode == 0:
            return list(command)
    return None


@pytest.fixture(scope="session")
def docker_compose() -> list[str]:
    """The command that runs Compose (`docker-compose`), installed with apt-get if need be."""
    found = _find_compose()
    if found is None:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = [*sudo, "apt-get", "install", "-y", "-qq", "docker-compose"]
        if subprocess.run(install, env=environment, capture_output=True, timeout=900).returncode != 0:
            subprocess.run([*sudo, "apt-get", "update", "-qq"], env=environment, check=True, timeout=900)
            subprocess.run(install, env=environment, check=True, capture_output=True, timeout=900)
        found = _find_compose()
    assert found is not None, "Debian's docker-compose package installed no usable `docker-compose`"
    return found
