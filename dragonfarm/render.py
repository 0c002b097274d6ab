"""Human-readable views of a Plan: a tree by layer with resource counts."""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.tree import Tree

from dragonfarm.plan import LAYERS, Plan, layer_of


def plan_tree(plan: Plan) -> Tree:
    layers: dict[str, list] = defaultdict(list)
    for r in plan.resources:
        if r.custom:
            layers[layer_of(plan, r)].append(r)
    root = Tree(f"[bold]{plan.stack}[/] ({plan.cloud}, {plan.region}, {plan.environment}): "
                f"{sum(len(v) for v in layers.values())} cloud resources")
    for layer in (*LAYERS, "farm"):
        resources = layers.get(layer)
        if not resources:
            continue
        branch = root.add(f"[bold cyan]{layer}[/] ({len(resources)})")
        by_type: dict[str, list[str]] = defaultdict(list)
        for r in resources:
            by_type[r.type].append(r.name + (" [red]protected[/]" if r.protect else ""))
        for typ, names in sorted(by_type.items()):
            shown = ", ".join(names[:4]) + (f", … {len(names) - 4} more" if len(names) > 4 else "")
            branch.add(f"{typ} x{len(names)}: [dim]{shown}[/]")
    return root


def print_plan(plan: Plan, console: Console) -> None:
    console.print(f"[yellow]{plan.notice}[/]")
    console.print(plan_tree(plan))
