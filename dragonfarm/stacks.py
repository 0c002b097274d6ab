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
    path = project_root() / "stacks" / f"Pulumi.{stack}.yaml"
    if path.is_file():
        return stack, path
    known = ", ".join(names()) or "none"
    raise StackNotFound(f"stack {stack!r}: no file {path}; allowed: a stack under stacks/ ({known}) or a path to a stack YAML")


def names() -> list[str]:
    folder = project_root() / "stacks"
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in folder.glob("Pulumi.*.yaml"))


def read_config(path: Path) -> dict[str, Any]:
    """The `config:` map of a stack file, as the Pulumi CLI would hand it to the program."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise StackNotFound(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise StackNotFound(f"{path}: got a file without a 'config:' mapping; allowed: a Pulumi stack file with 'config:'")
    return dict(document.get("config") or {})
