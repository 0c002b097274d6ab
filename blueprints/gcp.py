"""The GCP blueprint: a farm on GCP, composed from the five layers.

An explicit provider carries project, region and the farm's cost labels as default labels.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from blueprints.config import FarmConfig
from components.base import FarmComponent, token
from components.barn.gcp import GcpBarn
from components.breeding_ground.gcp import GcpBreedingGround
from components.fence.gcp import GcpFence
from components.ledger.gcp import GcpLedger
from components.ledger.spec import cost_tags
from components.trough.gcp import GcpTrough
from components.trough.spec import Access, bucket_name, trough_access


class GcpFarm(FarmComponent):
    TOKEN = token("GcpFarm")

    def __init__(self, farm: FarmConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(farm.prefix, opts)
        assert farm.project is not None  # guaranteed by FarmConfig.problems()
        labels = cost_tags(farm.prefix, farm.environment, farm.tags)
        provider = gcp.Provider("gcp", project=farm.project, region=farm.region, default_labels=labels, opts=self.child())
        # The Budgets API called with user credentials needs a quota project: only the budget goes through a
        # provider that bills its calls to the farm's project (user_project_override + billing_project send that
        # header on every call, which would need each API on in the project before anything runs).
        billing_provider = gcp.Provider("gcp-billing", project=farm.project, region=farm.region, default_labels=labels,
                                        user_project_override=True, billing_project=farm.project, opts=self.child())
        layer = pulumi.ResourceOptions(parent=self, providers=[provider])
        name = farm.prefix
        self.fence = GcpFence(f"{name}-fence", farm.fence, project=farm.project, region=farm.region,
                              environment=farm.environment, protect_data=farm.prod,
                              vm_schedules=any(b.nightly_stop for b in farm.barns.values()), opts=layer)
        # Every other layer waits for the APIs the fence enables.
        layer = pulumi.ResourceOptions.merge(layer, pulumi.ResourceOptions(depends_on=self.fence.services))
        self.troughs = {
            key: GcpTrough(f"{name}-{key}", spec, bucket_name=bucket_name("gcp", farm.prefix, key, spec.name), project=farm.project,
                           region=farm.region, key_id=self.fence.key_id, protect_data=farm.prod, opts=layer)
            for key, spec in farm.troughs.items()
        }
        zones = farm.placement_zones
        self.breeding_ground = None
        if farm.breeding_ground is not None:
            bg = farm.breeding_ground
            self.breeding_ground = GcpBreedingGround(
                f"{name}-cluster", bg, project=farm.project, region=farm.region, zones=zones, zonal=not farm.prod,
                network_id=self.fence.network_id, subnet_id=self.fence.subnet_id, pods_range=self.fence.pods_range,
                services_range=self.fence.services_range, key_id=self.fence.key_id, labels=labels, protect=farm.prod,
                team_troughs={team: self._grants(farm, t.troughs) for team, t in bg.teams.items()}, opts=layer)
        # Dev boxes with a nightly schedule also wait for the Compute Engine agent's grant (412 otherwise).
        barn_layer = pulumi.ResourceOptions.merge(layer, pulumi.ResourceOptions(depends_on=self.fence.vm_schedule_grants))
        self.barns = {
            key: GcpBarn(f"{name}-{key}", spec, project=farm.project, region=farm.region, zones=zones, network_id=self.fence.network_id,
                         subnet_id=self.fence.subnet_id, key_id=self.fence.key_id, labels=labels, troughs=self._grants(farm, spec.troughs),
                         opts=barn_layer)
            for key, spec in farm.barns.items()
        }
        bgr = self.breeding_ground
        pools = [pulumi.Output.concat(bgr.cluster_id, "/nodePools/", pool) for pool in bgr.gpu_node_pools] if bgr else []
        self.ledger = GcpLedger(f"{name}-ledger", farm.ledger, farm=name, project=farm.project, region=farm.region,
                                billing_provider=billing_provider, node_pools=pools,
                                instances=[(b.zone, b.instance_name) for b in self.barns.values()],
                                opts=pulumi.ResourceOptions.merge(layer, pulumi.ResourceOptions(depends_on=list(self.barns.values()))))
        self.finish({"network_id": self.fence.network_id})
        self._exports(farm)

    def _grants(self, farm: FarmConfig, explicit: dict[str, Access] | None) -> dict[str, tuple[pulumi.Input[str], str]]:
        """Trough key -> (bucket name, access) for each trough a workload may use."""
        return {key: (self.troughs[key].bucket_name, access.value) for key, access in trough_access(explicit, farm.troughs).items()}

    def _exports(self, farm: FarmConfig) -> None:
        """What a user needs next: where things are and the commands to reach them."""
        pulumi.export("network_id", self.fence.network_id)
        pulumi.export("buckets", {key: t.bucket_name for key, t in self.troughs.items()})
        pulumi.export("alerts_topic", self.ledger.topic_id)
        bg = self.breeding_ground
        if bg is not None:
            pulumi.export("cluster_name", bg.cluster_name)
            pulumi.export("cluster_endpoint", bg.endpoint)
            pulumi.export("kubeconfig", bg.kubeconfig)
            pulumi.export("kubeconfig_command", pulumi.Output.concat("gcloud container clusters get-credentials ", bg.cluster_name,
                                                                     " --location ", bg.location, " --project ", farm.project or ""))
        pulumi.export("dev_boxes", {key: {"instance_id": b.instance_id, "connect": b.connect_command} for key, b in self.barns.items()})


def build(farm: FarmConfig) -> GcpFarm:
    return GcpFarm(farm)
