"""GpuStack: the cloud-neutral in-cluster GPU stack (pulumi-kubernetes), reused by every blueprint.

- NVIDIA device plugin (GPUs become schedulable `nvidia.com/gpu`; skipped where the cloud runs its own)
  and DCGM exporter (GPU utilisation metrics), both only on GPU nodes (they select the farm's GPU node
  label) and tolerating every GPU pool's taints;
- Kueue: one ResourceFlavor per GPU pool (it selects the pool's nodes by the farm's pool label, so a
  spot-with-fallback pool is one flavor whose jobs land on spot or on-demand, whichever the autoscaler
  gets), one ClusterQueue per team in one cohort with the team's `gpu_quota` as its nominal quota, and
  a lender queue holding the rest of what the pools supply: the cohort's nominal quotas add up to
  exactly what the pools can supply, and a team borrows idle capacity beyond its own quota;
- per team: a namespace (Pod Security labels), a LocalQueue `gpu`, a ResourceQuota, a NetworkPolicy
  that admits ingress from the same namespace only, and the `workload` ServiceAccount the blueprint
  binds to the team's cloud identity.

Helm releases are named explicitly: pulumi-kubernetes otherwise appends a random suffix, and Helm
refuses release names longer than 53 characters.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import yaml
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.core.v1 import Namespace, ResourceQuota, ServiceAccount
from pulumi_kubernetes.helm.v3 import Release
from pulumi_kubernetes.networking.v1 import NetworkPolicy, NetworkPolicySpecArgsDict
from pulumi_kubernetes.rbac.v1 import RoleBinding, RoleRefArgsDict, SubjectArgsDict

from components.base import FarmComponent, token
from components.breeding_ground import catalog, charts
from components.breeding_ground.spec import GPU_NODE_LABEL, POOL_LABEL, BreedingGroundSpec, GpuPoolSpec

GPU = "nvidia.com/gpu"
# Extended resource an EFA pod requests (AWS EFA device plugin); covered by Kueue only where a pool has EFA.
EFA = "vpc.amazonaws.com/efa"
KUEUE_API = "kueue.x-k8s.io/v1beta1"
COHORT = "farm"
LENDER = "farm-shared"
TEAM_QUEUE = "gpu"
TEAM_SERVICE_ACCOUNT = "workload"
# Pod Security Admission: refuse privileged pods in team namespaces, warn about what `restricted` would refuse.
POD_SECURITY = {"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted"}
MAX_HELM_RELEASE_NAME = 53  # Helm's own limit (helm/helm pkg/chartutil ValidateReleaseName)
TEAM_LABEL = "dragonfarm.io/team"


def kueue_configuration() -> dict[str, object]:
    """Kueue's manager configuration (config.kueue.x-k8s.io/v1beta1 Configuration, kueue v0.14.4
    apis/config/v1beta1/configuration_types.go), the chart's defaults for ports and leader election, plus:
    a Job in a team namespace without a queue label is suspended and never started
    (manageJobsWithoutQueueName, limited to team namespaces by managedJobsNamespaceSelector), so a
    forgotten label cannot bypass the team's quota; other namespaces are untouched."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta1", "kind": "Configuration",
        "health": {"healthProbeBindAddress": ":8081"}, "metrics": {"bindAddress": ":8443"}, "webhook": {"port": 9443},
        "leaderElection": {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"},
        "controller": {"groupKindConcurrency": {"Job.batch": 5, "Pod": 5, "Workload.kueue.x-k8s.io": 5, "LocalQueue.kueue.x-k8s.io": 1,
                                                "ClusterQueue.kueue.x-k8s.io": 1, "ResourceFlavor.kueue.x-k8s.io": 1}},
        "clientConnection": {"qps": 50, "burst": 100},
        "manageJobsWithoutQueueName": True,
        "managedJobsNamespaceSelector": {"matchExpressions": [{"key": TEAM_LABEL, "operator": "Exists"}]},
        "integrations": {"frameworks": ["batch/job", "jobset.x-k8s.io/jobset", "kubeflow.org/mpijob", "kubeflow.org/pytorchjob",
                                        "ray.io/rayjob", "ray.io/raycluster", "trainer.kubeflow.org/trainjob"]},
    }


