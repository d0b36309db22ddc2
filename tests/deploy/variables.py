"""Every environment variable sojourn reads: its settings' fields, and the code's own os.environ reads."""

from __future__ import annotations

import ast
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import AliasChoices, BaseModel

from sojourn.settings import Settings
from tests.deploy.files import REPO, shipped_packages


@dataclass(frozen=True)
class SettingVariable:
    name: str  # the spelling to document
    path: tuple[str, ...]  # the field's path from Settings, e.g. ("web", "port")
    aliases: tuple[str, ...] = ()  # other spellings the settings accept

    def value(self, settings: Settings) -> Any:
        value: Any = settings
        for part in self.path:
            value = getattr(value, part)
        return value


def settings_variables(model: type[BaseModel] = Settings) -> list[SettingVariable]:
    """The variables a settings class reads: prefix + field, nested models as PREFIX_FIELD__SUB."""
    config = Settings.model_config
    prefix, delimiter = config.get("env_prefix", ""), config.get("env_nested_delimiter") or "__"
    return list(_walk(model, prefix, delimiter, ()))


def _walk(model: type[BaseModel], prefix: str, delimiter: str, path: tuple[str, ...]):  # type: ignore[no-untyped-def]
    for name, info in model.model_fields.items():
        nested = _model_of(info.annotation)
        spellings: tuple[str, ...]
        if isinstance(info.validation_alias, AliasChoices):
            spellings = tuple(c for c in info.validation_alias.choices if isinstance(c, str))
        elif isinstance(info.validation_alias, str):
            spellings = (info.validation_alias,)
        elif info.alias:
            spellings = (info.alias,)
        else:
            spellings = ((prefix + name).upper(),)
        if nested is not None:
            yield from _walk(nested, spellings[0] + delimiter, delimiter, (*path, name))
        else:
            yield SettingVariable(spellings[0], (*path, name), spellings[1:])


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (`Model` or `Model | None`); None for a plain value, a list, a dict."""
    candidates = [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        candidates = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if len(candidates) == 1 and isinstance(candidates[0], type) and issubclass(candidates[0], BaseModel):
        return candidates[0]
    return None


# --- os.environ reads in the shipped code ---------------------------------------------------------


def environ_reads() -> dict[str, str]:
    """Variables the shipped code reads itself (`os.environ.get`, `os.getenv`, `os.environ[...]`,
    `... in os.environ`): name -> where. Writes (`setdefault`, assignment) are not reads."""
    found: dict[str, str] = {}
    for folder in shipped_packages():
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            constants = {
                target.id: node.value.value
                for node in tree.body
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                for target in node.targets
                if isinstance(target, ast.Name) and isinstance(node.value.value, str)
            }
            for node in ast.walk(tree):
                for key in _read_keys(node):
                    where = f"{path.relative_to(REPO)}:{node.lineno}"  # type: ignore[attr-defined]
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        found[key.value] = where
                    elif isinstance(key, ast.Name) and key.id in constants:
                        found[constants[key.id]] = where
                    else:
                        raise AssertionError(f"{where}: reads a variable whose name is not a constant")
    return found


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _read_keys(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
        if node.func.attr == "get" and _is_environ(node.func.value):
            return [node.args[0]]
        if node.func.attr == "getenv":
            return [node.args[0]]
    if isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.ctx, ast.Load):
        return [node.slice]
    if (
        isinstance(node, ast.Compare)
        and any(_is_environ(c) for c in node.comparators)
        and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops)
    ):
        return [node.left]
    return []
