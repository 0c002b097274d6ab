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

from dragonfarm.cost import DAYS_PER_MONTH, EGRESS, Estimate, estimate
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
# Inputs whose change makes the provider delete and re-create the resource: the force-new properties
# of the provider schemas (pulumi-aws, pulumi-gcp, pulumi-azure-native resource docs; S3 bucket
# settings resources are bound to their bucket, so a renamed bucket replaces them too).
BUCKET_SETTINGS = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketPolicy:BucketPolicy",
                   "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                   "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                   "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
REPLACED_BY: dict[str, tuple[str, ...]] = {
    **{t: ("bucket",) for t in BUCKET_SETTINGS},
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
    "azure-native:storage:BlobContainer": ("containerName", "accountName", "resourceGroupName"),
    "azure-native:storage:ManagementPolicy": ("accountName", "resourceGroupName"),
    "kubernetes:core/v1:Namespace": ("metadata.name",),
    "aws:eks/accessEntry:AccessEntry": ("clusterName", "principalArn"),
    "aws:ec2/launchTemplate:LaunchTemplate": ("name",),
}
KEYS = frozenset({"aws:kms/key:Key", "gcp:kms/cryptoKey:CryptoKey", "azure-native:keyvault:Key"})
REDACTED = ("kubeconfig", "password", "secret", "token", "privateKey")
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
    values: list[tuple[str, str, str]] = field(default_factory=list)
    """(input path, before, after) of an update, values shortened and secrets redacted."""

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


def _danger(kind: Kind, r: PlannedResource, paths: list[str], new: PlannedResource | None = None) -> str:
    if kind in ("remove", "replace"):
        verb = "DESTROYS" if kind == "remove" else "REPLACES"
        if r.protect:
            return f"{verb} a protected resource: pulumi up will refuse until it is unprotected"
        if r.type in KEYS:
            return (f"{verb} an encryption key: it is scheduled for deletion, and everything encrypted with it becomes "
                    f"unreadable when the waiting period ends")
        if r.type in HOLDS_DATA:
            return f"{verb} a resource holding data: its contents are lost"
        if r.type == "kubernetes:core/v1:Namespace":
            return (f"{verb} the team namespace {r.inputs.get('metadata', {}).get('name', r.name)}: every job, volume claim, "
                    f"secret and queue in it is deleted")
        if r.type in NODE_POOLS:
            return f"{verb} a node pool or cluster: running jobs are evicted"
    if kind == "update" and r.type in DRIFTS_NODES:
        if any(under(p, [DRIFTS_NODES[r.type]]) for p in paths):
            return "Karpenter drift: running nodes of this pool are replaced (jobs on them are evicted)"
    if kind == "update" and new is not None:
        return data_loss(r, new)
    return ""


def _expiry(r: PlannedResource) -> tuple[int | None, int | None, bool | None]:
    """(days after which current objects are deleted, days after which old versions are deleted, versioning on)
    as a bucket's settings resource plans them; None where the resource does not say."""
    i = r.inputs
    if r.type == "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration":
        rules = [x for x in i.get("rules", []) if x.get("status") == "Enabled" and not (x.get("filter") or {}).get("prefix")]
        current = [x["expiration"]["days"] for x in rules if (x.get("expiration") or {}).get("days")]
        old = [x["noncurrentVersionExpiration"]["noncurrentDays"] for x in rules if (x.get("noncurrentVersionExpiration") or {}).get("noncurrentDays")]
        return (min(current) if current else None, min(old) if old else None, None)
    if r.type == "aws:s3/bucketVersioning:BucketVersioning":
        return (None, None, (i.get("versioningConfiguration") or {}).get("status") == "Enabled")
    if r.type == "gcp:storage/bucket:Bucket":
        deletes = [x["condition"] for x in i.get("lifecycleRules", []) if x["action"]["type"] == "Delete"]
        current = [c["age"] for c in deletes if c.get("withState") == "LIVE" and c.get("age")]
        old = [c["daysSinceNoncurrentTime"] for c in deletes if c.get("daysSinceNoncurrentTime")]
        return (min(current) if current else None, min(old) if old else None, (i.get("versioning") or {}).get("enabled"))
    if r.type == "azure-native:storage:ManagementPolicy":
        actions = i["policy"]["rules"][0]["definition"]["actions"]
        current = (actions.get("baseBlob", {}).get("delete") or {}).get("daysAfterModificationGreaterThan")
        old = (actions.get("version", {}).get("delete") or {}).get("daysAfterCreationGreaterThan")
        return (current, old, None)
    if r.type == "azure-native:storage:BlobServiceProperties":
        return (None, None, i.get("isVersioningEnabled"))
    return (None, None, None)


