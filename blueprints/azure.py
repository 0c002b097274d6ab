"""The Azure blueprint: a farm on Azure, composed from the five layers.

azure-native has no provider-level default tags, so the farm's cost tags are passed to each layer.
"""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure_native
from pulumi_azure_native import authorization

from blueprints.config import FarmConfig
from components.barn.azure import AzureBarn
from components.base import FarmComponent, token
from components.breeding_ground.azure import AzureBreedingGround, ClusterEncryption
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
                pods_cidr=str(farm.fence.pods_cidr), tags=tags, prod=farm.prod, encryption=self._encryption(),
                audit_workspace_id=self.fence.log_workspace_id,
                team_troughs={team: self._grants(farm, t.troughs) for team, t in bg.teams.items()}, opts=layer)
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.barns = {
            key: AzureBarn(f"{name}-{key}", spec, region=farm.region, zones=farm.placement_zones,
                           resource_group_name=self.fence.resource_group_name, subnet_id=self.fence.node_subnet_id,
                           disk_encryption_set_id=self.fence.disk_encryption_set_id, stop_role_id=self.fence.stop_role_id,
                           subscription=client.subscription_id, alert_emails=farm.ledger.alert_emails, tags=tags,
                           troughs=self._grants(farm, spec.troughs), opts=layer)
            for key, spec in farm.barns.items()
        }
        pools = ([pulumi.Output.concat(self.breeding_ground.cluster_id, "/agentPools/", pool) for pool in self.breeding_ground.gpu_agent_pools]
                 if self.breeding_ground is not None else [])
        self.ledger = AzureLedger(f"{name}-ledger", farm.ledger, farm=name, resource_group_name=self.fence.resource_group_name,
                                  resource_group_id=self.fence.resource_group_id, stop_role_id=self.fence.stop_role_id, tags=tags,
                                  agent_pools=pools, virtual_machines=[b.vm_id for b in self.barns.values()], opts=layer)
        self.finish({"resource_group": self.fence.resource_group_name})
        pulumi.export("resource_group", self.fence.resource_group_name)
        pulumi.export("storage_accounts", {key: t.account_name for key, t in self.troughs.items()})
        if self.barns:
            pulumi.export("dev_boxes", {key: {"vm_id": b.vm_id, "connect": b.connect_command} for key, b in self.barns.items()})
        bgr = self.breeding_ground
        if bgr is not None:
            pulumi.export("cluster_name", bgr.cluster_name)
            pulumi.export("cluster_endpoint", bgr.endpoint)
            pulumi.export("kubeconfig_command", pulumi.Output.concat("az aks get-credentials --resource-group ",
                                                                     self.fence.resource_group_name, " --name ", bgr.cluster_name,
                                                                     " && kubelogin convert-kubeconfig -l azurecli"))

    def _encryption(self) -> ClusterEncryption | None:
        """The fence's cluster keys; none with a key or network of the stack's own (then the cluster uses platform keys)."""
        f = self.fence
        if f.etcd_key_id is None or f.etcd_vault_id is None or f.disk_encryption_set_id is None:
            return None
        return ClusterEncryption(etcd_key_id=f.etcd_key_id, etcd_vault_id=f.etcd_vault_id, disk_encryption_set_id=f.disk_encryption_set_id)

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
