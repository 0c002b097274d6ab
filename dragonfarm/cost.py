"""The offline cost estimate: a Plan (what the program asks for) + its usage profile + the price catalog.

Every resource is classified by its type:
- priced: it bills by the hour or month; its line shows
  - the estimate: the usage profile at the prices the stack's settings get (month 1, and month 12
    where storage grows because nothing expires);
  - the floor: the same usage hours at the cheapest price the stack's pools could get (spot where a
    pool allows spot, on-demand where it does not), storage in the cheapest class its lifecycle
    reaches, plus the fixed fees nothing avoids;
  - without dragonfarm's savings: the same usage hours on on-demand, every object kept in the hot
    class for ever (month 1 and month 12), dev boxes never stopped;
  - the ceiling: the most it can cost in a month, every GPU pool at max_nodes all month;
- free: it does not bill (routes, IAM, in-cluster objects; their cost is the nodes they run on);
- usage: it bills per request or GB the usage profile does not model (logs, queues, topics): listed;
- unpriced: no price rule or no catalog row: listed with the reason. Never silently zero.

Storage follows the bucket's lifecycle rules as planned: with ingest r GB/day, objects of age a sit in
the class the rules give at age a, so steady-state GB per class is r x (days spent in that class).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal

from components.breeding_ground import catalog as gpu_catalog
from components.breeding_ground.spec import CAPACITY_LABEL, POOL_LABEL
from components.ledger.spec import HOURS_PER_MONTH
from components.trough.spec import TIERS
from dragonfarm.plan import Plan, PlannedResource, layer_of
from dragonfarm.pricing import Catalog, MissingPrice, default

Status = Literal["priced", "free", "usage", "unpriced"]


# What a real bill has that no line of the estimate prices: said in every estimate, never implied to be zero.
NOT_MODELLED = (
    "storage requests and lifecycle transitions (per 1,000 requests; they depend on object counts, not GB)",
    "retrieval fees of cool and archive classes",
    "load balancers and public endpoints for serving (the blueprints create none)",
    "data transfer between zones and regions",
    "support plans, taxes and discounts (savings plans, committed use), free-tier allowances",
    "KMS requests (beyond the free monthly requests) and the extra charge of rotated key versions",
    "old object versions kept until the lifecycle's noncurrent rules delete them, and per-object minimums "
    "(Standard-IA 128 KB, Glacier metadata)",
)


class Unmodelled(LookupError):
    """The resource bills by usage the stack's usage profile does not give: listed as usage-based."""


@dataclass
class Priced:
    """What a price rule returns, per month. Baselines left None equal the estimate."""

    monthly: float
    detail: str
    floor: float | None = None
    without: float | None = None
    ceiling: float | None = None
    month12: float | None = None
    without12: float | None = None


DEFAULT_BARN_HOURS = 176.0  # 8 h x 22 working days: what the idle stop keeps a dev box near
DAYS_PER_MONTH = HOURS_PER_MONTH / 24  # the 730-hour month the clouds bill by (30.4 days, not 30)
EGRESS = "farm:egress"  # the farm-level line for internet egress (not a resource, so no URN)


@dataclass
class Line:
    urn: str
    name: str
    type: str
    layer: str
    status: Status
    monthly: float = 0.0
    floor: float = 0.0
    without: float = 0.0
    ceiling: float = 0.0
    month12: float = 0.0
    without12: float = 0.0
    detail: str = ""


