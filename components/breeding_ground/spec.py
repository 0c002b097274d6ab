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

from components.breeding_ground import catalog, versions
from components.schema import LABEL_VALUE, Context, Key, Problem, Spec, label_key_problem, label_problems, principal_problems
from components.trough.spec import Access


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
# Every GPU node of every pool carries these labels (set by the farm, not discovered): DaemonSets that
# only make sense on GPU nodes select GPU_NODE_LABEL, Kueue flavors select POOL_LABEL.
GPU_NODE_LABEL = ("nvidia.com/gpu.present", "true")
POOL_LABEL = "dragonfarm.io/pool"
# The capacity a node was bought as (spot / on-demand), set by the farm where a node group has one capacity
# type (GKE and AKS node pools): GKE labels only spot nodes (cloud.google.com/gke-spot) and AKS only spot
# pools, so an on-demand node could not be selected by a cloud label. Karpenter labels its nodes itself
# (karpenter.sh/capacity-type), as one NodePool may launch either.
CAPACITY_LABEL = "dragonfarm.io/capacity"
# Kueue v1beta1 ClusterQueue: a resource group lists at most 64 flavors (kubebuilder MaxItems=64 on
# ResourceGroup.Flavors, kubernetes-sigs/kueue apis/kueue/v1beta1/clusterqueue_types.go, tag v0.14.4).
MAX_GPU_POOLS = 64


class GpuPoolSpec(Spec):
    gpu: str
    """GPU model: h100, a100-40gb, a100-80gb, a10g, a10, l4 or t4 (what the cloud offers, see gpu_catalog.csv)."""
    gpus_per_node: int = Field(default=1, ge=1, le=16)
    """GPUs on each node; picks the instance types from the GPU catalog."""
    capacity: Capacity = Capacity.spot
    """spot, on-demand, or spot-with-fallback (spot preferred, on-demand when spot is short)."""
    min_nodes: int = Field(default=0, ge=0, le=1000)
    """Nodes kept when idle; 0 scales the pool to zero."""
    max_nodes: int = Field(default=2, ge=1, le=1000)
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
    expire_after_hours: int | None = Field(default=None, ge=1, le=87600)
    """Replace nodes older than this (fresh images); unset: never, so a long training job is not drained."""

    @property
    def gpu_limit(self) -> int:
        return self.max_nodes * self.gpus_per_node

    def catalog_types(self, cloud: str) -> list[str]:
        """Instance types with this GPU and count (with a GPU fabric if efa), smallest first."""
        return [i.instance_type for i in catalog.instances(cloud, self.gpu, self.gpus_per_node) if i.fabric or not self.efa]

    def instance_types(self, cloud: str, region: str) -> list[str]:
        """The catalog types offered in `region` (offered.csv): what the pool may launch there."""
        return catalog.in_region(cloud, region, self.catalog_types(cloud))

    def problems(self, ctx: Context) -> Iterator[Problem]:
        offered = catalog.gpus_on(ctx.cloud)
        if self.gpu not in offered:
            yield Problem("gpu", self.gpu, f"a GPU {ctx.cloud} offers: {', '.join(offered)}")
            return
        sizes = catalog.sizes(ctx.cloud, self.gpu)
        if self.gpus_per_node not in sizes:
            yield Problem("gpus_per_node", self.gpus_per_node, f"one of {', '.join(map(str, sizes))} for {self.gpu} on {ctx.cloud}")
        else:
            missing = catalog.not_offered(ctx.cloud, ctx.region, self.catalog_types(ctx.cloud))
            if missing:
                yield Problem("gpu", self.gpu, f"a GPU offered in {ctx.region} ({self.gpu} x{self.gpus_per_node}: {missing})")
            else:
                yield from catalog.zone_problems(ctx.cloud, ctx.region, ctx.zones, self.catalog_types(ctx.cloud), self.gpus_per_node, "gpu", self.gpu)
        for setting, clouds in POOL_SETTINGS_BUILT.items():
            if setting in self.model_fields_set and ctx.cloud not in clouds:
                yield Problem(setting, getattr(self, setting),
                              f"unset on {ctx.cloud} ({POOL_SETTING_WHY[setting]}; honoured on: {', '.join(sorted(clouds))})")
        if self.efa and ctx.cloud not in FABRIC_BUILT:
            yield Problem("efa", True, f"false on {ctx.cloud}: the {ctx.cloud} blueprint does not build GPU fabric networking "
                                       f"(built on: {', '.join(sorted(FABRIC_BUILT))})")
        if self.min_nodes > self.max_nodes:
            yield Problem("min_nodes", self.min_nodes, f"at most max_nodes ({self.max_nodes})")
        elif self.min_nodes > 0 and self.efa:
            yield Problem("min_nodes", self.min_nodes, "0 for an efa pool (warm nodes carry no fabric interfaces)")
        if self.efa and not any(i.fabric for i in catalog.instances(ctx.cloud, self.gpu, self.gpus_per_node)):
            yield Problem("efa", True, f"false: no {self.gpu} x{self.gpus_per_node} instance type on {ctx.cloud} has a GPU fabric")
        yield from label_problems("labels", self.labels)
        for i, taint in enumerate(self.taints):
            if label_key_problem(taint.key, reserved=False) is not None:
                yield Problem(f"taints[{i}].key", taint.key, label_key_problem(taint.key, reserved=False) or "")
            if not re.fullmatch(LABEL_VALUE, taint.value):
                yield Problem(f"taints[{i}].value", taint.value, "a taint value: at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends")
        if self.capacity_reservation_id is not None and not re.fullmatch(RESERVATION_IDS[ctx.cloud][0], self.capacity_reservation_id):
            yield Problem("capacity_reservation_id", self.capacity_reservation_id, RESERVATION_IDS[ctx.cloud][1])
        if self.capacity_reservation_id is not None and self.capacity is not Capacity.on_demand:
            yield Problem("capacity_reservation_id", self.capacity_reservation_id, "only with capacity: on-demand (reservations are on-demand capacity)")


