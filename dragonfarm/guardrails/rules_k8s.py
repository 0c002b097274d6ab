"""Kubernetes guardrails over the in-cluster objects every cloud's breeding ground emits (team namespaces, network
policies, quotas, GPU node pools, Helm releases)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dragonfarm.guardrails.model import Resource, Stack, items, known, known_items, open_to_world, resource_rule, stack_rule

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
    covered, opened = set(), {}
    for policy in stack.of_type(NETWORK_POLICY):
        selector = policy.get("spec.podSelector")
        if not (isinstance(selector, Mapping) and not selector.get("matchLabels") and not selector.get("matchExpressions")):
            continue
        if "Ingress" not in items(policy.get("spec.policyTypes")):
            continue
        namespace = policy.get("metadata.namespace")
        # Policies add up: one that lets every source in opens the namespace whatever the others deny.
        if _allows_any_source(policy):
            opened[namespace] = policy.name
        else:
            covered.add(namespace)
    out: list[tuple[Resource | None, str]] = []
    for name, ns in team_namespaces(stack).items():
        if name in opened:
            out.append((ns, f"namespace {name}: NetworkPolicy {opened[name]} lets every source reach all its pods "
                            "(an ingress rule with no or an empty `from`)"))
        elif name not in covered:
            out.append((ns, f"namespace {name} has no ingress NetworkPolicy over all its pods"))
    return out


def _allows_any_source(policy: Resource) -> bool:
    """An ingress rule with no `from`, an empty one, or a peer that is every pod of every namespace or 0.0.0.0/0."""
    for i, rule in enumerate(known_items(policy.get("spec.ingress"), f"{policy.name}: spec.ingress")):
        if not isinstance(rule, Mapping):
            continue
        peers = known_items(rule.get("from"), f"{policy.name}: spec.ingress[{i}].from")
        if not peers:
            return True
        for peer in peers:
            if not isinstance(peer, Mapping) or not peer:
                return True
            ns_selector, pod_selector = peer.get("namespaceSelector"), peer.get("podSelector")
            if isinstance(ns_selector, Mapping) and not ns_selector.get("matchLabels") and \
                    not ns_selector.get("matchExpressions") and not (isinstance(pod_selector, Mapping) and pod_selector):
                return True
            block = peer.get("ipBlock")
            if isinstance(block, Mapping) and open_to_world(known(block.get("cidr"), f"{policy.name}: ipBlock.cidr"),
                                                            f"{policy.name}: ipBlock.cidr"):
                return True
    return False


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
        if not is_karpenter_gpu_pool(r):
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


# EC2 GPU instance families (g3..g6e, gr6, p2..p6): `g6.xlarge`, `p5.48xlarge`; Graviton `m6g` etc. do not start with g/p.
_EC2_GPU_TYPE = re.compile(r"^(g\d|gr\d|p\d)")
# Karpenter's well-known GPU labels (karpenter.sh docs, "Well-Known Labels").
_KARPENTER_GPU_KEYS = ("karpenter.k8s.aws/instance-gpu-count", "karpenter.k8s.aws/instance-gpu-name",
                       "karpenter.k8s.aws/instance-gpu-manufacturer", "karpenter.k8s.aws/instance-gpu-memory")


def is_karpenter_gpu_pool(r: Resource) -> bool:
    """A Karpenter NodePool that launches GPU nodes: by its GPU label or limit, or by its requirements (GPU instance
    types, families or categories, or any instance-gpu-* requirement other than a count of 0)."""
    labels = r.get("spec.template.metadata.labels") or {}
    if "nvidia.com/gpu.present" in labels or "nvidia.com/gpu" in (r.get("spec.limits") or {}):
        return True
    for i, req in enumerate(known_items(r.get("spec.template.spec.requirements"), f"{r.name}: requirements")):
        if not isinstance(req, Mapping) or req.get("operator") in ("NotIn", "DoesNotExist"):
            continue
        key = req.get("key")
        values = [str(known(v, f"{r.name}: requirements[{i}].values")) for v in items(req.get("values"))]
        if key in _KARPENTER_GPU_KEYS:
            if not (key.endswith("gpu-count") and req.get("operator") == "In" and values and all(v == "0" for v in values)):
                return True
        elif key == "node.kubernetes.io/instance-type" and any(_EC2_GPU_TYPE.match(v) for v in values):
            return True
        elif key == "karpenter.k8s.aws/instance-family" and any(_EC2_GPU_TYPE.match(v) for v in values):
            return True
        elif key == "karpenter.k8s.aws/instance-category" and any(v in ("g", "p") for v in values):
            return True
    return False


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


