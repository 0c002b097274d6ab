"""Breeding ground: the GPU cluster, cloud-neutral inputs.

A managed Kubernetes cluster with a small on-demand system pool and GPU pools keyed by name. GPU
pools are spot by default, scale to zero when idle, are tainted so only GPU work lands on them, and
are capped (max nodes x GPUs per node) so a runaway job cannot buy a fleet. Teams get a namespace
and a share of the GPU quota through Kueue.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Iterator, Literal

from ipaddress import IPv4Network

from pydantic import Field

from components.breeding_ground import catalog
from components.schema import Context, Key, Problem, Spec


class Capacity(str, Enum):
    spot = "spot"
    on_demand = "on-demand"
    spot_with_fallback = "spot-with-fallback"

    @property
    def capacity_types(self) -> list[str]:
        """Capacity types in order of preference (spot first: it is 60-90% cheaper)."""
        return {"spot": ["spot"], "on-demand": ["on-demand"], "spot-with-fallback": ["spot", "on-demand"]}[self.value]


class Taint(Spec):
    key: str = Field(min_length=1)
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


GPU_TAINT = Taint(key="nvidia.com/gpu", value="true", effect="NoSchedule")

# Whether a GPU pool can keep warm nodes (min_nodes > 0). AWS pools are Karpenter NodePools,
# which have no minimum: they scale from zero on demand.
WARM_NODES = {"aws": False, "gcp": True, "azure": True}


class GpuPoolSpec(Spec):
    gpu: str
    """GPU model: h100, a100-40gb, a100-80gb, a10g, a10, l4 or t4 (what the cloud offers, see gpu_catalog.csv)."""
    gpus_per_node: int = Field(default=1, ge=1)
    """GPUs on each node; picks the instance types from the GPU catalog."""
    capacity: Capacity = Capacity.spot
    """spot, on-demand, or spot-with-fallback (spot preferred, on-demand when spot is short)."""
    min_nodes: int = Field(default=0, ge=0)
    """Nodes kept when idle; 0 scales the pool to zero."""
    max_nodes: int = Field(default=2, ge=1)
    """Ceiling on nodes; the pool's GPU limit is max_nodes x gpus_per_node."""
    taints: list[Taint] = Field(default_factory=lambda: [GPU_TAINT])
    """Taints keep non-GPU pods off GPU nodes."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra node labels."""
    scale_down_after_minutes: int = Field(default=15, ge=1, le=1440)
    """Remove a node this long after it became empty."""
    disk_gb: int = Field(default=200, ge=50, le=16384)
    """Root volume size (images of CUDA stacks are large)."""
    efa: bool = False
    """Attach the high-speed fabric (AWS EFA) on instance types that have it."""
    capacity_reservation_id: str | None = None
    """Launch into this capacity reservation (then no placement group is forced)."""

    @property
    def gpu_limit(self) -> int:
        return self.max_nodes * self.gpus_per_node

    def problems(self, ctx: Context) -> Iterator[Problem]:
        offered = catalog.gpus_on(ctx.cloud)
        if self.gpu not in offered:
            yield Problem("gpu", self.gpu, f"a GPU {ctx.cloud} offers: {', '.join(offered)}")
            return
        sizes = catalog.sizes(ctx.cloud, self.gpu)
        if self.gpus_per_node not in sizes:
            yield Problem("gpus_per_node", self.gpus_per_node, f"one of {', '.join(map(str, sizes))} for {self.gpu} on {ctx.cloud}")
        if self.min_nodes > self.max_nodes:
            yield Problem("min_nodes", self.min_nodes, f"at most max_nodes ({self.max_nodes})")
        elif self.min_nodes > 0 and not WARM_NODES[ctx.cloud]:
            yield Problem("min_nodes", self.min_nodes, f"0 on {ctx.cloud} (Karpenter GPU pools scale from zero; they keep no warm nodes)")
        if self.efa and not any(i.fabric for i in catalog.instances(ctx.cloud, self.gpu, self.gpus_per_node)):
            yield Problem("efa", True, f"false: no {self.gpu} x{self.gpus_per_node} instance type on {ctx.cloud} has a GPU fabric")
        if self.capacity_reservation_id is not None and self.capacity is not Capacity.on_demand:
            yield Problem("capacity_reservation_id", self.capacity_reservation_id, "only with capacity: on-demand (reservations are on-demand capacity)")


class SystemPoolSpec(Spec):
    instance_type: str | None = None
    """CPU instance type for cluster services. Default: a small general-purpose type per cloud."""
    min_nodes: int = Field(default=1, ge=1)
    max_nodes: int = Field(default=3, ge=1)

    def problems(self, ctx: Context) -> Iterator[Problem]:
        if self.min_nodes > self.max_nodes:
            yield Problem("min_nodes", self.min_nodes, f"at most max_nodes ({self.max_nodes})")


class TeamSpec(Spec):
    gpu_quota: int | None = Field(default=None, ge=0)
    """GPUs the team may use at once (Kueue nominal quota). Default: the whole cluster's GPUs."""
    cpu_quota: int = Field(default=64, ge=1)
    """CPU cores the team's namespace may request (ResourceQuota)."""


class BreedingGroundSpec(Spec):
    kubernetes_version: str = "1.33"
    """Pinned Kubernetes minor version (upgrades are a deliberate change, never automatic)."""
    public_endpoint_cidrs: list[IPv4Network] = Field(default_factory=list)
    """CIDRs allowed to reach a public API endpoint. Empty: the API endpoint is private only."""
    system_pool: SystemPoolSpec = Field(default_factory=SystemPoolSpec)
    """The small on-demand CPU pool for cluster services."""
    gpu_pools: dict[Key, GpuPoolSpec] = Field(default_factory=dict)
    """GPU pools keyed by name."""
    teams: dict[Key, TeamSpec] = Field(default_factory=dict)
    """Teams keyed by name: each gets a namespace, a Kueue LocalQueue and quotas."""

    @property
    def total_gpus(self) -> int:
        return sum(pool.gpu_limit for pool in self.gpu_pools.values())

    def problems(self, ctx: Context) -> Iterator[Problem]:
        if not re.fullmatch(r"1\.\d{2}", self.kubernetes_version):
            yield Problem("kubernetes_version", self.kubernetes_version, "a minor version such as '1.33'")
        for problem in self.system_pool.problems(ctx):
            yield problem.under("system_pool")
        for key, pool in self.gpu_pools.items():
            for problem in pool.problems(ctx):
                yield problem.under(f"gpu_pools.{key}")
        for key, team in self.teams.items():
            if team.gpu_quota is not None and team.gpu_quota > self.total_gpus:
                yield Problem(f"teams.{key}.gpu_quota", team.gpu_quota, f"at most the pools' GPU limit ({self.total_gpus})")