@dataclass
class Estimate:
    stack: str
    cloud: str
    currency: str
    budget: float
    lines: list[Line] = field(default_factory=list)

    def total_of(self, attr: str) -> float:
        """Sum of one column (monthly, floor, without, ceiling, month12, without12) over the priced lines."""
        return round(sum(getattr(line, attr) for line in self.lines if line.status == "priced"), 2)

    @property
    def total(self) -> float:
        return self.total_of("monthly")

    @property
    def floor_total(self) -> float:
        return self.total_of("floor")

    @property
    def without_total(self) -> float:
        return self.total_of("without")

    @property
    def without12_total(self) -> float:
        return self.total_of("without12")

    @property
    def ceiling_total(self) -> float:
        return self.total_of("ceiling")

    @property
    def month12_total(self) -> float:
        return self.total_of("month12")

    def unpriced(self) -> list[Line]:
        """Lines that bill but have no price: the totals leave them out, so the estimate is incomplete."""
        return [line for line in self.lines if line.status == "unpriced"]

    @property
    def complete(self) -> bool:
        return not self.unpriced()

    def headline(self) -> str:
        state = "complete" if self.complete else f"incomplete: {len(self.unpriced())} item{'s' if len(self.unpriced()) != 1 else ''} unpriced"
        return f"Monthly estimate {self.total:,.2f} {self.currency} ({state})"

    @property
    def budget_share(self) -> float:
        return self.total / self.budget if self.budget else 0.0

    def by_layer(self, attr: str = "monthly") -> dict[str, float]:
        """Sum of one column (monthly, floor, without, ceiling, month12, without12) of the priced lines, per layer."""
        out: dict[str, float] = {}
        for line in self.lines:
            if line.status == "priced":
                out[line.layer] = round(out.get(line.layer, 0.0) + getattr(line, attr), 2)
        return out

    def not_estimated(self) -> list[Line]:
        return [line for line in self.lines if line.status in ("usage", "unpriced")]

    def by_urn(self) -> dict[str, Line]:
        return {line.urn: line for line in self.lines}

    def to_json(self) -> str:
        return json.dumps({
            "stack": self.stack, "cloud": self.cloud, "currency": self.currency, "budget": self.budget,
            "total": self.total, "floor_total": self.floor_total, "without_savings_total": self.without_total,
            "without_savings_month12_total": self.without12_total, "ceiling_total": self.ceiling_total,
            "month12_total": self.month12_total, "complete": self.complete, "unpriced": len(self.unpriced()),
            "not_modelled": list(NOT_MODELLED),
            "headline": self.headline(), "budget_share": round(self.budget_share, 4), "by_layer": self.by_layer(),
            "lines": [asdict(line) for line in self.lines],
        }, indent=2, sort_keys=True)


# ---- storage model -------------------------------------------------------------------------------


def steady_state_gb(ingest_per_month: float, stored_gb: float, hot: str, transitions: list[tuple[str, int]],
                    expire_day: int | None) -> dict[str, float]:
    """GB in each storage class once ingest and the lifecycle rules have balanced out."""
    rate = ingest_per_month / DAYS_PER_MONTH
    if rate <= 0:
        return {hot: stored_gb}  # ages unknown: counted in the dearest (hot) class
    # Without an expiry the bucket holds what is there now plus this month's ingest (stored_gb is "GB in the
    # bucket now"; with nothing stored, one month of ingest).
    span = float(expire_day) if expire_day is not None else (stored_gb + ingest_per_month) / rate
    starts = [(hot, 0)] + sorted(transitions, key=lambda t: t[1])
    out: dict[str, float] = {}
    for i, (storage_class, start) in enumerate(starts):
        end = starts[i + 1][1] if i + 1 < len(starts) else span
        days = max(0.0, min(end, span) - min(start, span))
        out[storage_class] = out.get(storage_class, 0.0) + rate * days
    return out


# ---- pricing rules -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeGroup:
    """What prices a node group of a managed cluster: its machine, capacity, warm and maximum node counts,
    root disk, and the farm GPU pool it belongs to (None for the system pool)."""

    machine: str
    spot: bool
    warm: int
    most: int
    disk_gb: float
    pool: str | None


