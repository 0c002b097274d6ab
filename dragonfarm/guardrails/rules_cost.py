"""Cost guardrails, on every cloud: cost tags, GPU ceilings, spot and scale-to-zero in dev, idle stop for barns,
budgets with a forecasted alert, and prod data that survives a `pulumi destroy`."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from dragonfarm.guardrails.model import (
    PURPOSE_TAG, Resource, Stack, items, missing_cost_tags, resource_rule, stack_rule, truthy,
)
from dragonfarm.guardrails.rules_k8s import AKS_POOL, GKE_POOL, KARPENTER_POOL, is_aks_gpu_pool, is_karpenter_gpu_pool

AWS_TAGGED = ("aws:s3/bucket:Bucket", "aws:ec2/instance:Instance", "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet",
              "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip", "aws:ec2/securityGroup:SecurityGroup",
              "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:ec2/internetGateway:InternetGateway", "aws:eks/cluster:Cluster",
              "aws:eks/nodeGroup:NodeGroup", "aws:kms/key:Key", "aws:cloudwatch/logGroup:LogGroup", "aws:sns/topic:Topic",
              "aws:sqs/queue:Queue")
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
GCP_LABELLED = ("gcp:storage/bucket:Bucket", "gcp:kms/cryptoKey:CryptoKey", "gcp:pubsub/topic:Topic",
                "gcp:compute/disk:Disk")
GCP_INSTANCE = "gcp:compute/instance:Instance"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
AKS_CLUSTER = "azure-native:containerservice:ManagedCluster"
AZURE_TAGGED = ("azure-native:resources:ResourceGroup", "azure-native:storage:StorageAccount", "azure-native:keyvault:Vault",
                "azure-native:containerservice:ManagedCluster", AKS_POOL, "azure-native:network:NetworkSecurityGroup",
                "azure-native:network:VirtualNetwork", "azure-native:network:NatGateway", "azure-native:network:PublicIPAddress",
                "azure-native:network:PrivateEndpoint", "azure-native:privatedns:PrivateZone",
                "azure-native:managedidentity:UserAssignedIdentity", "azure-native:compute:VirtualMachine",
                "azure-native:network:NetworkInterface", "azure-native:compute:DiskEncryptionSet", "azure-native:compute:Disk",
                "azure-native:monitor:ActionGroup", "azure-native:operationalinsights:Workspace", "azure-native:devtestlab:GlobalSchedule",
                "azure-native:compute:VirtualMachineExtension", "azure-native:monitor:MetricAlert", "azure-native:logic:Workflow")

EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
CLUSTER_QUEUE = "kubernetes:kueue.x-k8s.io/v1beta1:ClusterQueue"
BUDGETS = ("aws:budgets/budget:Budget", "gcp:billing/budget:Budget", "azure-native:consumption:Budget",
           "azure-native:costmanagement:Budget")
GPU = "nvidia.com/gpu"

LEDGER_DOCS = "components/ledger/README.md"


def _tags_of(r: Resource) -> dict[str, Any]:
    if r.type == LAUNCH_TEMPLATE:
        # Default tags do not reach instances and volumes a node group launches: they need tag specifications.
        specs = {s.get("resourceType"): s.get("tags") or {} for s in items(r.get("tagSpecifications")) if isinstance(s, Mapping)}
        merged: dict[str, Any] | None = None
        for kind in ("instance", "volume"):
            tags = dict(specs.get(kind) or {})
            merged = tags if merged is None else {k: v for k, v in merged.items() if tags.get(k) == v}
        return merged or {}
    if r.type == NODE_CLASS:
        return dict(r.get("spec.tags") or {})
    if r.type == GKE_POOL:
        return dict(r.get("nodeConfig.resourceLabels") or {})
    if r.type == GKE_CLUSTER:
        return {**r.default_tags(), **dict(r.get("resourceLabels") or {})}
    if r.type == GCP_INSTANCE:
        return {**r.default_tags(), **r.tags()}
    return {**r.default_tags(), **r.tags()}


@resource_rule("DF-COST-001", "every taggable resource carries the farm's cost tags", "mandatory",
               "dragonfarm:prefix / dragonfarm:environment / dragonfarm:tags feed the cost tags; keep the provider's "
               "default tags and the components' tags (components/ledger/spec.py cost_tags)",
               AWS_TAGGED + (LAUNCH_TEMPLATE, NODE_CLASS) + GCP_LABELLED + (GCP_INSTANCE, GKE_CLUSTER, GKE_POOL) + AZURE_TAGGED,
               source="https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/cost-alloc-tags.html")
def cost_tags(r: Resource) -> list[str]:
    missing = missing_cost_tags(_tags_of(r))
    return [f"missing cost tag(s) {', '.join(missing)}"] if missing else []


def aks_inline_gpu_profiles(r: Resource) -> list[Mapping[str, Any]]:
    """GPU-sized pools declared inside an AKS cluster (agentPoolProfiles) rather than as AgentPool resources."""
    return [p for p in items(r.get("agentPoolProfiles")) if isinstance(p, Mapping) and str(p.get("vmSize") or "").startswith("Standard_N")]


def gpu_pool(r: Resource) -> bool:
    if r.type == KARPENTER_POOL:
        return is_karpenter_gpu_pool(r)
    if r.type == GKE_POOL:
        return bool(items(r.get("nodeConfig.guestAccelerators")))
    if r.type == AKS_POOL:
        return is_aks_gpu_pool(r)
    if r.type == EKS_NODE_GROUP:
        return "NVIDIA" in str(r.get("amiType") or "") or "nvidia.com/gpu.present" in (r.get("labels") or {})
    return False


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@resource_rule("DF-COST-002", "every GPU pool has a node ceiling", "mandatory",
               "dragonfarm:breeding_ground.gpu_pools.<pool>.max_nodes", [GKE_POOL, AKS_POOL, EKS_NODE_GROUP, AKS_CLUSTER],
               source="https://cloud.google.com/kubernetes-engine/docs/concepts/cluster-autoscaler")
def gpu_ceiling(r: Resource) -> list[str]:
    if r.type == AKS_CLUSTER:
        return [f"inline GPU pool {p.get('name')!s} has no ceiling (maxCount)" for p in aks_inline_gpu_profiles(r)
                if (_number(p.get("maxCount")) if truthy(p.get("enableAutoScaling")) else _number(p.get("count"))) is None]
    if not gpu_pool(r):
        return []
    if r.type == GKE_POOL:
        ceiling = r.get("autoscaling.totalMaxNodeCount") or r.get("autoscaling.maxNodeCount")
        fixed = r.get("nodeCount") if r.get("autoscaling") is None else None
        return [] if _number(ceiling) is not None or _number(fixed) is not None else ["autoscaling has no maximum node count"]
    if r.type == AKS_POOL:
        if truthy(r.get("enableAutoScaling")):
            return [] if _number(r.get("maxCount")) is not None else ["autoscaling pool has no maxCount"]
        return [] if _number(r.get("count")) is not None else ["pool has no node count"]
    return [] if _number(r.get("scalingConfig.maxSize")) is not None else ["node group has no scalingConfig.maxSize"]


@resource_rule("DF-COST-003", "every Karpenter GPU pool and Kueue queue caps nvidia.com/gpu", "mandatory",
               "dragonfarm:breeding_ground.gpu_pools.<pool>.max_nodes (pool GPU limit) and teams.<team>.gpu_quota",
               [KARPENTER_POOL, CLUSTER_QUEUE], source="https://karpenter.sh/docs/concepts/nodepools/#speclimits")
def gpu_limit(r: Resource) -> list[str]:
    if r.type == KARPENTER_POOL:
        if not gpu_pool(r):
            return []
        return [] if _number((r.get("spec.limits") or {}).get(GPU)) is not None else ["no spec.limits on nvidia.com/gpu"]
    out = []
    covered = False
    for group in items(r.get("spec.resourceGroups")):
        if not isinstance(group, Mapping) or GPU not in items(group.get("coveredResources")):
            continue
        covered = True
        for flavor in items(group.get("flavors")):
            quota = [x.get("nominalQuota") for x in items(flavor.get("resources")) if isinstance(x, Mapping) and x.get("name") == GPU]
            if not quota or _number(quota[0]) is None:
                out.append(f"flavor {flavor.get('name')!s} has no nominalQuota on nvidia.com/gpu")
    return out if covered else ["queue does not cover nvidia.com/gpu"]


@stack_rule("DF-COST-004", "dev GPU pools are spot and scale to zero", "mandatory",
            "dragonfarm:breeding_ground.gpu_pools.<pool>.capacity: spot and min_nodes: 0 in dev stacks",
            source="https://karpenter.sh/docs/concepts/nodepools/")
def dev_spot(stack: Stack) -> list[tuple[Resource | None, str]]:
    if stack.environment != "dev":
        return []
    out: list[tuple[Resource | None, str]] = []
    for cluster in stack.of_type(AKS_CLUSTER):
        # Inline profiles are the cluster's system pool: never spot, never at zero.
        out += [(cluster, f"dev GPU pool {p.get('name')!s} is inline in the cluster (agentPoolProfiles: on-demand, never at zero)")
                for p in aks_inline_gpu_profiles(cluster)]
    for r in stack.of_type(KARPENTER_POOL, GKE_POOL, AKS_POOL, EKS_NODE_GROUP):
        if not gpu_pool(r):
            continue
        if r.type == KARPENTER_POOL:
            capacity = [req for req in items(r.get("spec.template.spec.requirements"))
                        if isinstance(req, Mapping) and req.get("key") == "karpenter.sh/capacity-type"]
            if not capacity or items(capacity[0].get("values")) != ["spot"]:
                out.append((r, "dev GPU pool may launch on-demand nodes (karpenter.sh/capacity-type is not only spot)"))
        elif r.type == GKE_POOL:
            if not (truthy(r.get("nodeConfig.spot")) or truthy(r.get("nodeConfig.preemptible"))):
                out.append((r, "dev GPU pool is on-demand (nodeConfig.spot)"))
            low = r.get("autoscaling.totalMinNodeCount", r.get("autoscaling.minNodeCount"))
            if _number(low) != 0:
                out.append((r, f"dev GPU pool keeps {low} node(s) (autoscaling minimum is not 0)"))
        elif r.type == AKS_POOL:
            if r.get("scaleSetPriority") != "Spot":
                out.append((r, "dev GPU pool is on-demand (scaleSetPriority)"))
            if not truthy(r.get("enableAutoScaling")) or _number(r.get("minCount")) != 0:
                out.append((r, "dev GPU pool does not scale to zero (enableAutoScaling, minCount 0)"))
        else:
            if r.get("capacityType") != "SPOT" or _number(r.get("scalingConfig.minSize")) != 0:
                out.append((r, "dev GPU node group is not spot scaling to zero (capacityType SPOT, scalingConfig.minSize 0)"))
    return out


AWS_INSTANCE = "aws:ec2/instance:Instance"
AWS_SCHEDULE = "aws:scheduler/schedule:Schedule"
GCP_SCHEDULE = "gcp:compute/resourcePolicy:ResourcePolicy"
AZURE_VM = "azure-native:compute:VirtualMachine"
AZURE_SHUTDOWN = "azure-native:devtestlab:GlobalSchedule"


IDLE_WATCHER = "dragonfarm-idle-watch"  # the unit components/barn/idle_watch_install.sh.j2 installs


def _boot_script(vm: Resource) -> str:
    """A dev box's first-boot script as text: AWS userData, GCP metadata startup-script, Azure customData (base64)."""
    if vm.type == AZURE_VM:
        encoded = str(vm.get("osProfile.customData") or "")
        try:
            return base64.b64decode(encoded, validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return encoded
    if vm.type == GCP_INSTANCE:
        return str((vm.get("metadata") or {}).get("startup-script") or "")
    return str(vm.get("userData") or "")


@stack_rule("DF-COST-005", "every barn stops itself when idle, and its nightly stop (if any) stops it", "mandatory",
            "dragonfarm:barns.<barn>.idle_minutes (the idle watcher, always installed) and nightly_stop",
            source="https://learn.microsoft.com/azure/virtual-machines/auto-shutdown-vm")
def barn_stop(stack: Stack) -> list[tuple[Resource | None, str]]:
    out: list[tuple[Resource | None, str]] = []
    for vm in stack.of_type(AWS_INSTANCE, GCP_INSTANCE, AZURE_VM):
        if IDLE_WATCHER not in _boot_script(vm):
            out.append((vm, f"no idle watcher in the first-boot script ({IDLE_WATCHER})"))
    for vm in stack.of_type(AWS_INSTANCE):
        for s in stack.siblings(vm, AWS_SCHEDULE):
            if not str(s.get("target.arn") or "").endswith("ec2:stopInstances") or "InstanceIds" not in str(s.get("target.input") or ""):
                out.append((vm, f"nightly schedule {s.name} does not stop the instance (target stopInstances with InstanceIds)"))
            elif s.get("state") == "DISABLED":
                out.append((vm, f"nightly schedule {s.name} is disabled"))
        if vm.get("instanceInitiatedShutdownBehavior") == "terminate":
            out.append((vm, "an idle power-off terminates the box (instanceInitiatedShutdownBehavior)"))
    for vm in stack.of_type(GCP_INSTANCE):
        attached = str(vm.get("resourcePolicies") or "")
        for p in stack.siblings(vm, GCP_SCHEDULE):
            if p.get("instanceSchedulePolicy.vmStopSchedule") and str(p.get("name") or p.name) not in attached:
                out.append((vm, f"nightly stop schedule {p.name} is not attached to the instance (resourcePolicies)"))
    for vm in stack.of_type(AZURE_VM):
        target = f"/virtualMachines/{vm.get('vmName') or vm.name}"
        for s in stack.siblings(vm, AZURE_SHUTDOWN):
            if s.get("taskType") != "ComputeVmShutdownTask" or not str(s.get("targetResourceId") or "").endswith(target):
                out.append((vm, f"auto-shutdown {s.name} does not shut this VM down (taskType, targetResourceId)"))
            elif s.get("status") != "Enabled":
                out.append((vm, f"auto-shutdown {s.name} is disabled"))
    return out


def _forecasted(r: Resource) -> bool:
    if r.type == "aws:budgets/budget:Budget":
        return any(isinstance(n, Mapping) and n.get("notificationType") == "FORECASTED" for n in items(r.get("notifications")))
    if r.type == "gcp:billing/budget:Budget":
        return any(isinstance(t, Mapping) and t.get("spendBasis") == "FORECASTED_SPEND" for t in items(r.get("thresholdRules")))
    notifications = r.get("notifications") or {}
    return any(isinstance(n, Mapping) and n.get("thresholdType") == "Forecasted" and n.get("enabled") is not False
               for n in notifications.values())


@resource_rule("DF-COST-006", "every budget has a forecasted alert", "mandatory",
               "dragonfarm:ledger.forecast_thresholds (at least one)", BUDGETS,
               source="https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-best-practices.html")
def budget_forecast(r: Resource) -> list[str]:
    return [] if _forecasted(r) else ["budget alerts only on actual spend (no forecasted notification)"]


@stack_rule("DF-COST-007", "the stack has a budget", "mandatory", "dragonfarm:ledger.monthly_budget",
            source=LEDGER_DOCS)
def has_budget(stack: Stack) -> list[tuple[Resource | None, str]]:
    return [] if stack.of_type(*BUDGETS) else [(None, "the stack creates no budget")]


DATA_TYPES = ("aws:s3/bucket:Bucket", "aws:kms/key:Key", "gcp:storage/bucket:Bucket", "gcp:kms/cryptoKey:CryptoKey",
              "gcp:kms/keyRing:KeyRing", "azure-native:storage:StorageAccount", "azure-native:storage:BlobContainer",
              "azure-native:keyvault:Vault", "azure-native:keyvault:Key")


@stack_rule("DF-COST-008", "prod buckets and keys are protected and retained", "mandatory",
            "dragonfarm:environment: prod protects and retains buckets and keys (components' protect_data)",
            source="https://www.pulumi.com/docs/iac/concepts/options/protect/")
def prod_data(stack: Stack) -> list[tuple[Resource | None, str]]:
    if stack.environment != "prod":
        return []
    out: list[tuple[Resource | None, str]] = []
    for r in stack.of_type(*DATA_TYPES):
        if not r.protect:
            out.append((r, "prod data resource is not protected (protect)"))
        if r.retain_on_delete is False:  # None: the caller cannot see it (CrossGuard)
            out.append((r, "prod data resource would be deleted with the stack (retainOnDelete)"))
    return out


@stack_rule("DF-COST-009", "GPU work is admitted against a GPU quota", "mandatory",
            "dragonfarm:breeding_ground.teams.<team>.gpu_quota (each team's Kueue ClusterQueue caps nvidia.com/gpu)",
            source="https://kueue.sigs.k8s.io/docs/concepts/cluster_queue/")
def gpu_quota_exists(stack: Stack) -> list[tuple[Resource | None, str]]:
    pools = [r for r in stack.of_type(KARPENTER_POOL, GKE_POOL, AKS_POOL, EKS_NODE_GROUP) if gpu_pool(r)]
    if not pools:
        return []
    for queue in stack.of_type(CLUSTER_QUEUE):
        if any(isinstance(g, Mapping) and GPU in items(g.get("coveredResources")) for g in items(queue.get("spec.resourceGroups"))):
            return []
    return [(pools[0], "GPU pools exist but no Kueue ClusterQueue covers nvidia.com/gpu: nothing caps what jobs may ask for")]


BUCKETS = ("aws:s3/bucket:Bucket", "gcp:storage/bucket:Bucket", "azure-native:storage:StorageAccount")
PURPOSES = ("datasets", "checkpoints", "models", "logs")


@resource_rule("DF-COST-010", "every bucket says what it holds (its purpose decides versioning and lifecycle)", "mandatory",
               "dragonfarm:troughs.<key>.purpose (the trough layer tags it dragonfarm-purpose)", BUCKETS,
               source="components/trough/README.md")
def bucket_purpose(r: Resource) -> list[str]:
    purpose = {**r.default_tags(), **r.tags()}.get(PURPOSE_TAG)
    return [] if purpose in PURPOSES else [f"no {PURPOSE_TAG} tag of {', '.join(PURPOSES)} (got {purpose!r}): "
                                           "versioning and lifecycle rules cannot be judged"]
