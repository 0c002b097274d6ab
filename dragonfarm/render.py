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


def money(value: float, currency: str = "USD") -> str:
    return f"{value:,.2f} {currency}"


def print_estimate(est, console: Console) -> None:
    from rich.table import Table

    console.print(f"[yellow]Cost estimate of stack {est.stack} ({est.cloud}) from its offline plan and usage profile; "
                  f"prices from dragonfarm/prices/ (each row has its source and date).[/]")
    layers = Table(title="Monthly cost by layer", show_lines=False)
    for column in ("layer", "estimate", "naive setup", "floor"):
        layers.add_column(column, justify="right" if column != "layer" else "left")
    monthly, naive, floor = est.by_layer("monthly"), est.by_layer("naive"), est.by_layer("floor")
    for layer in (*LAYERS, "farm"):
        if layer in monthly:
            layers.add_row(layer, money(monthly[layer], est.currency), money(naive[layer], est.currency),
                           money(floor[layer], est.currency))
    layers.add_row("[bold]total[/]", f"[bold]{money(est.total, est.currency)}[/]", money(est.naive_total, est.currency),
                   money(est.floor_total, est.currency))
    console.print(layers)

    resources = Table(title="Resources that bill")
    for column in ("layer", "resource", "monthly", "naive", "how"):
        resources.add_column(column, justify="right" if column in ("monthly", "naive") else "left")
    for line in sorted((l for l in est.lines if l.status == "priced"), key=lambda l: (l.layer, -l.monthly, l.name)):
        resources.add_row(line.layer, line.name, money(line.monthly, est.currency), money(line.naive, est.currency), line.detail)
    console.print(resources)

    missing = est.not_estimated()
    if missing:
        table = Table(title="Not in the estimate (listed, not counted as zero)")
        for column in ("resource", "type", "why"):
            table.add_column(column)
        for line in missing:
            table.add_row(line.name, line.type, ("[red]unpriced[/]: " if line.status == "unpriced" else "usage-based: ") + line.detail)
        console.print(table)

    saving = est.naive_total - est.total
    console.print(f"Monthly estimate [bold]{money(est.total, est.currency)}[/] = {est.budget_share:.1%} of the "
                  f"{money(est.budget, est.currency)} budget. Naive setup (on-demand, no scale-to-zero, no lifecycle): "
                  f"{money(est.naive_total, est.currency)}; saving {money(saving, est.currency)}. "
                  f"Floor: {money(est.floor_total, est.currency)}.")


def print_diff(d, console: Console) -> None:
    from rich.table import Table

    console.print(f"[yellow]Diff of offline plans ({d.base.stack} -> {d.head.stack}); not `pulumi preview`.[/]")
    console.print(f"{d.count('add')} to add, {d.count('update')} to change, {d.count('replace')} to replace, "
                  f"{d.count('remove')} to destroy. Monthly cost {money(d.base_cost.total)} -> {money(d.head_cost.total)} "
                  f"({'+' if d.delta >= 0 else ''}{d.delta:,.2f}).")
    for change in d.dangers:
        console.print(f"[bold red]UNSAFE[/] {change.kind} {change.name} ({change.type}): {change.danger}")
    table = Table()
    for column in ("change", "resource", "layer", "inputs", "baseline", "new", "delta"):
        table.add_column(column, justify="right" if column in ("baseline", "new", "delta") else "left")
    for c in d.changes:
        table.add_row(c.kind, c.name, c.layer, ", ".join(c.inputs)[:80], f"{c.base_cost:,.2f}", f"{c.head_cost:,.2f}",
                      f"{'+' if c.delta > 0 else ''}{c.delta:,.2f}")
    console.print(table)
