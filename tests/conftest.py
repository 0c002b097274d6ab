"""Shared fixtures: plans of the shipped stacks (cached per session) and plans of ad-hoc configs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from dragonfarm.plan import Plan, plan_stack

ROOT = Path(__file__).resolve().parent.parent
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))

_cache: dict[str, Plan] = {}


def planned(stack: str) -> Plan:
    if stack not in _cache:
        _cache[stack] = plan_stack(stack)
    return _cache[stack]


def stack_config(stack: str) -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"])


def plan_config(config: dict[str, Any], tmp_path: Path, name: str = "zz-test") -> Plan:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return plan_stack(str(path))


@pytest.fixture
def plan_of():
    return planned


@pytest.fixture(autouse=True)
def _run_from_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def urns_of(plan: Plan, types: tuple[str, ...]) -> set[str]:
    """URNs of a plan's resources of these types: what must not move when unrelated settings change."""
    return {r.urn for r in plan.resources if r.type in types}
