"""docker/'s files, the Makefile and pyproject.toml, read the way the deploy tests compare them."""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
DOCKERFILE = DOCKER / "Dockerfile"
DOCKERIGNORE = DOCKER / "Dockerfile.dockerignore"
HEALTHCHECK_SCRIPT = DOCKER / "healthcheck.py"


# --- compose.yaml ---------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    """compose.yaml with its anchors and merge keys resolved (YAML's own, as Compose reads them)."""
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's `environment:`, either spelling (map or KEY=VALUE list)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """A service's named-volume mounts, volume name -> path in the container."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        found[source] = target
    return found


def interpolated_variables() -> set[str]:
    """The variables compose.yaml interpolates (`${NAME...}`; `$$` is a literal dollar)."""
    text = COMPOSE_FILE.read_text().replace("$$", "")
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))


# --- .env.example ---------------------------------------------------------------------------------

_VARIABLE_LINE = re.compile(r"^(# )?([A-Z][A-Z0-9_]*)=(.*)$")


@dataclass(frozen=True)
class EnvLine:
    name: str
    value: str
    set: bool  # False: commented, showing the value the containers use while it stays so
    comment: str  # the comment line just above it


def env_example() -> list[EnvLine]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    found = []
    for number, line in enumerate(lines):
        match = _VARIABLE_LINE.match(line)
        if match:
            above = lines[number - 1] if number else ""
            comment = "" if _VARIABLE_LINE.match(above) or not above.startswith("# ") else above[2:]
            found.append(EnvLine(match[2], match[3], match[1] is None, comment))
    return found


# --- the Dockerfile -------------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str  # an image, or an earlier stage's name
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: dict[str, Stage]

    def chain(self, target: str) -> list[Stage]:
        """The stages a target is built on, the first FROM an image, the target last."""
        stages = [self.stages[target]]
        while stages[0].base in self.stages:
            stages.insert(0, self.stages[stages[0].base])
        return stages

    def base_image(self, target: str) -> str:
        return self.expand(self.chain(target)[0].base, {})

    def instructions(self, target: str, kind: str) -> list[str]:
        return [args for stage in self.chain(target) for name, args in stage.instructions if name == kind]

    def args(self, stage: Stage) -> dict[str, str]:
        """The ARG values a stage's instructions see: its own defaults, or the global ones it redeclares."""
        values: dict[str, str] = {}
        for name, args in stage.instructions:
            if name == "ARG":
                key, _, default = args.partition("=")
                values[key] = _unquote(default) if default else self.global_args.get(key, "")
        return values

    def expand(self, text: str, args: dict[str, str]) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], self.global_args.get(m[1], m[0])), text)

    def pip_installs(self, target: str) -> list[list[str]]:
        """Every `pip install` a target runs, in order, arguments expanded (flags like -q dropped)."""
        installs = []
        for stage in self.chain(target):
            args = self.args(stage)
            for name, command in stage.instructions:
                if name != "RUN":
                    continue
                for part in self.expand(command, args).split("&&"):
                    words = shlex.split(part)
                    if words[:2] == ["pip", "install"]:
                        installs.append([w for w in words[2:] if w not in ("-q", "--quiet")])
        return installs

    def env(self, target: str) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.instructions(target, "ENV"):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                values[key] = value
        return values

    def final_user(self, target: str) -> str:
        users = self.instructions(target, "USER")
        return users[-1] if users else "root"

    def exec_form(self, target: str, kind: str) -> list[str]:
        """The last CMD, or HEALTHCHECK's CMD, of a target, in exec (JSON) form."""
        import json

        last = self.instructions(target, kind)[-1]
        return list(json.loads(last[last.index("[") :]))


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"" else value


@cache
def dockerfile() -> Dockerfile:
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in logical:
        instruction, _, args = line.partition(" ")
        instruction, args = instruction.upper(), args.strip()
        if instruction == "FROM":
            words = args.split()
            current = Stage(name=words[2] if len(words) > 2 else str(len(stages)), base=words[0])
            stages[current.name] = current
        elif current is None:
            assert instruction == "ARG", f"{instruction} before the first FROM"
            key, _, default = args.partition("=")
            global_args[key] = _unquote(default)
        else:
            current.instructions.append((instruction, args))
    return Dockerfile(global_args, stages)


# --- the Makefile and pyproject.toml --------------------------------------------------------------


@dataclass(frozen=True)
class MakefileInstalls:
    """What `make install` installs: pip itself, torch (by whether a GPU is present), the project."""

    upgrades_pip: bool
    torch_gpu: list[str]  # the requirement, then any extra pip arguments
    torch_cpu: list[str]
    project: list[str]  # e.g. ["-e", ".[dev]"]


def makefile_installs() -> MakefileInstalls:
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    installs = [shlex.split(args) for args in re.findall(r"\$\(PIP\) install ([^;\n]*)", text)]
    installs = [[w for w in words if w not in ("-q", "--quiet")] for words in installs]
    torch = [words for words in installs if words[0].startswith("torch")]
    cpu = [words for words in torch if "$(TORCH_CPU_ARGS)" in words]
    gpu = [words for words in torch if "$(TORCH_CPU_ARGS)" not in words]
    project = [words for words in installs if "-e" in words or words[0].startswith(".")]
    assert len(cpu) == len(gpu) == len(project) == 1, f"unexpected installs in the Makefile: {installs}"
    return MakefileInstalls(
        upgrades_pip=["--upgrade", "pip"] in installs,
        torch_gpu=gpu[0],
        torch_cpu=cpu[0],
        project=project[0],
    )


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def shipped_packages() -> list[str]:
    """The top-level packages the wheel carries (pyproject's `packages.find.include`)."""
    include = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({pattern.rstrip("*").rstrip(".") for pattern in include})


def extras(requirement: str) -> set[str]:
    """`.[dev,gpu]` -> {"dev", "gpu"}."""
    match = re.search(r"\[([^\]]*)\]", requirement)
    return {name.strip() for name in match[1].split(",")} if match else set()
