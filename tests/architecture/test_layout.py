"""The house rules that no single feature test would catch: layering, and imports without side effects."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("sojourn", "db", "bot", "inference")
# The composition root wires everything together; it may reach the worker side (lazily).
COMPOSITION_ROOT = {"sojourn/cli.py", "sojourn/bootstrap.py"}


def modules_of(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (REPO / package).rglob("*.py"))


def imported_names(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (lazy imports inside functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def imports_any(path: Path, roots: tuple[str, ...]) -> list[str]:
    return sorted(name for name in imported_names(path) if name.split(".")[0] in roots)


@pytest.mark.parametrize(
    ("package", "forbidden", "exempt"),
    [
        ("sojourn", ("inference", "bot", "discord", "torch", "diffusers"), COMPOSITION_ROOT),
        ("sojourn/services", ("inference", "bot", "discord", "torch", "diffusers", "celery"), set()),
        ("db", ("inference", "bot", "discord", "torch"), set()),
        ("bot", ("inference", "torch", "diffusers"), set()),
    ],
)
def test_layers_import_only_downwards(package: str, forbidden: tuple[str, ...], exempt: set[str]) -> None:
    offenders = {
        str(path.relative_to(REPO)): imports_any(path, forbidden)
        for path in modules_of(package)
        if str(path.relative_to(REPO)) not in exempt and imports_any(path, forbidden)
    }
    assert offenders == {}, f"{package} must not import {forbidden}: {offenders}"


def test_importing_any_module_creates_no_file(tmp_path: Path) -> None:
    names = [
        ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for path in modules_of(*PACKAGES)
        if path.name != "__main__.py"
    ]
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    env = {key: value for key, value in env.items() if not key.startswith("SOJOURN_")}
    result = subprocess.run(
        [sys.executable, "-c", script, *names],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [], (
        "importing the modules wrote to the working directory"
    )
