"""Finding and reading stack files (stacks/Pulumi.<stack>.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class StackNotFound(Exception):
    pass


def project_root(start: Path | None = None) -> Path:
    """The folder holding Pulumi.yaml: from `start` (default: cwd) upwards, else this checkout."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return Path(__file__).resolve().parent.parent


def resolve(stack: str) -> tuple[str, Path]:
    """A stack name (aws-dev) or a path to a stack YAML -> (stack name, file)."""
    candidate = Path(stack)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        name = candidate.stem.removeprefix("Pulumi.")
        return name, candidate
    if "/" in stack or "\\" in stack or candidate.suffix in (".yaml", ".yml"):
        raise StackNotFound(f"stack {stack!r}: no such stack file; allowed: a stack under stacks/ ({', '.join(names()) or 'none'}) "
                            "or the path of an existing stack YAML")
    path = project_root() / "stacks" / f"Pulumi.{stack}.yaml"
    if path.is_file():
        return stack, path
    known = ", ".join(names()) or "none"
    raise StackNotFound(f"stack {stack!r}: no file {path}; allowed: a stack under stacks/ ({known}) or a path to a stack YAML")


def names() -> list[str]:
    folder = project_root() / "stacks"
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in folder.glob("Pulumi.*.yaml"))


class YamlFloat(float):
    """A float read from YAML, keeping the text it was written as: an unquoted `1.30` reads as 1.3,
    and the error for a setting that wants a string says how to quote it."""

    text: str

    def __new__(cls, value: float, text: str) -> "YamlFloat":
        made = super().__new__(cls, value)
        made.text = text
        return made


class StackLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (PyYAML keeps the last one silently:
    a second `environment: dev` under `environment: prod` would turn protection off)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key] + 1}); allowed: each key once per mapping",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        value = super().construct_yaml_float(node)
        return YamlFloat(value, str(node.value))


StackLoader.add_constructor("tag:yaml.org,2002:map", StackLoader.construct_mapping)
StackLoader.add_constructor("tag:yaml.org,2002:float", StackLoader.construct_yaml_float)


def read_config(path: Path) -> dict[str, Any]:
    """The `config:` map of a stack file, as the Pulumi CLI would hand it to the program."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise StackNotFound(f"{path}: got a file that is not UTF-8 text; allowed: a Pulumi stack YAML file") from None
    except OSError as exc:
        raise StackNotFound(f"{path}: cannot read it ({exc.strerror}); allowed: a readable Pulumi stack YAML file") from None
    if "\x00" in text:
        raise StackNotFound(f"{path}: got a binary file; allowed: a Pulumi stack YAML file")
    try:
        document = yaml.load(text, Loader=StackLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise StackNotFound(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise StackNotFound(f"{path}: got a file without a 'config:' mapping; allowed: a Pulumi stack file with 'config:'")
    return dict(document.get("config") or {})