def pool_labels(key: str, pool: GpuPoolSpec, capacity: str | None = None) -> dict[str, str]:
    """Node labels of every node of a GPU pool, whoever launches it: the pool (what Kueue flavors select),
    the GPU marker (what GPU DaemonSets select), the capacity where the node group has one, the pool's own."""
    return {POOL_LABEL: key, GPU_NODE_LABEL[0]: GPU_NODE_LABEL[1], **({CAPACITY_LABEL: capacity} if capacity else {}), **pool.labels}


# How each cloud names the node groups of a GPU pool (one per capacity type). GKE node pool names take
# 40 lowercase letters, digits and hyphens: `<key>` or `<key>-spot` / `<key>-on-demand`. AKS agent pool
# names take 1-12 lowercase letters and digits, starting with a letter (AKS "Create node pools"): the key
# without hyphens, cut to 12 (to 11 plus `s` / `r` for a fallback pool's spot and regular pools).
# Karpenter on AWS has no per-capacity node groups.
SYSTEM_GROUP = "system"


def _hyphenated(key: str, capacity: str, both: bool) -> str:
    return f"{key}-{capacity}" if both else key


def _alphanumeric_12(key: str, capacity: str, both: bool) -> str:
    base = re.sub(r"[^a-z0-9]", "", key)
    return base[:11] + {"spot": "s", "on-demand": "r"}[capacity] if both else base[:12]


NODE_GROUP_NAMING = {"aws": _hyphenated, "gcp": _hyphenated, "azure": _alphanumeric_12}


def node_group_names(cloud: str, key: str, pool: GpuPoolSpec) -> dict[str, str]:
    """Capacity type -> node group name, stable for a given key (renaming a group replaces it)."""
    both = pool.capacity is Capacity.spot_with_fallback
    return {c: NODE_GROUP_NAMING[cloud](key, c, both) for c in pool.capacity.capacity_types}


class SystemPoolSpec(Spec):
    instance_type: str | None = None
    """CPU instance type for cluster services, from cpu_catalog.csv. Default: the cloud's small general-purpose type there."""
    min_nodes: int = Field(default=1, ge=1, le=100)
    max_nodes: int = Field(default=3, ge=1, le=100)

    def instance(self, cloud: str) -> catalog.CpuInstance:
        found = catalog.cpu_instance(cloud, self.instance_type or catalog.system_default(cloud))
        assert found is not None  # checked by problems()
        return found

    def problems(self, ctx: Context) -> Iterator[Problem]:
        if self.instance_type is not None and catalog.cpu_instance(ctx.cloud, self.instance_type) is None:
            yield Problem("instance_type", self.instance_type, f"a CPU instance type of cpu_catalog.csv for {ctx.cloud}: "
                                                               f"{', '.join(catalog.cpu_types(ctx.cloud))}")
        else:
            name = self.instance_type or catalog.system_default(ctx.cloud)
            missing = catalog.not_offered(ctx.cloud, ctx.region, [name])
            if missing:
                yield Problem("instance_type", name, f"a type offered in {ctx.region} ({missing})")
        if self.min_nodes > self.max_nodes:
            yield Problem("min_nodes", self.min_nodes, f"at most max_nodes ({self.max_nodes})")