class Pricer:
    """Prices the resources of one Plan."""

    def __init__(self, plan: Plan, prices: Catalog) -> None:
        self.plan, self.prices = plan, prices
        self.usage: dict[str, Any] = plan.usage or {}
        self.cloud, self.region = plan.cloud, plan.region

    def fee(self, item: str) -> float:
        return self.prices.fee(self.cloud, self.region, item)

    def key_of(self, name: str) -> str:
        return name.removeprefix(f"{self.plan.prefix}-")

    def find(self, type_token: str, match: Callable[[PlannedResource], bool]) -> PlannedResource | None:
        return next((r for r in self.plan.of_type(type_token) if match(r)), None)

    # -- compute --
    def gpu_pool(self, r: PlannedResource) -> Priced:
        spec = r.inputs["spec"]
        pool = spec["template"]["metadata"]["labels"][POOL_LABEL]
        requirements = {q["key"]: q["values"] for q in spec["template"]["spec"]["requirements"]}
        capacity = requirements["karpenter.sh/capacity-type"]
        types = requirements["node.kubernetes.io/instance-type"]
        prices = {t: self.prices.machine(self.cloud, self.region, t) for t in types
                  if (self.cloud, self.region, t) in self.prices.compute}
        if not prices:
            raise MissingPrice(f"no price for any of {', '.join(types) or 'its instance types'} in {self.cloud} {self.region}")
        on_demand = min(p.on_demand for p in prices.values())
        spots = [p.spot for p in prices.values() if p.spot is not None]
        spot = min(spots) if spots else None
        # The pool's warm nodes (priced on their node group) run part of its hours.
        hours = max(0.0, float(self.usage.get("gpu_node_hours", {}).get(pool, 0.0)) - self.warm_hours(pool))
        gpus = gpu_catalog.instance(self.cloud, types[0])
        max_nodes = int(spec["limits"]["nvidia.com/gpu"]) // (gpus.gpus if gpus else 1)
        node_class = self.find("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", lambda c: c.inputs["metadata"]["name"] == pool)
        disk_gb = int(re.sub(r"\D", "", node_class.inputs["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"])) if node_class else 0
        disk_hour = disk_gb * self.fee("block_storage") / HOURS_PER_MONTH
        notes = [f"{hours:g} node-h"]
        if "spot" in capacity and spot is None:
            notes.append("spot price unknown: on-demand used")
        spot_price = on_demand if spot is None else spot
        if capacity == ["spot"]:
            per_hour, dearest = spot_price, spot_price
        elif capacity == ["spot", "on-demand"]:
            share = float(self.usage.get("spot_share", 0.9))
            per_hour, dearest = share * spot_price + (1 - share) * on_demand, on_demand
            notes.append(f"{share:.0%} on spot")
        else:
            per_hour, dearest = on_demand, on_demand
        cheapest = spot_price if "spot" in capacity else on_demand
        notes.append(f"{capacity[0] if len(capacity) == 1 else '/'.join(capacity)} {min(prices, key=lambda t: prices[t].on_demand)}")
        notes.append(f"ceiling {max_nodes} nodes all month")
        return Priced(monthly=hours * (per_hour + disk_hour), detail=", ".join(notes),
                      floor=hours * (cheapest + disk_hour), without=hours * (on_demand + disk_hour),
                      ceiling=max_nodes * HOURS_PER_MONTH * (dearest + disk_hour))

    def warm_hours(self, pool: str) -> float:
        """Node-hours a month of a GPU pool's warm nodes (an always-on node group below the autoscaler)."""
        group = self.find("aws:eks/nodeGroup:NodeGroup", lambda g: (g.inputs.get("labels") or {}).get(POOL_LABEL) == pool)
        return group.inputs["scalingConfig"]["desiredSize"] * HOURS_PER_MONTH if group else 0.0

    def root_disk_gb(self, group: PlannedResource) -> float:
        """The root volume of a node group's launch template (named like the group)."""
        template = self.find("aws:ec2/launchTemplate:LaunchTemplate", lambda t: t.name == group.name)
        devices = template.inputs.get("blockDeviceMappings", []) if template else []
        return float(devices[0]["ebs"]["volumeSize"]) if devices else 0.0

    def node_group(self, r: PlannedResource) -> Priced:
        """A managed node group at its fixed size, always on: the system pool, or a GPU pool's warm nodes."""
        nodes = r.inputs["scalingConfig"]["desiredSize"]
        instance_type = r.inputs["instanceTypes"][0]
        price = self.prices.machine(self.cloud, self.region, instance_type)
        spot = r.inputs.get("capacityType") == "SPOT"
        per_hour = (price.spot or price.on_demand) if spot else price.on_demand
        disk = nodes * self.root_disk_gb(r) * self.fee("block_storage")
        cost = nodes * HOURS_PER_MONTH * per_hour + disk
        return Priced(monthly=cost, detail=f"{nodes} x {instance_type} {'spot' if spot else 'on-demand'}, always on, + {disk:.2f} root disks",
                      without=nodes * HOURS_PER_MONTH * price.on_demand + disk)

    def dev_box(self, r: PlannedResource) -> Priced:
        spot = (r.inputs.get("instanceMarketOptions") or {}).get("marketType") == "spot"
        return self.box(r, r.inputs["instanceType"], spot, float(r.inputs.get("rootBlockDevice", {}).get("volumeSize", 0)))

    def box(self, r: PlannedResource, machine: str, spot: bool, disk_gb: float) -> Priced:
        """A dev box: its usage hours (the idle stop keeps them near the profile's), its disk all month."""
        key = self.key_of(r.name)
        hours = float(self.usage.get("barn_hours", {}).get(key, DEFAULT_BARN_HOURS))
        price = self.prices.machine(self.cloud, self.region, machine)
        per_hour = (price.spot or price.on_demand) if spot else price.on_demand
        disk = disk_gb * self.fee("block_storage")
        return Priced(monthly=hours * per_hour + disk, without=HOURS_PER_MONTH * price.on_demand + disk,
                      ceiling=HOURS_PER_MONTH * per_hour + disk,
                      detail=f"{hours:g} h of {machine}{' spot' if spot else ''} + {disk:.2f} disk; stops when idle")

    def cluster_group(self, r: PlannedResource, group: NodeGroup) -> Priced:
        """A node group of a GKE or AKS cluster. A system group (no GPUs) runs its minimum all month. A GPU group
        runs its share of the farm pool's node-hours (a spot-with-fallback pool's spot group `spot_share` of them,
        its on-demand one the rest), at least its warm nodes all month; its ceiling is max nodes all month (a
        fallback pair's once, on its on-demand group: Kueue admits at most the pool's GPU limit)."""
        price = self.prices.machine(self.cloud, self.region, group.machine)
        disk_hour = group.disk_gb * self.fee("block_storage") / HOURS_PER_MONTH
        spot_price = price.spot if price.spot is not None else price.on_demand
        per_hour = spot_price if group.spot else price.on_demand
        warm, most = group.warm, group.most
        if group.pool is None:
            hours = warm * HOURS_PER_MONTH
            return Priced(monthly=hours * (per_hour + disk_hour), without=hours * (price.on_demand + disk_hour),
                          ceiling=most * HOURS_PER_MONTH * (per_hour + disk_hour),
                          detail=f"{warm} x {group.machine} on-demand always on (up to {most})")
        pair = sum(1 for other in self.plan.of_type(r.type) if self.group_of(other).pool == group.pool) > 1
        total = float(self.usage.get("gpu_node_hours", {}).get(group.pool, 0.0))
        share = float(self.usage.get("spot_share", 0.9))
        mine = (total * (share if group.spot else 1 - share)) if pair else total
        hours = max(mine, warm * HOURS_PER_MONTH)
        notes = [f"{hours:g} node-h of {group.machine} {'spot' if group.spot else 'on-demand'}"]
        if group.spot and price.spot is None:
            notes.append("spot price unknown: on-demand used")
        if warm:
            notes.append(f"{warm} warm")
        # Floor: a fallback pair's hours all on spot (on its spot group); its on-demand one keeps only warm nodes.
        if pair and group.spot:
            floor = max(total, hours) * (spot_price + disk_hour)
        elif pair:
            floor = warm * HOURS_PER_MONTH * (price.on_demand + disk_hour)
        else:
            floor = hours * (per_hour + disk_hour)
        # Ceiling: max nodes all month; a pair's once, on its on-demand group (Kueue admits at most the GPU limit).
        ceiling = 0.0 if (pair and group.spot) else most * HOURS_PER_MONTH * (per_hour + disk_hour)
        notes.append("ceiling on its on-demand pair" if (pair and group.spot) else f"ceiling {most} nodes all month")
        return Priced(monthly=hours * (per_hour + disk_hour), detail=", ".join(notes), floor=floor,
                      without=hours * (price.on_demand + disk_hour), ceiling=ceiling)

    def group_of(self, r: PlannedResource) -> NodeGroup:
        """The priced facts of a GKE node pool or AKS agent pool, read from its inputs."""
        if r.type == "gcp:container/nodePool:NodePool":
            config = r.inputs.get("nodeConfig") or {}
            scaling = r.inputs.get("autoscaling") or {}
            pool = (config.get("labels") or {}).get(POOL_LABEL) if config.get("guestAccelerators") else None
            return NodeGroup(config["machineType"], bool(config.get("spot")), int(scaling.get("totalMinNodeCount", 0)),
                             int(scaling.get("totalMaxNodeCount", 0)), float(config.get("diskSizeGb", 100)), pool)
        pool = (r.inputs.get("nodeLabels") or {}).get(POOL_LABEL)
        return NodeGroup(r.inputs["vmSize"], r.inputs.get("scaleSetPriority") == "Spot", int(r.inputs.get("minCount", 0)),
                         int(r.inputs.get("maxCount", 0)), float(r.inputs.get("osDiskSizeGB", 128)),
                         pool if pool != "system" else None)

    def pool_of_cluster(self, r: PlannedResource) -> Priced:
        """A GKE node pool or an AKS agent pool."""
        return self.cluster_group(r, self.group_of(r))

    def aks_cluster(self, r: PlannedResource) -> Priced:
        """AKS: the Standard tier's hourly fee (Free tier: none), plus the inline system pool at its minimum."""
        standard = (r.inputs.get("sku") or {}).get("tier") == "Standard"
        fee = HOURS_PER_MONTH * self.fee("kubernetes_control_plane") if standard else 0.0
        (system,) = r.inputs["agentPoolProfiles"][:1]
        group = NodeGroup(system["vmSize"], False, int(system.get("minCount", 1)), int(system.get("maxCount", 1)),
                          float(system.get("osDiskSizeGB", 128)), None)
        nodes = self.cluster_group(r, group)
        for attr in ("monthly", "without", "ceiling"):
            setattr(nodes, attr, (getattr(nodes, attr) or 0.0) + fee)
        nodes.detail = f"{'Standard tier ' + format(fee, '.2f') if standard else 'Free tier'} + system pool: {nodes.detail}"
        return nodes

    def gce_dev_box(self, r: PlannedResource) -> Priced:
        spot = (r.inputs.get("scheduling") or {}).get("provisioningModel") == "SPOT"
        disk = float(((r.inputs.get("bootDisk") or {}).get("initializeParams") or {}).get("size", 0))
        return self.box(r, r.inputs["machineType"], spot, disk)

    def azure_dev_box(self, r: PlannedResource) -> Priced:
        disk = float(((r.inputs.get("storageProfile") or {}).get("osDisk") or {}).get("diskSizeGB", 0))
        return self.box(r, r.inputs["hardwareProfile"]["vmSize"], r.inputs.get("priority") == "Spot", disk)

    def gke_cluster(self, r: PlannedResource) -> Priced:
        """GKE's cluster management fee; a zonal cluster's is covered by the free tier credit (one zonal or
        Autopilot cluster per billing account: a second farm on the same billing account pays it)."""
        fee = HOURS_PER_MONTH * self.fee("kubernetes_control_plane")
        zonal = bool(re.fullmatch(r"[a-z]+-[a-z]+\d+-[a-z]", str(r.inputs.get("location", ""))))
        if not zonal:
            return Priced(monthly=fee, detail=f"regional: {HOURS_PER_MONTH} h of cluster management fee")
        credit = min(fee, self.fee("kubernetes_free_tier_credit"))
        return Priced(monthly=fee - credit, without=fee, ceiling=fee,
                      detail=f"zonal: {fee:.2f} fee less the {credit:.2f} free tier credit (one per billing account)")

    def control_plane(self, r: PlannedResource) -> Priced:
        extended = (r.inputs.get("upgradePolicy") or {}).get("supportType") == "EXTENDED"
        cost = HOURS_PER_MONTH * self.fee("kubernetes_control_plane_extended" if extended else "kubernetes_control_plane")
        return Priced(monthly=cost, detail="extended support" if extended else "standard support")

    # -- network and keys --
    def nat_gateway(self, r: PlannedResource) -> Priced:
        share_gb = float(self.usage.get("nat_gb", 0.0)) / len(self.plan.of_type(r.type))
        cost = HOURS_PER_MONTH * self.fee("nat_gateway") + share_gb * self.fee("nat_data")
        return Priced(monthly=cost, floor=HOURS_PER_MONTH * self.fee("nat_gateway"), detail=f"{HOURS_PER_MONTH} h + {share_gb:g} GB")

    def cloud_nat(self, r: PlannedResource) -> Priced:
        # Every VM behind the NAT bills VM-hours: GPU nodes, the system nodes that are always up, dev boxes.
        system = sum(int((p.inputs.get("autoscaling") or {}).get("totalMinNodeCount", 0)) * HOURS_PER_MONTH
                     for p in self.plan.of_type("gcp:container/nodePool:NodePool") if not (p.inputs.get("nodeConfig") or {}).get("guestAccelerators"))
        boxes = sum(float(self.usage.get("barn_hours", {}).get(self.key_of(b.name), DEFAULT_BARN_HOURS))
                    for b in self.plan.of_type("gcp:compute/instance:Instance"))
        vm_hours = sum(float(h) for h in self.usage.get("gpu_node_hours", {}).values()) + system + boxes
        data = float(self.usage.get("nat_gb", 0.0)) * self.fee("nat_data")
        # Cloud NAT also bills each NAT IP address by the hour; auto-allocation starts with one.
        ip = HOURS_PER_MONTH * self.fee("nat_ip")
        cost = vm_hours * self.fee("nat_vm") + data + ip
        return Priced(monthly=cost, floor=ip, detail=f"{vm_hours:g} VM-h + {self.usage.get('nat_gb', 0):g} GB + 1 NAT IP")

    def hourly(self, item: str) -> Callable[[PlannedResource], Priced]:
        def price(r: PlannedResource) -> Priced:
            return Priced(monthly=HOURS_PER_MONTH * self.fee(item), detail=f"{HOURS_PER_MONTH} h of {item.replace('_', ' ')}")
        return price

    def monthly(self, item: str) -> Callable[[PlannedResource], Priced]:
        def price(r: PlannedResource) -> Priced:
            return Priced(monthly=self.fee(item), detail=item.replace("_", " "))
        return price

    def log_group(self, r: PlannedResource) -> Priced:
        """A log group fed by the usage profile's GB a month: ingestion, and storage of what its retention keeps."""
        kind = "flow_logs" if r.name.endswith("-flow-logs") else "control_plane"
        gb = (self.usage.get("log_ingest_gb") or {}).get(kind)
        if gb is None:
            raise Unmodelled(f"log ingestion and storage per GB: set usage.log_ingest_gb.{kind} to price it")
        days = r.inputs.get("retentionInDays") or 3650
        kept = float(gb) / DAYS_PER_MONTH * days
        cost = float(gb) * self.fee("logs_ingest") + kept * self.fee("logs_storage")
        return Priced(monthly=cost, detail=f"{float(gb):g} GB in, {kept:,.0f} GB kept ({days} days)")

    def gcp_log_bucket(self, r: PlannedResource) -> Priced:
        """The project's _Default log bucket: flow logs and GKE logs ingested (after the free allowance per
        project) and kept beyond the 30 days Cloud Logging keeps for free."""
        use = self.usage.get("log_ingest_gb") or {}
        if not use:
            raise Unmodelled("log ingestion and retention per GB: set usage.log_ingest_gb.flow_logs and .control_plane to price it")
        gb = sum(float(v) for v in use.values())
        days = float(r.inputs.get("retentionDays") or 30)
        kept = gb / DAYS_PER_MONTH * max(0.0, days - 30)
        cost = max(0.0, gb - self.fee("logs_free_gb")) * self.fee("logs_ingest") + kept * self.fee("logs_storage")
        return Priced(monthly=cost, detail=f"{gb:g} GB in ({self.fee('logs_free_gb'):g} free), {kept:,.0f} GB kept past 30 days ({days:g} days)")

    # -- storage --
    def storage(self, key: str, hot: str, transitions: list[tuple[str, int]], expire: int | None) -> Priced:
        use = self.usage.get("storage", {}).get(key, {})
        stored, ingest = float(use.get("stored_gb", 0)), float(use.get("ingest_gb_per_month", 0))

        def cost_of(gb: dict[str, float]) -> float:
            return sum(v * self.prices.storage_class(self.cloud, self.region, c) for c, v in gb.items())

        gb = steady_state_gb(ingest, stored, hot, transitions, expire)
        cost = cost_of(gb)
        total = sum(gb.values())
        # Nothing expires: the bucket grows by its ingest every month, without bound.
        gb12 = gb if expire is not None or ingest <= 0 else steady_state_gb(ingest, stored + 11 * ingest, hot, transitions, None)
        classes = [hot] + [c for c, _ in transitions]
        cheapest = min(self.prices.storage_class(self.cloud, self.region, c) for c in classes)
        hot_price = self.prices.storage_class(self.cloud, self.region, hot)
        detail = ", ".join(f"{v:,.0f} GB {c}" for c, v in gb.items() if v > 0) or "no usage given"
        if expire is None and ingest > 0:
            detail += f"; nothing expires: grows {ingest:,.0f} GB a month without bound"
        # Without savings: the same GB in the hot class, and nothing ever expires (11 more months of ingest by month 12).
        return Priced(monthly=cost, detail=detail, floor=total * cheapest, month12=cost_of(gb12),
                      without=total * hot_price, without12=(total + 11 * ingest) * hot_price)

    def s3_bucket(self, r: PlannedResource) -> Priced:
        lifecycle = self.find("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                              lambda c: c.inputs.get("bucket") == r.inputs.get("bucket"))
        transitions: list[tuple[str, int]] = []
        expire = None
        for rule in (lifecycle.inputs["rules"] if lifecycle else []):
            if rule.get("status") != "Enabled" or (rule.get("filter") or {}).get("prefix"):
                continue
            transitions += [(t["storageClass"], t["days"]) for t in rule.get("transitions", [])]
            expire = (rule.get("expiration") or {}).get("days", expire)
        return self.storage(self.key_of(r.name), TIERS["aws"]["hot"].name, transitions, expire)

    def gcs_bucket(self, r: PlannedResource) -> Priced:
        transitions, expire = [], None
        for rule in r.inputs.get("lifecycleRules", []):
            action, condition = rule["action"], rule["condition"]
            if action["type"] == "SetStorageClass":
                transitions.append((action["storageClass"], condition["age"]))
            elif action["type"] == "Delete" and condition.get("withState") == "LIVE":
                expire = condition["age"]
        return self.storage(self.key_of(r.name), r.inputs.get("storageClass", TIERS["gcp"]["hot"].name), transitions, expire)

    def azure_account(self, r: PlannedResource) -> Priced:
        account = r.inputs["accountName"]
        # Zone-redundant accounts bill at the ZRS rates (storage.csv classes "<tier>_ZRS").
        redundancy = (r.inputs.get("sku") or {}).get("name", "Standard_LRS").split("_")[-1]
        suffix = "" if redundancy == "LRS" else f"_{redundancy}"
        policy = self.find("azure-native:storage:ManagementPolicy", lambda p: p.inputs.get("accountName") == account)
        transitions, expire = [], None
        if policy:
            base = policy.inputs["policy"]["rules"][0]["definition"]["actions"].get("baseBlob", {})
            for action, tier in (("tierToCool", "cool"), ("tierToCold", "cold")):
                if action in base:
                    transitions.append((TIERS["azure"][tier].name + suffix, base[action]["daysAfterModificationGreaterThan"]))
            expire = base.get("delete", {}).get("daysAfterModificationGreaterThan")
        priced = self.storage(self.key_of(r.name), TIERS["azure"]["hot"].name + suffix, transitions, expire)
        # The account is reached through a private endpoint: every GB written crosses Private Link, which
        # bills data processed (inbound) per GB.
        ingest = float(self.usage.get("storage", {}).get(self.key_of(r.name), {}).get("ingest_gb_per_month", 0))
        link = ingest * self.fee("private_link_data")
        for attr in ("monthly", "floor", "without", "month12", "without12"):
            value = getattr(priced, attr)
            if value is not None:
                setattr(priced, attr, value + link)
        priced.detail += f"; {ingest:,.0f} GB in through Private Link"
        return priced

    def rules(self) -> dict[str, Callable[[PlannedResource], Priced]]:
        return {
            "kubernetes:karpenter.sh/v1:NodePool": self.gpu_pool,
            "aws:eks/nodeGroup:NodeGroup": self.node_group,
            "aws:eks/cluster:Cluster": self.control_plane,
            "aws:cloudwatch/logGroup:LogGroup": self.log_group,
            "aws:ec2/instance:Instance": self.dev_box,
            "aws:ec2/natGateway:NatGateway": self.nat_gateway,
            "aws:ec2/eip:Eip": self.hourly("public_ipv4"),
            "aws:kms/key:Key": self.monthly("kms_key"),
            "aws:cloudwatch/metricAlarm:MetricAlarm": self.monthly("alarm"),
            "aws:s3/bucket:Bucket": self.s3_bucket,
            "gcp:compute/routerNat:RouterNat": self.cloud_nat,
            "gcp:container/cluster:Cluster": self.gke_cluster,
            "gcp:container/nodePool:NodePool": self.pool_of_cluster,
            "azure-native:containerservice:AgentPool": self.pool_of_cluster,
            "azure-native:containerservice:ManagedCluster": self.aks_cluster,
            "azure-native:compute:VirtualMachine": self.azure_dev_box,
            "gcp:compute/instance:Instance": self.gce_dev_box,
            "gcp:logging/projectBucketConfig:ProjectBucketConfig": self.gcp_log_bucket,
            "gcp:kms/cryptoKey:CryptoKey": self.monthly("kms_key"),
            "gcp:storage/bucket:Bucket": self.gcs_bucket,
            "azure-native:network:NatGateway": self.nat_gateway,
            "azure-native:network:PublicIPAddress": self.hourly("public_ipv4"),
            "azure-native:network:PrivateEndpoint": self.hourly("private_endpoint"),
            "azure-native:privatedns:PrivateZone": self.monthly("private_dns_zone"),
            "azure-native:storage:StorageAccount": self.azure_account,
        }


# Resources that do not bill by themselves.
FREE_PREFIXES = ("pulumi:providers:", "kubernetes:", "aws:iam/", "aws:s3/bucket", "gcp:compute/network:", "gcp:serviceaccount/",
                 "azure-native:authorization:", "tls:")
FREE = frozenset({
    "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/routeTable:RouteTable", "aws:ec2/route:Route",
    "aws:ec2/routeTableAssociation:RouteTableAssociation", "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:kms/alias:Alias",
    "aws:eks/addon:Addon", "aws:eks/accessEntry:AccessEntry", "aws:eks/podIdentityAssociation:PodIdentityAssociation",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation", "aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/tag:Tag",
    "aws:ec2/securityGroup:SecurityGroup", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:sns/topicPolicy:TopicPolicy", "aws:sqs/queuePolicy:QueuePolicy", "aws:cloudwatch/eventRule:EventRule",
    "aws:cloudwatch/eventTarget:EventTarget", "aws:costexplorer/anomalyMonitor:AnomalyMonitor",
    "aws:costexplorer/anomalySubscription:AnomalySubscription", "aws:budgets/budget:Budget", "aws:budgets/budgetAction:BudgetAction",
    "gcp:compute/subnetwork:Subnetwork", "gcp:compute/router:Router", "gcp:kms/keyRing:KeyRing", "gcp:projects/service:Service",
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember", "gcp:billing/budget:Budget",
    "gcp:monitoring/notificationChannel:NotificationChannel", "gcp:pubsub/topicIAMMember:TopicIAMMember",
    "gcp:projects/iAMMember:IAMMember", "gcp:storage/bucketIAMMember:BucketIAMMember", "gcp:compute/firewall:Firewall",
    "gcp:compute/instanceIAMMember:InstanceIAMMember", "gcp:compute/resourcePolicy:ResourcePolicy",
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
    "azure-native:consumption:Budget",
    "azure-native:resources:ResourceGroup", "azure-native:network:VirtualNetwork", "azure-native:network:Subnet",
    "azure-native:network:NetworkSecurityGroup", "azure-native:network:PrivateDnsZoneGroup",
    "azure-native:managedidentity:UserAssignedIdentity", "azure-native:managedidentity:FederatedIdentityCredential",
    "azure-native:containerservice:MaintenanceConfiguration", "azure-native:keyvault:Vault", "azure-native:storage:BlobContainer",
    "azure-native:storage:BlobServiceProperties", "azure-native:storage:ManagementPolicy",
    # A NIC without a public address, the VM's sign-in extension, its auto-shutdown schedule, the disk encryption set.
    "azure-native:network:NetworkInterface", "azure-native:compute:VirtualMachineExtension", "azure-native:devtestlab:GlobalSchedule",
    "azure-native:compute:DiskEncryptionSet", "azure-native:monitor:DiagnosticSetting",
})
# Resources that bill per request or GB the usage profile does not model.
USAGE_BASED = {
    "aws:ec2/flowLog:FlowLog": "billed as log ingestion into its log group",
    "aws:sns/topic:Topic": "per request and delivery (first million free)",
    "aws:sns/topicSubscription:TopicSubscription": "per email delivery (first thousand free)",
    "aws:sqs/queue:Queue": "per request (first million free)",
    "aws:scheduler/schedule:Schedule": "per invocation (first 14 million a month free)",
    "azure-native:keyvault:Key": "per key operation",
    "azure-native:privatedns:VirtualNetworkLink": "per DNS query",
    "azure-native:monitor:ActionGroup": "per notification (first 1,000 emails a month free)",
    "azure-native:logic:Workflow": "per action run (the hard stop runs a handful, once)",
    "azure-native:operationalinsights:Workspace": "per GB of audit logs ingested and kept (dev: at most 1 GB a day)",
    "azure-native:monitor:MetricAlert": "per monitored metric (a few cents a month)",
    "gcp:pubsub/topic:Topic": "per message volume (first 10 GB a month free)",
    "gcp:cloudfunctionsv2/function:Function": "per invocation and compute time (first 2 million invocations a month free)",
    "gcp:storage/bucketObject:BucketObject": "stored in its bucket (the hard stop's source: kilobytes)",
}
# Gateway endpoints are free; interface endpoints bill by the hour.
PAID_VARIANTS: dict[str, Callable[[PlannedResource], bool]] = {
    "aws:ec2/vpcEndpoint:VpcEndpoint": lambda r: r.inputs.get("vpcEndpointType") != "Gateway",
}


def classify(r: PlannedResource) -> Status | None:
    if r.type in PAID_VARIANTS and PAID_VARIANTS[r.type](r):
        return None
    if r.type in USAGE_BASED:
        return "usage"
    if r.type in FREE or r.type.startswith(FREE_PREFIXES):
        return "free"
    return None


def fill(line: Line, priced: Priced) -> Line:
    """Copy a rule's figures onto a line, baselines left None taking the estimate's value."""
    line.monthly, line.detail = round(priced.monthly, 2), priced.detail
    for attr, default in (("floor", priced.monthly), ("without", priced.monthly), ("ceiling", priced.monthly),
                          ("month12", priced.monthly)):
        value = getattr(priced, attr)
        setattr(line, attr, round(default if value is None else value, 2))
    line.without12 = round(priced.without12 if priced.without12 is not None else line.without, 2)
    return line


def estimate(plan: Plan, prices: Catalog | None = None) -> Estimate:
    pricer = Pricer(plan, prices or default())
    rules = pricer.rules()
    est = Estimate(stack=plan.stack, cloud=plan.cloud, currency=plan.currency, budget=plan.budget)
    for r in plan.resources:
        if not r.custom:
            continue
        line = Line(urn=r.urn, name=r.name, type=r.type, layer=layer_of(plan, r), status="priced")
        if r.type in rules:
            try:
                fill(line, rules[r.type](r))
            except MissingPrice as exc:
                line.status, line.detail = "unpriced", str(exc)
            except Unmodelled as exc:
                line.status, line.detail = "usage", str(exc)
        else:
            status = classify(r)
            if status is None:
                line.status, line.detail = "unpriced", "no price rule for this resource type"
            else:
                line.status, line.detail = status, USAGE_BASED.get(r.type, "")
        est.lines.append(line)
    egress = float(plan.usage.get("egress_gb", 0.0))
    if egress:
        try:
            line = Line(urn=EGRESS, name="internet egress", type="egress", layer="farm", status="priced")
            est.lines.append(fill(line, Priced(monthly=egress * pricer.fee("egress"), floor=0.0, detail=f"{egress:g} GB")))
        except MissingPrice as exc:
            est.lines.append(Line(urn=EGRESS, name="internet egress", type="egress", layer="farm", status="unpriced",
                                  detail=str(exc)))
    return est
