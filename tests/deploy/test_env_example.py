"""docker/.env.example documents every variable sojourn reads, and nothing else, with true values.

A setting added to sojourn/settings.py (or an `os.environ` read added to the code) fails here until
it is documented there.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from sojourn.settings import Settings
from tests.deploy.files import dockerfile, env_example, environment, interpolated_variables, services
from tests.deploy.variables import SettingVariable, environ_reads, settings_variables

COMPOSE_OWN = {"COMPOSE_PROJECT_NAME"}  # read by Compose itself from docker/.env
FINAL_TARGETS = ("app", "worker", "flower")


def documented() -> dict[str, Any]:
    return {line.name: line for line in env_example()}


def test_every_variable_sojourn_reads_is_documented() -> None:
    wanted = [v.name for v in settings_variables()] + sorted({*environ_reads(), *interpolated_variables()})
    missing = [name for name in wanted if name not in documented()]
    assert not missing, f"add to docker/.env.example, each with a one-line comment: {missing}"


def test_every_documented_variable_is_read() -> None:
    read = {v.name for v in settings_variables()} | {
        *environ_reads(),
        *interpolated_variables(),
        *COMPOSE_OWN,
    }
    aliases = {alias: v.name for v in settings_variables() for alias in v.aliases}
    unread = {name: aliases.get(name) for name in documented() if name not in read}
    assert not unread, f"docker/.env.example names unread variables (alias -> the spelling to use): {unread}"


def test_each_variable_appears_once_under_a_comment_of_its_own() -> None:
    counts = Counter(line.name for line in env_example())
    assert [name for name, count in counts.items() if count > 1] == []
    assert [line.name for line in env_example() if not line.comment.strip()] == []


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in settings_variables():
        for name in (variable.name, *variable.aliases):
            monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _settings_with(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> Settings:
    with monkeypatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        return Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_set_values_make_valid_settings(clean_environment: pytest.MonkeyPatch) -> None:
    set_lines = {line.name: line.value for line in env_example() if line.set}
    settings = _settings_with(clean_environment, set_lines)  # raises on a bad value
    assert settings.redis_url and settings.database_url
    assert isinstance(logging.getLevelName(set_lines["SOJOURN_LOG_LEVEL"]), int)
    # Compose refuses to start without the variables it interpolates.
    assert interpolated_variables() <= set(set_lines)


def _in_containers(name: str) -> str | None:
    """What compose.yaml or the image sets a variable to (None: neither does)."""
    by_compose = {env[name] for env in map(environment, services().values()) if name in env}
    assert len(by_compose) <= 1, f"compose.yaml sets {name} to different values: {by_compose}"
    if by_compose:
        return by_compose.pop()
    by_image = {dockerfile().env(target).get(name) for target in FINAL_TARGETS} - {None}
    assert len(by_image) <= 1, f"the images set {name} to different values: {by_image}"
    return by_image.pop() if by_image else None


def test_commented_values_are_what_the_containers_use(clean_environment: pytest.MonkeyPatch) -> None:
    """A commented line shows the value in effect: compose.yaml's, the image's, or the default."""
    by_name: dict[str, SettingVariable] = {v.name: v for v in settings_variables()}
    wrong = {}
    for line in env_example():
        if line.set:
            continue
        in_containers = _in_containers(line.name)
        if line.name not in by_name:  # read by the code itself: shown unset, or as the containers set it
            if line.value != (in_containers or ""):
                wrong[line.name] = (line.value, in_containers)
            continue
        variable = by_name[line.name]
        shown = _settings_with(clean_environment, {line.name: line.value} if line.value else {})
        used = _settings_with(clean_environment, {line.name: in_containers} if in_containers else {})
        if variable.value(shown) != variable.value(used):
            wrong[line.name] = (line.value, variable.value(used))
    assert not wrong, f"docker/.env.example shows values the containers do not use (shown, used): {wrong}"


def test_the_connection_urls_name_the_compose_services() -> None:
    lines = documented()
    database = make_url(lines["SOJOURN_DATABASE_URL"].value)
    postgres = environment(services()["postgres"])
    assert database.host in services() and database.get_backend_name() == "postgresql"
    assert database.username == postgres["POSTGRES_USER"] and database.database == postgres["POSTGRES_DB"]
    assert database.password == lines["POSTGRES_PASSWORD"].value
    assert make_url(lines["REDIS_URL"].value).host in services()
