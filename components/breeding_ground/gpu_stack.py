"""GpuStack: the cloud-neutral in-cluster GPU stack (pulumi-kubernetes), reused by every blueprint.

- NVIDIA device plugin (GPUs become schedulable `nvidia.com/gpu`) and DCGM exporter (GPU utilisation
  metrics, the signal for idle detection), both tolerating the GPU taint;
- Kueue with one ResourceFlavor per capacity type and one ClusterQueue `gpu` whose quota per flavor
  is the GPUs the pools can offer of that type, spot flavor listed (so tried) first;
- one namespace per team with a Kueue LocalQueue, a ResourceQuota and a default-deny-ingress
  NetworkPolicy (pods take traffic only from their own namespace).

Which node label tells spot from on-demand differs per cloud; the blueprint passes it in.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.core.v1 import Namespace, ResourceQuota
from pulumi_kubernetes.helm.v3 import Release
from pulumi_kubernetes.networking.v1 import NetworkPolicy, NetworkPolicySpecArgsDict

from components.base import FarmComponent, token
from components.breeding_ground import charts
from components.breeding_ground.spec import BreedingGroundSpec, GPU_TAINT

GPU = "nvidia.com/gpu"
KUEUE_API = "kueue.x-k8s.io/v1beta1"


@dataclass(frozen=True)
class CapacityLabel:
    """The node label a cloud puts on nodes by capacity type, e.g. karpenter.sh/capacity-type=spot."""

    key: str
    spot: str
    on_demand: str

    def value(self, capacity_type: str) -> str:
        return self.spot if capacity_type == "spot" else self.on_demand


def flavor_quotas(spec: BreedingGroundSpec) -> dict[str, int]:
    """GPUs each capacity type can supply, spot first. A spot-with-fallback pool counts in both."""
    quotas: dict[str, int] = {}
    for pool in spec.gpu_pools.values():
        for capacity_type in pool.capacity.capacity_types:
            quotas[capacity_type] = quotas.get(capacity_type, 0) + pool.gpu_limit
    return dict(sorted(quotas.items(), key=lambda item: item[0] != "spot"))


def gpu_tolerations() -> list[dict[str, str]]:
    """Tolerating the GPU taint: what every pod meant to run on GPU nodes carries."""
    return [{"key": GPU_TAINT.key, "operator": "Exists", "effect": GPU_TAINT.effect}]


class GpuStack(FarmComponent):
    TOKEN = token("GpuStack")

    def __init__(self, name: str, spec: BreedingGroundSpec, *, capacity_label: CapacityLabel, device_plugin: bool = True,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        releases = []
        if device_plugin:
            releases.append(self._release(f"{name}-nvidia-device-plugin", "nvidia-device-plugin", charts.NVIDIA_DEVICE_PLUGIN,
                                          {"tolerations": gpu_tolerations()}))
        releases.append(self._release(f"{name}-dcgm-exporter", "gpu-monitoring", charts.DCGM_EXPORTER,
                                      {"tolerations": gpu_tolerations(), "serviceMonitor": {"enabled": False}}))
        kueue = self._release(f"{name}-kueue", "kueue-system", charts.KUEUE, {})
        after_kueue = self.child(depends_on=[kueue])

        quotas = flavor_quotas(spec)
        for capacity_type in quotas:
            CustomResource(f"{name}-flavor-{capacity_type}", api_version=KUEUE_API, kind="ResourceFlavor",
                           metadata={"name": capacity_type},
                           spec={"nodeLabels": {capacity_label.key: capacity_label.value(capacity_type)},
                                 "tolerations": gpu_tolerations()},
                           opts=after_kueue)
        CustomResource(f"{name}-cluster-queue", api_version=KUEUE_API, kind="ClusterQueue", metadata={"name": "gpu"},
                       spec={"namespaceSelector": {},
                             "queueingStrategy": "BestEffortFIFO",
                             "resourceGroups": [{"coveredResources": [GPU],
                                                 "flavors": [{"name": flavor, "resources": [{"name": GPU, "nominalQuota": quota}]}
                                                             for flavor, quota in quotas.items()]}]},
                       opts=after_kueue)
        for team, team_spec in spec.teams.items():
            ns = Namespace(f"{name}-team-{team}", metadata={"name": team, "labels": {"dragonfarm.io/team": team}}, opts=self.child())
            in_ns = self.child(depends_on=[ns, kueue])
            CustomResource(f"{name}-team-{team}-queue", api_version=KUEUE_API, kind="LocalQueue",
                           metadata={"name": "gpu", "namespace": team}, spec={"clusterQueue": "gpu"}, opts=in_ns)
            gpus = team_spec.gpu_quota if team_spec.gpu_quota is not None else spec.total_gpus
            ResourceQuota(f"{name}-team-{team}-quota", metadata={"name": "compute", "namespace": team},
                          spec={"hard": {f"requests.{GPU}": str(gpus), "requests.cpu": str(team_spec.cpu_quota)}},
                          opts=self.child(depends_on=[ns]))
            same_namespace_only: NetworkPolicySpecArgsDict = {
                "pod_selector": {}, "policy_types": ["Ingress"], "ingress": [{"from_": [{"pod_selector": {}}]}]}
            NetworkPolicy(f"{name}-team-{team}-default-deny", metadata={"name": "default-deny-ingress", "namespace": team},
                          spec=same_namespace_only, opts=self.child(depends_on=[ns]))
        self.finish({"flavors": list(quotas)})

    def _release(self, name: str, namespace: str, chart: charts.Chart, values: dict) -> Release:
        return Release(name, chart=chart.chart, version=chart.version,
                       repository_opts={"repo": chart.repo} if chart.repo else None, namespace=namespace,
                       create_namespace=True, values=values, atomic=True, opts=self.child())