def shorter(before: int | None, after: int | None) -> bool:
    """An expiry added (none before) or brought forward."""
    return after is not None and (before is None or after < before)


def data_loss(old: PlannedResource, new: PlannedResource) -> str:
    """What an update to a bucket's settings deletes: objects expired sooner, old versions kept for less time,
    versioning switched off, logs kept for less time."""
    if new.type == "aws:cloudwatch/logGroup:LogGroup":
        before, after = old.inputs.get("retentionInDays"), new.inputs.get("retentionInDays")
        if shorter(before, after):
            return f"DELETES DATA: log retention {before or 'never expires'} -> {after} days; older events are deleted"
        return ""
    (cur_b, old_b, ver_b), (cur_a, old_a, ver_a) = _expiry(old), _expiry(new)
    if shorter(cur_b, cur_a):
        return f"DELETES DATA: objects older than {cur_a} days are deleted (was: {f'{cur_b} days' if cur_b else 'never'})"
    if ver_b and ver_a is False:
        return "DELETES DATA: versioning turned off: overwritten and deleted objects can no longer be recovered"
    if shorter(old_b, old_a):
        return f"DELETES DATA: old versions are kept {old_a} days (was: {f'{old_b} days' if old_b else 'for ever'})"
    return ""


def expired_gb(plan: Plan, r: PlannedResource, days: int) -> str:
    """How much of the bucket the new expiry deletes, from the stack's usage profile."""
    storage = (plan.usage or {}).get("storage", {})
    key = next((k for k in sorted(storage, key=len, reverse=True)
                if r.name == f"{plan.prefix}-{k}" or r.name.startswith(f"{plan.prefix}-{k}-")), None)
    if key is None:
        return ""
    stored, ingest = float(storage[key].get("stored_gb", 0)), float(storage[key].get("ingest_gb_per_month", 0))
    older = max(0.0, stored - ingest / DAYS_PER_MONTH * days)
    return f"; about {older:,.0f} GB of the {stored:,.0f} GB stored today (usage profile) is older than that"


def shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def value_at(inputs: dict[str, Any], path: str) -> Any:
    node: Any = inputs
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def before_after(old: PlannedResource, new: PlannedResource, paths: list[str]) -> list[tuple[str, str, str]]:
    out = []
    for p in paths:
        if p.startswith("("):
            continue
        if any(word.lower() in p.lower() for word in REDACTED):
            out.append((p, "[secret]", "[secret]"))
        else:
            out.append((p, shown(value_at(old.inputs, p)), shown(value_at(new.inputs, p))))
    return out


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
        change = Change(kind, new.type, new.name, layer_of(head, new), urn, base_c, head_c, paths, _danger(kind, old, paths, new),
                        before_after(old, new, paths))
        if not paths:
            change.inputs = ["(cost only: usage or price changed)"]
        if change.danger.startswith("DELETES DATA: objects older than"):
            change.danger += expired_gb(head, new, int(change.danger.split("older than ")[1].split(" ")[0]))
        changes.append(change)
    # Egress is a usage line of the farm, not a resource: it shows only when its cost moves.
    base_c, head_c = cost(base_lines, EGRESS), cost(head_lines, EGRESS)
    if base_c != head_c:
        changes.append(Change("update", "egress", "internet egress", "farm", EGRESS, base_c, head_c, ["(usage)"]))
    order = {"replace": 0, "remove": 1, "add": 2, "update": 3}
    changes.sort(key=lambda c: (not c.danger, order[c.kind], c.layer, c.name))
    return PlanDiff(base, head, base_cost, head_cost, changes)