@dataclass(frozen=True)
class Supply:
    """What one GPU pool (or a team's share of it) holds: GPUs, CPU in millicores, memory in MiB, EFA interfaces."""

    gpus: int
    cpu_milli: int
    memory_mib: int
    efa: int = 0

    def share(self, gpus: int) -> "Supply":
        """The part of this supply that goes with `gpus` of its GPUs (CPU, memory and EFA in proportion)."""
        if self.gpus == 0:
            return Supply(0, 0, 0, 0)
        return Supply(gpus, self.cpu_milli * gpus // self.gpus, self.memory_mib * gpus // self.gpus, self.efa * gpus // self.gpus)

    def minus(self, other: "Supply") -> "Supply":
        return Supply(self.gpus - other.gpus, self.cpu_milli - other.cpu_milli, self.memory_mib - other.memory_mib, self.efa - other.efa)


def pool_supply(cloud: str, pool: GpuPoolSpec) -> Supply:
    """What a pool can physically supply at max_nodes, on its smallest instance type (any type it launches has at least that)."""
    node = catalog.instances(cloud, pool.gpu, pool.gpus_per_node)[0]
    efa = min(i.fabric_interfaces for i in catalog.instances(cloud, pool.gpu, pool.gpus_per_node) if i.fabric) if pool.efa else 0
    return Supply(pool.gpu_limit, pool.max_nodes * node.vcpus * 1000, pool.max_nodes * node.memory_gib * 1024, pool.max_nodes * efa)


def queue_quotas(spec: BreedingGroundSpec, cloud: str) -> dict[str, dict[str, Supply]]:
    """Nominal quota per ClusterQueue and flavor: each team's guaranteed GPUs (spec.gpu_shares) with the
    CPU, memory and EFA that come with them, and a lender queue holding what is left, so the cohort's
    quotas add up to exactly what the pools supply."""
    left = {key: pool_supply(cloud, pool) for key, pool in spec.gpu_pools.items()}
    quotas: dict[str, dict[str, Supply]] = {}
    for team, shares in spec.gpu_shares().items():
        quotas[team] = {}
        for key, gpus in shares.items():
            quotas[team][key] = pool_supply(cloud, spec.gpu_pools[key]).share(gpus)
            left[key] = left[key].minus(quotas[team][key])
    if any(s.gpus or s.cpu_milli or s.memory_mib for s in left.values()):
        quotas[LENDER] = left
    return quotas


def pool_cpus(spec: BreedingGroundSpec, cloud: str) -> int:
    """Whole CPUs the GPU pools supply at max_nodes: a team's default CPU cap."""
    return sum(pool_supply(cloud, pool).cpu_milli for pool in spec.gpu_pools.values()) // 1000


def covered_resources(spec: BreedingGroundSpec) -> list[str]:
    """What every ClusterQueue covers: a pod's CPU and memory requests count too (Kueue does not admit a
    workload requesting a resource its queue does not cover)."""
    return ["cpu", "memory", GPU] + ([EFA] if any(p.efa for p in spec.gpu_pools.values()) else [])


def _quantities(supply: Supply, resources: list[str]) -> list[dict[str, object]]:
    values: dict[str, object] = {
        "cpu": supply.cpu_milli // 1000 if supply.cpu_milli % 1000 == 0 else f"{supply.cpu_milli}m",
        "memory": f"{supply.memory_mib}Mi", GPU: supply.gpus, EFA: supply.efa}
    return [{"name": r, "nominalQuota": values[r]} for r in resources]


def pool_tolerations(pool: GpuPoolSpec, extra: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """Tolerations for pods meant for this pool's nodes: every taint of the pool, plus taints the cloud adds."""
    own = [{"key": t.key, "operator": "Exists", "effect": t.effect} for t in pool.taints]
    return own + [t for t in (extra or []) if t not in own]


def gpu_tolerations(spec: BreedingGroundSpec, extra: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """Tolerations that let a GPU DaemonSet onto every GPU pool's nodes."""
    out: list[dict[str, str]] = []
    for pool in spec.gpu_pools.values():
        out += [t for t in pool_tolerations(pool, extra) if t not in out]
    return out


def on_gpu_nodes(spec: BreedingGroundSpec, extra_tolerations: list[dict[str, str]] | None = None) -> dict[str, object]:
    """Helm values placing a DaemonSet on GPU nodes only (charts such as dcgm-exporter default to every node)."""
    return {"nodeSelector": {GPU_NODE_LABEL[0]: GPU_NODE_LABEL[1]}, "tolerations": gpu_tolerations(spec, extra_tolerations)}


class GpuStack(FarmComponent):
    TOKEN = token("GpuStack")

    def __init__(self, name: str, spec: BreedingGroundSpec, *, cloud: str, device_plugin: bool = True, dcgm_exporter: bool = True,
                 extra_tolerations: list[dict[str, str]] | None = None,
                 system_tolerations: list[dict[str, str]] | None = None,
                 flavor_labels: dict[str, dict[str, str]] | None = None,
                 flavor_tolerations: dict[str, list[dict[str, str]]] | None = None,
                 service_account_annotations: dict[str, dict[str, pulumi.Input[str]]] | None = None,
                 namespace_editors: dict[str, list[SubjectArgsDict]] | None = None,
                 after: list[pulumi.Resource] | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        """`after`: what the releases wait for (nodes to run on, pod networking, DNS): a component's
        depends_on does not reach its children. `device_plugin` / `dcgm_exporter`: off where the cloud runs
        its own (GKE). `flavor_labels` / `flavor_tolerations`: per pool, node labels a Kueue flavor also
        selects (Kueue injects them into admitted pods as a node selector) and taints it tolerates, beside
        the pool label and the pool's taints. `system_tolerations`: what the Kueue controller tolerates to run
        on the system pool (AKS taints it CriticalAddonsOnly). `namespace_editors`: per team, RBAC subjects bound to the
        built-in `edit` ClusterRole in the team's namespace (where the cloud has no namespace-scoped access)."""
        super().__init__(name, opts)
        self.after = list(after or [])
        placement = on_gpu_nodes(spec, extra_tolerations)
        if device_plugin:
            self._release(name, "nvidia-device-plugin", "nvidia-device-plugin", charts.NVIDIA_DEVICE_PLUGIN, placement)
        if dcgm_exporter:
            self._release(name, "dcgm-exporter", "gpu-monitoring", charts.DCGM_EXPORTER, {**placement, "serviceMonitor": {"enabled": False}})
        # The controller runs on the system pool (the GPU pools are tainted; they may be at zero nodes).
        kueue = self._release(name, "kueue", "kueue-system", charts.KUEUE, {
            "controllerManager": {"nodeSelector": {POOL_LABEL: "system"}, "tolerations": list(system_tolerations or [])},
            "managerConfig": {"controllerManagerConfigYaml": yaml.safe_dump(kueue_configuration(), sort_keys=False)}})
        after_kueue = self.child(depends_on=[kueue])

        flavors = spec.pool_order()  # Kueue tries a ClusterQueue's flavors in order: cheapest first
        for key in flavors:
            CustomResource(f"{name}-flavor-{key}", api_version=KUEUE_API, kind="ResourceFlavor", metadata={"name": key},
                           spec={"nodeLabels": {POOL_LABEL: key, **(flavor_labels or {}).get(key, {})},
                                 "tolerations": pool_tolerations(spec.gpu_pools[key], [*(extra_tolerations or []),
                                                                                       *(flavor_tolerations or {}).get(key, [])])},
                           opts=after_kueue)
        resources = covered_resources(spec)
        quotas = queue_quotas(spec, cloud)
        for queue, per_flavor in quotas.items():
            selector = {"matchLabels": {"kubernetes.io/metadata.name": queue}} if queue != LENDER else None
            # The team's own pools first, then the others (cheapest first). whenCanPreempt Preempt: a team whose
            # own pool is lent out takes it back (reclaim) rather than spilling onto another pool whose nodes
            # may be the wrong shape (Kueue's default, TryNextFlavor, prefers a flavor fitting by borrowing over
            # reclaiming); whenCanBorrow TryNextFlavor: look for a flavor fitting without borrowing first.
            order = [k for k in flavors if per_flavor[k].gpus] + [k for k in flavors if not per_flavor[k].gpus]
            queue_spec: dict[str, object] = {
                "cohort": COHORT, "queueingStrategy": "BestEffortFIFO",
                "resourceGroups": [{"coveredResources": resources,
                                    "flavors": [{"name": key, "resources": _quantities(per_flavor[key], resources)} for key in order]}],
                "flavorFungibility": {"whenCanBorrow": "TryNextFlavor", "whenCanPreempt": "Preempt"},
                # A team gets its guaranteed quota back from borrowers by preempting them.
                "preemption": {"reclaimWithinCohort": "Any", "withinClusterQueue": "LowerPriority"},
            }
            if selector is not None:
                queue_spec["namespaceSelector"] = selector  # the lender queue selects no namespace: it only lends
            CustomResource(f"{name}-queue-{queue}", api_version=KUEUE_API, kind="ClusterQueue", metadata={"name": queue},
                           spec=queue_spec, opts=after_kueue)
        annotations = service_account_annotations or {}
        for team, team_spec in spec.teams.items():
            ns = Namespace(f"{name}-team-{team}", metadata={"name": team, "labels": {TEAM_LABEL: team, **POD_SECURITY}},
                           opts=self.child())
            in_ns = self.child(depends_on=[ns])
            CustomResource(f"{name}-team-{team}-queue", api_version=KUEUE_API, kind="LocalQueue",
                           metadata={"name": TEAM_QUEUE, "namespace": team}, spec={"clusterQueue": team},
                           opts=self.child(depends_on=[ns, kueue]))
            # GPUs and CPUs in the namespace are capped at what the pools supply (a team may borrow beyond its
            # quota, so a lower cap would refuse pods Kueue admitted); requests.cpu makes every pod state its
            # CPU, which Kueue then counts.
            cpu = team_spec.cpu_quota or pool_cpus(spec, cloud)
            ResourceQuota(f"{name}-team-{team}-quota", metadata={"name": "compute", "namespace": team},
                          spec={"hard": {f"requests.{GPU}": str(spec.total_gpus), "requests.cpu": str(cpu)}},
                          opts=in_ns)
            same_namespace_only: NetworkPolicySpecArgsDict = {
                "pod_selector": {}, "policy_types": ["Ingress"], "ingress": [{"from_": [{"pod_selector": {}}]}]}
            NetworkPolicy(f"{name}-team-{team}-ingress-same-namespace", metadata={"name": "ingress-same-namespace-only", "namespace": team},
                          spec=same_namespace_only,
                          opts=self.child(depends_on=[ns], aliases=[pulumi.Alias(name=f"{name}-team-{team}-default-deny")]))
            editors = (namespace_editors or {}).get(team)
            if editors:
                edit: RoleRefArgsDict = {"api_group": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}
                RoleBinding(f"{name}-team-{team}-edit", metadata={"name": "team-members-edit", "namespace": team},
                            role_ref=edit,
                            subjects=editors, opts=in_ns)
            ServiceAccount(f"{name}-team-{team}-workload",
                           metadata={"name": TEAM_SERVICE_ACCOUNT, "namespace": team, "annotations": annotations.get(team, {})},
                           opts=in_ns)
        self.finish({"flavors": flavors, "cluster_queues": list(quotas)})

    def _release(self, name: str, release: str, namespace: str, chart: charts.Chart, values: dict) -> Release:
        return Release(f"{name}-{release}", name=release, chart=chart.chart, version=chart.version,
                       repository_opts={"repo": chart.repo} if chart.repo else None, namespace=namespace,
                       create_namespace=True, values=values, atomic=True, opts=self.child(depends_on=self.after))