class TeamSpec(Spec):
    gpu_quota: int | None = Field(default=None, ge=0, le=16000)
    """GPUs guaranteed to the team (its Kueue nominal quota); idle GPUs of the farm may be borrowed beyond it. Default: none guaranteed, borrow only."""
    cpu_quota: int | None = Field(default=None, ge=1, le=1_000_000)
    """CPU cores the team's namespace may request (ResourceQuota). Default: what the GPU pools supply at max_nodes, so every job Kueue admits also fits the quota."""
    members: list[str] = Field(default_factory=list)
    """People who may edit the team's namespace (AWS: IAM role or user ARNs)."""
    troughs: dict[Key, Access] | None = None
    """Troughs the team's workloads may use and how (read / read-write). Default: by purpose (datasets and models read, checkpoints and logs read-write)."""
    pools: list[Key] | None = None
    """GPU pools the team's guaranteed quota is taken from, in order. Default: every pool, cheapest first (spot, spot-with-fallback, on-demand)."""


class BreedingGroundSpec(Spec):
    deploy_from: Literal["internet", "inside-network"]
    """Where `pulumi up` runs, so the program can reach its own cluster's API: `internet` (a laptop or hosted CI runner: a public endpoint open only to public_endpoint_cidrs) or `inside-network` (a runner in the farm's network or one connected to it: the endpoint stays private and runner_cidrs may reach it)."""
    kubernetes_version: str | None = None
    """Pinned Kubernetes minor version, inside the cloud's standard support window (versions.csv). Default: the cloud's default there. Upgrades are a deliberate change."""
    public_endpoint_cidrs: list[IPv4Network] = Field(default_factory=list)
    """Public CIDRs allowed to reach a public API endpoint (deploy_from: internet). Empty: the API endpoint is private only."""
    runner_cidrs: list[IPv4Network] = Field(default_factory=list)
    """Private CIDRs inside or connected to the farm's network allowed to reach the private API endpoint (deploy_from: inside-network)."""
    admins: list[str] = Field(default_factory=list)
    """People with cluster-admin (AWS: IAM role or user ARNs). The identity running `pulumi up` must be one of them (for a role, its role ARN): the cluster admits only listed people."""
    system_pool: SystemPoolSpec = Field(default_factory=SystemPoolSpec)
    """The small on-demand CPU pool for cluster services."""
    gpu_pools: dict[Key, GpuPoolSpec] = Field(default_factory=dict)
    """GPU pools keyed by name."""
    teams: dict[Key, TeamSpec] = Field(default_factory=dict)
    """Teams keyed by name: each gets a namespace, a Kueue LocalQueue and quotas."""

    @property
    def total_gpus(self) -> int:
        return sum(pool.gpu_limit for pool in self.gpu_pools.values())

    def version(self, cloud: str) -> str:
        """The pinned Kubernetes version: the stack's, or the cloud's default."""
        return self.kubernetes_version or versions.default(cloud)

    def problems(self, ctx: Context) -> Iterator[Problem]:
        if self.kubernetes_version is not None:
            allowed = versions.problem(ctx.cloud, self.kubernetes_version)
            if allowed is not None:
                yield Problem("kubernetes_version", self.kubernetes_version, allowed)
        for feature in self.features():
            needs = versions.feature_problem(ctx.cloud, feature, self.version(ctx.cloud))
            if needs is not None:
                yield Problem("kubernetes_version", self.version(ctx.cloud), needs)
        yield from self._access_problems(ctx)
        for problem in self.system_pool.problems(ctx):
            yield problem.under("system_pool")
        if len(self.gpu_pools) > MAX_GPU_POOLS:
            yield Problem("gpu_pools", f"{len(self.gpu_pools)} pools", f"at most {MAX_GPU_POOLS}: each pool is a Kueue flavor of every team's ClusterQueue resource group")
        seen: dict[str, str] = {SYSTEM_GROUP: "the system pool"}
        for key, pool in self.gpu_pools.items():
            for name in node_group_names(ctx.cloud, key, pool).values():
                if name in seen and key not in RESERVED_POOL_KEYS:
                    yield Problem(f"gpu_pools.{key}", key, f"a pool name whose {ctx.cloud} node group name ({name}) differs from "
                                                           f"{seen[name]}'s: {NODE_GROUP_RULES.get(ctx.cloud, '')}".rstrip(": "))
                seen.setdefault(name, f"pool {key}")
            if key in RESERVED_POOL_KEYS:
                yield Problem(f"gpu_pools.{key}", key, f"a pool name other than {', '.join(sorted(RESERVED_POOL_KEYS))} (the system pool's)")
            for problem in pool.problems(ctx):
                yield problem.under(f"gpu_pools.{key}")
        shares = self.gpu_shares()
        for key, team in self.teams.items():
            for i, pool in enumerate(team.pools or []):
                if pool not in self.gpu_pools:
                    yield Problem(f"teams.{key}.pools[{i}]", pool, f"a GPU pool of the stack: {', '.join(self.gpu_pools) or 'none'}")
            got = sum(shares[key].values())
            if team.gpu_quota is not None and got < team.gpu_quota and all(p in self.gpu_pools for p in team.pools or []):
                yield Problem(f"teams.{key}.gpu_quota", team.gpu_quota,
                              f"at most {got}: what its pools ({', '.join(team.pools or self.pool_order())}) have left after the teams "
                              f"served before it; the teams' guaranteed GPUs must fit in what the pools supply ({self.total_gpus})")
            yield from principal_problems(ctx.cloud, f"teams.{key}.members", team.members)
            if ctx.cloud in GROUP_MEMBERS_REFUSED:
                for i, member in enumerate(team.members):
                    if member.startswith("group:"):
                        yield Problem(f"teams.{key}.members[{i}]", member, GROUP_MEMBERS_REFUSED[ctx.cloud])
            if key in RESERVED_NAMESPACES or key.startswith("kube-"):
                yield Problem(f"teams.{key}", key, "a team name that is not a namespace the cluster already has (default, kube-*)")

    def features(self) -> list[str]:
        """Cluster features the stack relies on (features.csv gives each cloud's minimum version)."""
        fallback = any(p.capacity is Capacity.spot_with_fallback for p in self.gpu_pools.values())
        return (["compute-class"] if fallback else []) + (["managed-dcgm"] if self.gpu_pools else [])

    def pool_order(self) -> list[str]:
        """GPU pools in the order quotas are taken from them (and Kueue tries them): cheapest capacity first, then by name."""
        return sorted(self.gpu_pools, key=lambda key: (CAPACITY_ORDER[self.gpu_pools[key].capacity.value], key))

    def gpu_shares(self) -> dict[str, dict[str, int]]:
        """Each team's guaranteed GPUs per pool: its gpu_quota poured into its pools in order. Teams naming
        their pools go first (they have fewer choices), then the others, by name: adding a team that names
        no pools never takes a pool from a team that named it. What no team is guaranteed stays with the
        farm (a lender queue), for any team to borrow."""
        left = {key: pool.gpu_limit for key, pool in self.gpu_pools.items()}
        shares: dict[str, dict[str, int]] = {}
        for team in sorted(self.teams, key=lambda t: (self.teams[t].pools is None, t)):
            wanted = self.teams[team].gpu_quota or 0
            shares[team] = {key: 0 for key in self.pool_order()}
            for key in [p for p in (self.teams[team].pools or self.pool_order()) if p in left]:
                take = min(wanted, left[key])
                shares[team][key] += take
                left[key] -= take
                wanted -= take
        return shares

    def _access_problems(self, ctx: Context) -> Iterator[Problem]:
        """The program must be able to reach its own cluster's API from where `pulumi up` runs."""
        if self.deploy_from == "internet":
            if not self.public_endpoint_cidrs:
                yield Problem("public_endpoint_cidrs", [], "the public CIDRs of the machines running `pulumi up` (deploy_from: internet; "
                                                           "with none the endpoint is private and the program cannot reach its cluster)")
            if self.runner_cidrs:
                yield Problem("runner_cidrs", [str(c) for c in self.runner_cidrs], "unset with deploy_from: internet")
        else:
            if not self.runner_cidrs:
                yield Problem("runner_cidrs", [], "the private CIDRs of the runners inside or connected to the farm's network "
                                                  "(deploy_from: inside-network)")
            if self.public_endpoint_cidrs:
                yield Problem("public_endpoint_cidrs", [str(c) for c in self.public_endpoint_cidrs],
                              "unset with deploy_from: inside-network (the endpoint stays private)")
        for i, cidr in enumerate(self.public_endpoint_cidrs):
            if cidr.prefixlen == 0 or _internal(cidr):
                yield Problem(f"public_endpoint_cidrs[{i}]", str(cidr), "a public CIDR narrower than 0.0.0.0/0 "
                                                                        "(a public endpoint sees the caller's public address)")
        for i, cidr in enumerate(self.runner_cidrs):
            if not _internal(cidr):
                yield Problem(f"runner_cidrs[{i}]", str(cidr), "a private CIDR (RFC 1918 or 100.64.0.0/10) inside or connected to the farm's network")
        if not self.admins:
            yield Problem("admins", [], "at least one principal, the identity that runs `pulumi up` among them (the cluster "
                                        "admits only listed people, and the program installs the in-cluster stack as that identity)")
        yield from principal_problems(ctx.cloud, "admins", self.admins)

    def placeholders(self) -> Iterator[Problem]:
        """Example values a real deploy cannot work with: a public endpoint open only to an RFC 5737
        documentation range (no real machine has such an address, so the program could never reach its
        cluster). The offline plan warns; `pulumi up` refuses them before building anything."""
        for i, cidr in enumerate(self.public_endpoint_cidrs):
            if any(cidr.subnet_of(doc) for doc in DOCUMENTATION_RANGES):
                yield Problem(f"public_endpoint_cidrs[{i}]", str(cidr), "your runners' public CIDRs: this is a documentation range "
                                                                        "(RFC 5737) that no real machine has")


