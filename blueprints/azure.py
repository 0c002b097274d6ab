"""The Azure blueprint: a farm on Azure, composed from the five layers.

azure-native has no provider-level default tags, so the farm's cost tags are passed to each layer.
"""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure_native

from blueprints.config import FarmConfig
from components.base import FarmComponent, token
from components.breeding_ground.azure import AzureBreedingGround
from components.fence.azure import AzureFence
from components.ledger.azure import AzureLedger
from components.ledger.spec import cost_tags
from components.trough.azure import AzureTrough
from components.trough.spec import Access, bucket_name, trough_access


class AzureFarm(FarmComponent):
    TOKEN = token("AzureFarm")

    def __init__(self, farm: FarmConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(farm.prefix, opts)
        tags = cost_tags(farm.prefix, farm.environment, farm.tags)
        provider = azure_native.Provider("azure-native", location=farm.region, opts=self.child())
        layer = pulumi.ResourceOptions(parent=self, providers=[provider])
        name = farm.prefix
        self.fence = AzureFence(f"{name}-fence", farm.fence, region=farm.region, environment=farm.environment, tags=tags,
                                protect_data=farm.prod, opts=layer)
        self.troughs = {
            key: AzureTrough(f"{name}-{key}", spec, account_name=bucket_name("azure", farm.prefix, key, spec.name),
                             fence=self.fence, protect_data=farm.prod, zone_redundant=farm.prod, opts=layer)
            for key, spec in farm.troughs.items()
        }
        self.breeding_ground = None
        if farm.breeding_ground is not None:
            bg = farm.breeding_ground
            self.breeding_ground = AzureBreedingGround(
                f"{name}-cluster", bg, region=farm.region, zones=farm.zones, resource_group_name=self.fence.resource_group_name,
                subnet_id=self.fence.node_subnet_id, vnet_id=self.fence.vnet_id, egress_ip=self.fence.nat_ip,
                services_cidr=str(farm.fence.services_cidr),
                pods_cidr=str(farm.fence.pods_cidr), tags=tags, prod=farm.prod,
                team_troughs={team: self._grants(farm, t.troughs) for team, t in bg.teams.items()}, opts=layer)
        self.ledger = AzureLedger(f"{name}-ledger", farm.ledger, farm=name, opts=layer)
        self.finish({"resource_group": self.fence.resource_group_name})
        pulumi.export("resource_group", self.fence.resource_group_name)
        pulumi.export("storage_accounts", {key: t.account_name for key, t in self.troughs.items()})
        bgr = self.breeding_ground
        if bgr is not None:
            pulumi.export("cluster_name", bgr.cluster_name)
            pulumi.export("cluster_endpoint", bgr.endpoint)
            pulumi.export("kubeconfig_command", pulumi.Output.concat("az aks get-credentials --resource-group ",
                                                                     self.fence.resource_group_name, " --name ", bgr.cluster_name,
                                                                     " && kubelogin convert-kubeconfig -l azurecli"))

    def _grants(self, farm: FarmConfig, explicit: dict[str, Access] | None) -> dict[str, tuple[pulumi.Input[str], str]]:
        """Trough key -> (blob container id, access) for each trough a workload may use (troughs adopted by name only
        have no container id here: not granted)."""
        out: dict[str, tuple[pulumi.Input[str], str]] = {}
        for key, access in trough_access(explicit, farm.troughs).items():
            container = self.troughs[key].container_id
            if container is not None:
                out[key] = (container, access.value)
        return out


def build(farm: FarmConfig) -> AzureFarm:
    return AzureFarm(farm)
