"""`dragonfarm diff`: what changes between two Plans, what it costs, and what is unsafe.

Resources are matched by URN. A resource is replaced when an input that forces replacement changes
(table REPLACED_BY below: the provider schemas' force-new properties that matter here) or when its
URN changes while its name and type stay (a rename without a pulumi.Alias). Replacing or removing
a resource that holds data, or a node pool, is called out loudly: that is how a weekend of
checkpoints or a running training job is lost. This reads offline Plans: it is not `pulumi preview`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

from dragonfarm.cost import EGRESS, Estimate, estimate
from dragonfarm.plan import Plan, PlannedResource, layer_of

Kind = Literal["add", "remove", "update", "replace"]

HOLDS_DATA = frozenset({
    "aws:s3/bucket:Bucket", "aws:kms/key:Key", "gcp:storage/bucket:Bucket", "gcp:kms/cryptoKey:CryptoKey",
    "azure-native:storage:StorageAccount", "azure-native:storage:BlobContainer", "azure-native:keyvault:Vault",
    "azure-native:keyvault:Key",
})
NODE_POOLS = frozenset({
    "aws:eks/cluster:Cluster", "aws:eks/nodeGroup:NodeGroup", "kubernetes:karpenter.sh/v1:NodePool",
    "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass",
})
# Inputs whose change makes the provider delete and re-create the resource.
REPLACED_BY: dict[str, tuple[str, ...]] = {
    "aws:s3/bucket:Bucket": ("bucket",),
    "aws:kms/key:Key": ("customerMasterKeySpec", "keyUsage"),
    "aws:eks/cluster:Cluster": ("name", "encryptionConfig", "kubernetesNetworkConfig"),
    "aws:eks/nodeGroup:NodeGroup": ("nodeGroupName", "instanceTypes", "capacityType", "amiType", "subnetIds", "diskSize"),
    "aws:ec2/instance:Instance": ("ami", "subnetId", "instanceMarketOptions"),
    "aws:ec2/vpc:Vpc": ("cidrBlock",),
    "aws:ec2/subnet:Subnet": ("cidrBlock", "availabilityZone", "vpcId"),
    "gcp:storage/bucket:Bucket": ("name", "location", "project"),
    "gcp:kms/cryptoKey:CryptoKey": ("name", "keyRing", "purpose"),
    "azure-native:storage:StorageAccount": ("accountName", "location", "resourceGroupName"),
    "azure-native:keyvault:Vault": ("vaultName", "location", "resourceGroupName"),
}
# Karpenter replaces running nodes whose NodePool template or EC2NodeClass no longer matches (drift).
DRIFTS_NODES = {"kubernetes:karpenter.sh/v1:NodePool": "spec.template", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass": "spec"}


@dataclass
class Change:
    kind: Kind
    type: str
    name: str
    layer: str
    urn: str
    base_cost: float = 0.0
    head_cost: float = 0.0
    inputs: list[str] = field(default_factory=list)
    danger: str = ""

    @property
    def delta(self) -> float:
        return round(self.head_cost - self.base_cost, 2)


@dataclass
class PlanDiff:
    base: Plan
    head: Plan
    base_cost: Estimate
    head_cost: Estimate
    changes: list[Change]

    @property
    def delta(self) -> float:
        return round(self.head_cost.total - self.base_cost.total, 2)

    @property
    def ceiling_delta(self) -> float:
        """What the change does to the most the stack can spend in a month (a raised max_nodes shows here
        even when the expected usage, and so the estimate, is unchanged)."""
        return round(self.head_cost.ceiling_total - self.base_cost.ceiling_total, 2)

    def count(self, kind: Kind) -> int:
        """Resources changed this way (farm-level usage lines such as egress are not resources)."""
        return sum(1 for c in self.changes if c.kind == kind and not c.urn.startswith("farm:"))

    @property
    def dangers(self) -> list[Change]:
        return [c for c in self.changes if c.danger]

    def cost_rows(self) -> list[Change]:
        """Changes that move money, plus unchanged resources whose cost moved (usage or price changes)."""
        return sorted((c for c in self.changes if c.delta or c.base_cost or c.head_cost), key=lambda c: (-abs(c.delta), c.name))


def changed_paths(base: Any, head: Any, path: str = "", depth: int = 3) -> list[str]:
    """Input paths that differ, to `depth` levels (deeper differences are reported at that level)."""
    if base == head:
        return []
    if depth == 0 or not (isinstance(base, dict) and isinstance(head, dict)):
        return [path or "(value)"]
    out: list[str] = []
    for key in sorted(set(base) | set(head)):
        out += changed_paths(base.get(key), head.get(key), f"{path}.{key}" if path else key, depth - 1)
    return out


def under(path: str, roots: Iterable[str]) -> bool:
    """Whether an input path is one of `roots` or inside one (e.g. 'spec.template.spec' under 'spec.template')."""
    return any(path == root or path.startswith(root + ".") for root in roots)


def _danger(kind: Kind, r: PlannedResource, paths: list[str]) -> str:
    if kind in ("remove", "replace"):
        verb = "DESTROYS" if kind == "remove" else "REPLACES"
        if r.protect:
            return f"{verb} a protected resource: pulumi up will refuse until it is unprotected"
        if r.type in HOLDS_DATA:
            return f"{verb} a resource holding data: its contents are lost"
        if r.type in NODE_POOLS:
            return f"{verb} a node pool or cluster: running jobs are evicted"
    if kind == "update" and r.type in DRIFTS_NODES:
        if any(under(p, [DRIFTS_NODES[r.type]]) for p in paths):
            return "Karpenter drift: running nodes of this pool are replaced (jobs on them are evicted)"
    return ""


def identity(urn: str) -> str:
    """A URN without its stack: the same resource in two stacks (or a renamed stack file) matches."""
    return urn.split("::", 1)[1] if urn.startswith("urn:pulumi:") else urn


def diff_plans(base: Plan, head: Plan) -> PlanDiff:
    base_cost, head_cost = estimate(base), estimate(head)
    base_lines = {identity(u): line for u, line in base_cost.by_urn().items()}
    head_lines = {identity(u): line for u, line in head_cost.by_urn().items()}
    cost = lambda lines, urn: lines[urn].monthly if urn in lines and lines[urn].status == "priced" else 0.0  # noqa: E731
    b = {identity(r.urn): r for r in base.resources if r.custom}
    h = {identity(r.urn): r for r in head.resources if r.custom}
    changes: list[Change] = []
    removed = {u: r for u, r in b.items() if u not in h}
    added = {u: r for u, r in h.items() if u not in b}
    # Same type and name under a new URN: the engine sees a delete and a create (no alias).
    for urn, old in list(removed.items()):
        twin = next((u for u, r in added.items() if r.type == old.type and r.name == old.name), None)
        if twin is not None:
            new = added.pop(twin)
            del removed[urn]
            changes.append(Change("replace", new.type, new.name, layer_of(head, new), twin, cost(base_lines, urn), cost(head_lines, twin),
                                  ["(urn: parent or type changed without an alias)"], _danger("replace", old, [])))
    for urn, r in added.items():
        changes.append(Change("add", r.type, r.name, layer_of(head, r), urn, 0.0, cost(head_lines, urn)))
    for urn, r in removed.items():
        changes.append(Change("remove", r.type, r.name, layer_of(base, r), urn, cost(base_lines, urn), 0.0, [], _danger("remove", r, [])))
    for urn in sorted(set(b) & set(h)):
        old, new = b[urn], h[urn]
        # Inputs under ignoreChanges are not updated by the engine, so they are not changes.
        paths = [p for p in changed_paths(old.inputs, new.inputs) if not under(p, new.ignoreChanges)]
        if old.protect != new.protect:
            paths.append("(protect)")
        base_c, head_c = cost(base_lines, urn), cost(head_lines, urn)
        if not paths and base_c == head_c:
            continue
        kind: Kind = "replace" if any(under(p, REPLACED_BY.get(new.type, ())) for p in paths) else "update"
        change = Change(kind, new.type, new.name, layer_of(head, new), urn, base_c, head_c, paths, _danger(kind, old, paths))
        if not paths:
            change.inputs = ["(cost only: usage or price changed)"]
        changes.append(change)
    # Egress is a usage line of the farm, not a resource: it shows only when its cost moves.
    base_c, head_c = cost(base_lines, EGRESS), cost(head_lines, EGRESS)
    if base_c != head_c:
        changes.append(Change("update", "egress", "internet egress", "farm", EGRESS, base_c, head_c, ["(usage)"]))
    order = {"replace": 0, "remove": 1, "add": 2, "update": 3}
    changes.sort(key=lambda c: (not c.danger, order[c.kind], c.layer, c.name))
    return PlanDiff(base, head, base_cost, head_cost, changes)