# Clouds whose blueprint wires a GPU fabric (AWS EFA interfaces and device plugin). GCP GPUDirect needs
# multi-network node pools and Azure InfiniBand its own drivers: not built.
FABRIC_BUILT = frozenset({"aws"})
# Pool settings only some clouds' autoscalers take per pool: set elsewhere they would be ignored.
POOL_SETTINGS_BUILT = {"scale_down_after_minutes": frozenset({"aws"}), "expire_after_hours": frozenset({"aws"})}
POOL_SETTING_WHY = {"scale_down_after_minutes": "the GKE and AKS cluster autoscalers have one cluster-wide scale-down delay",
                    "expire_after_hours": "GKE and AKS node pools have no node expiry; node image upgrades replace nodes"}
NODE_GROUP_RULES = {"azure": "AKS agent pool names are the key without hyphens, at most 12 characters"}
# GPU pool keys that would collide with the system pool (its node pool name and pool label).
RESERVED_POOL_KEYS = frozenset({"system"})
# Team members get namespace-scoped access through Kubernetes RBAC on GKE, where a Google group is a
# subject only with Google Groups for RBAC (not configured by the farm): users and service accounts only.
GROUP_MEMBERS_REFUSED = {"gcp": "a user: or serviceAccount: principal (namespace access is Kubernetes RBAC, which sees a Google group "
                                "only with Google Groups for RBAC; make a group an admin or list its members)"}

# What each cloud takes as a capacity reservation id (EC2: cr- and 17 hex digits).
RESERVATION_IDS = {
    "aws": (r"cr-[0-9a-f]{17}", "an EC2 capacity reservation id such as cr-0123456789abcdef0"),
    "gcp": (r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", "a reservation name: lowercase letters, digits and hyphens"),
    "azure": (r"/subscriptions/.+/providers/Microsoft\.Compute/capacityReservationGroups/.+", "a capacity reservation group resource id"),
}

# Cheapest first: quotas are taken from, and Kueue tries, spot pools before fallback pools before on-demand ones.
CAPACITY_ORDER = {"spot": 0, "spot-with-fallback": 1, "on-demand": 2}

# Address ranges that never appear as a caller's address at a public endpoint: RFC 1918, shared
# address space (RFC 6598), loopback and link-local.
DOCUMENTATION_RANGES = [IPv4Network(c) for c in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
INTERNAL_RANGES = [IPv4Network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16")]


def _internal(cidr: IPv4Network) -> bool:
    return any(cidr.subnet_of(r) for r in INTERNAL_RANGES)


# Namespaces every cluster has: a team of that name would take over (or fail to create) them.
RESERVED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
