"""Reports rendered from jinja2 templates kept as files in dragonfarm/templates/."""

from __future__ import annotations

from collections import Counter

from jinja2 import Environment, PackageLoader, StrictUndefined

from dragonfarm.diff import PlanDiff
from dragonfarm.plan import LAYERS, layer_of

MARKER = "<!-- dragonfarm-preview stack={stack} -->"
ICONS = {"add": "➕", "remove": "🗑️", "update": "✏️", "replace": "♻️"}
# How the layers depend on each other: the fence carries the others; the ledger watches them all.
EDGES = [("fence", "trough"), ("fence", "breeding_ground"), ("fence", "barn"), ("ledger", "breeding_ground"),
         ("ledger", "barn"), ("ledger", "trough")]


def _env() -> Environment:
    env = Environment(loader=PackageLoader("dragonfarm", "templates"), undefined=StrictUndefined, autoescape=False,
                      keep_trailing_newline=True)
    env.globals.update(money=lambda v: f"${v:,.2f}", signed=lambda v: f"+${v:,.2f}" if v > 0 else (f"-${-v:,.2f}" if v < 0 else "$0.00"),
                       pct=lambda v: f"{v:.0%}")
    return env


def pr_comment(d: PlanDiff) -> str:
    head = d.head
    counts = Counter(layer_of(head, r) for r in head.resources if r.custom)
    costs = d.head_cost.by_layer()
    layers = [{"id": layer, "name": layer.replace("_", " "), "count": counts[layer], "cost": costs.get(layer, 0.0)}
              for layer in LAYERS if counts[layer]]
    present = {layer["id"] for layer in layers}
    edges = [(a, b) for a, b in EDGES if a in present and b in present]
    return _env().get_template("pr_comment.md.j2").render(
        d=d, marker=MARKER.format(stack=head.stack), icon=ICONS, layers=layers, edges=edges,
        unpriced=len(d.head_cost.not_estimated()))
