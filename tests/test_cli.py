"""The `sojourn` command as a user runs it: parse, and render on embedded defaults."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from PIL import Image

from sojourn.bootstrap import settings_environment
from sojourn.settings import Settings


def sojourn(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sojourn", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def test_parse_prints_one_json_spec_per_permutation() -> None:
    result = sojourn(
        "parse", "a {red, blue} lighthouse::2 storm::-0.5 --ar {1:1, 16:9} --seed 7 --no fog, rain"
    )
    assert result.returncode == 0, result.stderr
    specs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(specs) == 4
    assert {(s["width"], s["height"]) for s in specs} == {(1024, 1024), (1344, 768)}
    first = specs[0]
    assert first["prompt"] == [{"text": "a red lighthouse", "weight": 2.0}, {"text": "storm", "weight": -0.5}]
    assert first["negative_prompt"] == "fog, rain" and first["seed"] == 7
    for key in (
        "steps",
        "guidance",
        "chaos",
        "stylize",
        "quality",
        "stop",
        "tile",
        "preset",
        "repeat",
        "private",
        "mode",
    ):
        assert key in first


def test_parse_rejects_a_bad_prompt_with_a_clear_message_and_exit_2() -> None:
    result = sojourn("parse", "a cat --ar 9:1")
    assert result.returncode == 2
    assert "--ar 9:1 is too wide" in result.stderr and "1:4 and 4:1" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_render_runs_the_whole_path_on_embedded_defaults(tmp_path: Path, tiny_models) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, redis_url=None, models=tiny_models)
    env = settings_environment(settings)
    env.pop("REDIS_URL", None)
    env.pop("SOJOURN_DATABASE_URL")  # the embedded SQLite default under the data dir
    result = sojourn("render", "a lighthouse in a storm --ar 16:9 --seed 7", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = result.stdout.splitlines()
    report = json.loads(line)
    assert report["status"] == "succeeded" and report["seeds"] == [7, 8, 9, 10] and report["cost"] == 4
    assert Image.open(report["grid"]).size == (1344, 768)
    assert [Image.open(path).size for path in report["images"]] == [(1344, 768)] * 4
    assert Path(report["grid"]).is_relative_to(tmp_path)
    assert (tmp_path / "sojourn.db").exists()


def test_render_of_a_bad_prompt_charges_nothing_and_exits_2(tmp_path: Path, tiny_models) -> None:  # type: ignore[no-untyped-def]
    env = settings_environment(Settings(data_dir=tmp_path, redis_url=None, models=tiny_models))
    env.pop("REDIS_URL", None)
    env.pop("SOJOURN_DATABASE_URL")
    result = sojourn("render", "a cat --chaos 101", "--worker", "no", env=env)
    assert result.returncode == 2 and "--chaos" in result.stderr and "0" in result.stderr
    assert "Traceback" not in result.stderr


_ = os


def test_bot_without_a_token_says_where_to_get_one() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "SOJOURN_DISCORD_TOKEN")}
    result = sojourn("bot", env=env, timeout=60)
    assert result.returncode == 2 and "DISCORD_TOKEN is not set" in result.stderr


def test_run_with_a_token_migrates_starts_a_worker_and_the_web_gallery_and_runs_the_bot(  # type: ignore[no-untyped-def]
    tmp_path: Path, tiny_models, monkeypatch, capsys
) -> None:
    import psutil

    from sojourn import cli

    seen: dict[str, object] = {}

    def run_bot(settings: Settings) -> int:  # in place of connecting to Discord
        assert settings.discord_token is not None
        children = psutil.Process().children(recursive=True)
        seen["token"] = settings.discord_token.get_secret_value()
        seen["worker"] = any("worker" in " ".join(child.cmdline()) for child in children)
        seen["migrated"] = (tmp_path / "sojourn.db").exists()
        seen["web"] = gallery_answers(f"http://127.0.0.1:{port}/")
        return 0

    monkeypatch.setattr(cli, "_run_bot", run_bot)
    # Children the suite already had (the browser tests' Chromium, for one) are not this run's.
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    environment = settings_environment(Settings(data_dir=tmp_path, redis_url=None, models=tiny_models))
    for name in ("REDIS_URL", "SOJOURN_DATABASE_URL"):
        environment.pop(name, None)
    environment["DISCORD_TOKEN"] = "not.a.real-token"
    port = free_port()
    environment["SOJOURN_WEB__PORT"] = str(port)
    monkeypatch.setattr(os, "environ", environment)

    assert cli.main(["run"]) == 0

    assert seen == {"token": "not.a.real-token", "worker": True, "migrated": True, "web": True}
    said = capsys.readouterr().out
    assert f"the web gallery at http://127.0.0.1:{port}/" in said
    assert "SOJOURN_WEB__PUBLIC_URL" in said  # how to give results a 🔗 Web button
    left = [child for child in psutil.Process().children(recursive=True) if child.pid not in before]
    assert not left  # the worker was stopped with the bot


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def gallery_answers(url: str, timeout: float = 60.0) -> bool:
    """Whether the gallery answers 200 before `timeout` (a child process takes a while to start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            time.sleep(0.2)
    return False
