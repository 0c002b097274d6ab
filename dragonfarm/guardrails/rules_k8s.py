"""Kubernetes guardrails over the in-cluster objects every cloud's breeding ground emits (team namespaces, network
policies, quotas, GPU node pools, Helm releases)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dragonfarm.guardrails.model import Resource, Stack, items, resource_rule, stack_rule

NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
QUOTA = "kubernetes:core/v1:ResourceQuota"
HELM = "kubernetes:helm.sh/v3:Release"
KARPENTER_POOL = "kubernetes:karpenter.sh/v1:NodePool"
GKE_POOL = "gcp:container/nodePool:NodePool"
AKS_POOL = "azure-native:containerservice:AgentPool"
TEAM_LABEL = "dragonfarm.io/team"
K8S_DOCS = "https://kubernetes.io/docs/concepts"


def team_namespaces(stack: Stack) -> dict[str, Resource]:
    out = {}
    for ns in stack.of_type(NAMESPACE):
        labels = ns.get("metadata.labels") or {}
        if isinstance(labels, Mapping) and TEAM_LABEL in labels:
            out[str(ns.get("metadata.name") or ns.name)] = ns
    return out


@stack_rule("DF-K8S-001", "every team namespace has a network policy selecting all its pods", "mandatory",
            "breeding ground: the GpuStack writes one per dragonfarm:breeding_ground.teams.<team> "
            "(components/breeding_ground/gpu_stack.py)", source=f"{K8S_DOCS}/services-networking/network-policies/")
def team_network_policy(stack: Stack) -> list[tuple[Resource | None, str]]:
    covered = set()
    for policy in stack.of_type(NETWORK_POLICY):
        selector = policy.get("spec.podSelector")
        if isinstance(selector, Mapping) and not selector.get("matchLabels") and not selector.get("matchExpressions") \
                and "Ingress" in items(policy.get("spec.policyTypes")):
            covered.add(policy.get("metadata.namespace"))
    return [(ns, f"namespace {name} has no ingress NetworkPolicy over all its pods")
            for name, ns in team_namespaces(stack).items() if name not in covered]


@stack_rule("DF-K8S-002", "every team namespace has a GPU resource quota", "mandatory",
            "dragonfarm:breeding_ground.teams.<team>.gpu_quota", source=f"{K8S_DOCS}/policy/resource-quotas/")
def team_gpu_quota(stack: Stack) -> list[tuple[Resource | None, str]]:
    capped = set()
    for quota in stack.of_type(QUOTA):
        hard = quota.get("spec.hard") or {}
        if isinstance(hard, Mapping) and any(k in hard for k in ("requests.nvidia.com/gpu", "limits.nvidia.com/gpu")):
            capped.add(quota.get("metadata.namespace"))
    return [(ns, f"namespace {name} has no ResourceQuota on requests.nvidia.com/gpu")
            for name, ns in team_namespaces(stack).items() if name not in capped]


def gpu_taints(r: Resource) -> list[str] | None:
    """Taint keys of a GPU pool, or None when the resource is not a GPU pool."""
    if r.type == KARPENTER_POOL:
        labels = r.get("spec.template.metadata.labels") or {}
        if "nvidia.com/gpu.present" not in labels and "nvidia.com/gpu" not in (r.get("spec.limits") or {}):
            return None
        return [str(t.get("key")) for t in items(r.get("spec.template.spec.taints")) if isinstance(t, Mapping)]
    if r.type == GKE_POOL:
        if not items(r.get("nodeConfig.guestAccelerators")):
            return None
        return [str(t.get("key")) for t in items(r.get("nodeConfig.taints")) if isinstance(t, Mapping)]
    if r.type == AKS_POOL:
        if not is_aks_gpu_pool(r):
            return None
        return [str(t).split("=", 1)[0].split(":", 1)[0] for t in items(r.get("nodeTaints"))]
    return None


def is_aks_gpu_pool(r: Resource) -> bool:
    size = str(r.get("vmSize") or "")
    # Azure GPU sizes are the N family (NC, ND, NV); "Standard_N..." is the documented naming (sizes/overview).
    return r.get("gpuProfile") is not None or size.startswith("Standard_N")


@resource_rule("DF-K8S-003", "GPU node pools carry the nvidia.com/gpu NoSchedule taint", "advisory",
               "dragonfarm:breeding_ground.gpu_pools.<pool>.taints (the GPU taint is always added)",
               [KARPENTER_POOL, GKE_POOL, AKS_POOL], source=f"{K8S_DOCS}/scheduling-eviction/taint-and-toleration/")
def gpu_pool_taint(r: Resource) -> list[str]:
    keys = gpu_taints(r)
    if keys is None or "nvidia.com/gpu" in keys:
        return []
    return ["GPU nodes take any pod (no nvidia.com/gpu taint)"]


@resource_rule("DF-K8S-004", "Helm releases pin a chart version", "advisory",
               "breeding ground: chart versions are pinned in components/breeding_ground/charts.py",
               [HELM], source="https://helm.sh/docs/helm/helm_install/")
def helm_pinned(r: Resource) -> list[str]:
    version: Any = r.get("version")
    if not isinstance(version, str) or not version or any(c in version for c in "^~*<>x"):
        return [f"chart {r.get('chart')!s} is not pinned to one version (version {version!r})"]
    return []


@stack_rule("DF-K8S-005", "team namespaces enforce a Pod Security level", "advisory",
            "breeding ground: pod-security.kubernetes.io/enforce on team namespaces (components/breeding_ground/gpu_stack.py)",
            source=f"{K8S_DOCS}/security/pod-security-admission/")
def team_pod_security(stack: Stack) -> list[tuple[Resource | None, str]]:
    out: list[tuple[Resource | None, str]] = []
    for name, ns in team_namespaces(stack).items():
        level = (ns.get("metadata.labels") or {}).get("pod-security.kubernetes.io/enforce")
        if level not in ("baseline", "restricted"):
            out.append((ns, f"namespace {name} does not enforce Pod Security (enforce {level!r})"))
    return out


