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
    columns = (("floor", "floor"), ("monthly", "estimate"), ("month12", "month 12"), ("without", "without savings"),
               ("without12", "without, month 12"), ("ceiling", "ceiling"))
    layers = Table(title="Monthly cost by layer", show_lines=False)
    layers.add_column("layer")
    for _, title in columns:
        layers.add_column(title, justify="right")
    sums = {attr: est.by_layer(attr) for attr, _ in columns}
    for layer in (*LAYERS, "farm"):
        if layer in sums["monthly"]:
            layers.add_row(layer, *(money(sums[attr][layer], est.currency) for attr, _ in columns))
    layers.add_row("[bold]total[/]", *(f"[bold]{money(est.total_of(attr), est.currency)}[/]" for attr, _ in columns))
    console.print(layers)

    resources = Table(title="Resources that bill")
    for column in ("layer", "resource", "monthly", "ceiling", "how"):
        resources.add_column(column, justify="right" if column in ("monthly", "ceiling") else "left")
    for line in sorted((l for l in est.lines if l.status == "priced"), key=lambda l: (l.layer, -l.monthly, l.name)):
        resources.add_row(line.layer, line.name, money(line.monthly, est.currency), money(line.ceiling, est.currency), line.detail)
    console.print(resources)

    missing = est.not_estimated()
    if missing:
        table = Table(title="Not in the estimate (listed, not counted as zero)")
        for column in ("resource", "type", "why"):
            table.add_column(column)
        for line in missing:
            table.add_row(line.name, line.type, ("[red]unpriced[/]: " if line.status == "unpriced" else "usage-based: ") + line.detail)
        console.print(table)

    state = "" if est.complete else f" [red]INCOMPLETE: {len(est.unpriced())} billable items unpriced, not in the totals[/]"
    console.print(f"Monthly estimate [bold]{money(est.total, est.currency)}[/]{state} = {est.budget_share:.1%} of the "
                  f"{money(est.budget, est.currency)} budget.")
    console.print(f"Floor (same hours at the cheapest price the pools allow, storage in its cheapest class): "
                  f"{money(est.floor_total, est.currency)}. Without dragonfarm's savings (on-demand, nothing tiered or "
                  f"expired, dev boxes never stopped): {money(est.without_total, est.currency)}, "
                  f"{money(est.without12_total, est.currency)} by month 12. Month 12 as configured: "
                  f"{money(est.month12_total, est.currency)}.")
    from dragonfarm.cost import NOT_MODELLED

    console.print("[dim]Not in any figure: " + "; ".join(NOT_MODELLED) + ".[/]")
    ratio = est.ceiling_total / est.budget if est.budget else 0.0
    console.print(f"Ceiling (every GPU pool at max_nodes all month): {money(est.ceiling_total, est.currency)}, "
                  f"{ratio:.1f}x the budget" + (": the quotas, the budget alerts and the hard stop are what hold it." if ratio > 1 else "."))


def print_diff(d, console: Console) -> None:
    from rich.table import Table

    console.print(f"[yellow]Diff of offline plans ({d.base.stack} -> {d.head.stack}); not `pulumi preview`.[/]")
    console.print(f"{d.count('add')} to add, {d.count('update')} to change, {d.count('replace')} to replace, "
                  f"{d.count('remove')} to destroy. Monthly cost {money(d.base_cost.total)} -> {money(d.head_cost.total)} "
                  f"({'+' if d.delta >= 0 else ''}{d.delta:,.2f}). Ceiling {money(d.base_cost.ceiling_total)} -> "
                  f"{money(d.head_cost.ceiling_total)} ({'+' if d.ceiling_delta >= 0 else ''}{d.ceiling_delta:,.2f}).")
    if not d.base.resources:
        console.print(f"New stack at head: {d.head.stack} does not exist at the base; everything is an addition.")
    for change in d.dangers:
        console.print(f"[bold red]UNSAFE[/] {change.kind} {change.name} ({change.type}): {change.danger}")
    table = Table()
    for column in ("change", "resource", "layer", "inputs", "baseline", "new", "delta"):
        table.add_column(column, justify="right" if column in ("baseline", "new", "delta") else "left")
    for c in d.changes:
        inputs = "; ".join(f"{p}: {b} -> {a}" for p, b, a in c.values) if c.values else ", ".join(c.inputs)
        table.add_row(c.kind, c.name, c.layer, inputs[:160], f"{c.base_cost:,.2f}", f"{c.head_cost:,.2f}",
                      f"{'+' if c.delta > 0 else ''}{c.delta:,.2f}")
    console.print(table)


def print_guardrails(stack: str, report, console: Console) -> None:
    """`dragonfarm check`: a table of findings (rule, severity, resource, what is wrong, the fix), then waivers."""
    from rich.table import Table

    table = Table(title=f"guardrails: {stack}", show_lines=False)
    for column in ("rule", "severity", "resource", "what is wrong", "fix"):
        table.add_column(column, overflow="fold")
    for f in report.findings:
        severity = "[red]mandatory[/]" if f.severity == "mandatory" else (
            f"[dim]advisory, waived: {f.waived}[/]" if f.waived else "[yellow]advisory[/]")
        table.add_row(f.rule, severity, f"{f.name}\n[dim]{f.type}[/]", f.message, f"[dim]{f.fix}[/]")
    if report.findings:
        console.print(table)
    for rule_id, reason in sorted(report.waivers.items()):
        console.print(f"waiver: {rule_id}: {reason}")
    for rule_id, name, where in report.not_evaluated:
        console.print(f"[dim]not evaluated: {rule_id} on {name}: {where}[/]")
    waived = sum(1 for f in report.advisory if f.waived)
    console.print(f"{report.rules} rules over {report.resources} resources: [bold]{len(report.mandatory)} mandatory[/], "
                  f"{len(report.advisory)} advisory ({waived} waived)")


def guardrails_markdown(stack: str, report) -> str:
    """The guardrails section of a pull-request comment."""
    lines = [f"#### Guardrails ({len(report.mandatory)} mandatory, {len(report.advisory)} advisory)", ""]
    if report.findings:
        lines += ["| rule | severity | resource | what is wrong | fix |", "|---|---|---|---|---|"]
        for f in report.findings:
            severity = f"advisory (waived: {f.waived})" if f.waived else f.severity
            lines.append(f"| {f.rule} | {severity} | `{f.name}` | {f.message} | {f.fix} |".replace("\n", " "))
    else:
        lines.append(f"All {report.rules} rules pass on `{stack}`.")
    for rule_id, reason in sorted(report.waivers.items()):
        lines.append(f"- waiver {rule_id}: {reason}")
    return "\n".join(lines) + "\n"
