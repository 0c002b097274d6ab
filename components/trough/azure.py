"""AzureTrough: one storage account + container, no public or shared-key access, TLS 1.2, versioning,
customer-managed key, a private endpoint, and a lifecycle management policy by purpose.

Azure has no rule for incomplete uploads: uncommitted blocks are discarded by the service after 7 days.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import network, storage

from components.base import FarmComponent, token
from components.fence.azure import AzureFence
from components.trough.spec import Lifecycle, TroughSpec


def lifecycle_policy(lc: Lifecycle, versioning: bool) -> storage.ManagementPolicySchemaArgsDict:
    """An Azure management policy for a Lifecycle spec (typed, so pyright checks every nested key).

    Azure names its tier actions after the tiers of TIERS["azure"]: tier_to_cool -> Cool, tier_to_cold -> Cold.
    """
    base: storage.ManagementPolicyBaseBlobArgsDict = {}
    if lc.cool_after_days is not None:
        base["tier_to_cool"] = {"days_after_modification_greater_than": lc.cool_after_days}
    if lc.cold_after_days is not None:
        base["tier_to_cold"] = {"days_after_modification_greater_than": lc.cold_after_days}
    if lc.expire_after_days is not None:
        base["delete"] = {"days_after_modification_greater_than": lc.expire_after_days}
    actions: storage.ManagementPolicyActionArgsDict = {"base_blob": base}
    if versioning and lc.noncurrent_expire_after_days is not None:
        actions["version"] = {"delete": {"days_after_creation_greater_than": lc.noncurrent_expire_after_days}}
    return {"rules": [{"name": "dragonfarm-lifecycle", "enabled": True, "type": "Lifecycle",
                       "definition": {"filters": {"blob_types": ["blockBlob"]}, "actions": actions}}]}


class AzureTrough(FarmComponent):
    TOKEN = token("AzureTrough")

    account_name: pulumi.Output[str]

    def __init__(self, name: str, spec: TroughSpec, *, account_name: str, fence: AzureFence, protect_data: bool = False,
                 zone_redundant: bool = False, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts, protect_data)
        if spec.existing_bucket is not None:
            self.account_name = pulumi.Output.from_input(spec.existing_bucket)
            self.container_id = None
            self.finish({"account_name": self.account_name})
            return
        rg = fence.resource_group_name
        encryption: storage.EncryptionArgsDict = {
            "key_source": "Microsoft.Keyvault", "require_infrastructure_encryption": True,
            "services": {"blob": {"enabled": True, "key_type": "Account"}},
            "encryption_identity": {"encryption_user_assigned_identity": fence.storage_identity_id},
        }
        if fence.key_name is not None and fence.vault_uri is not None:
            encryption["key_vault_properties"] = {"key_name": fence.key_name, "key_vault_uri": fence.vault_uri}
        else:
            encryption["key_vault_properties"] = {"key_vault_uri": fence.key_id}
        private = fence.endpoint_subnet_id is not None
        account = storage.StorageAccount(
            name, account_name=account_name, resource_group_name=rg, location=fence.location, kind="StorageV2",
            # Locally redundant is the cheapest; prod stacks ask for zone redundancy.
            sku={"name": "Standard_ZRS" if zone_redundant else "Standard_LRS"}, access_tier=storage.AccessTier.HOT,
            allow_blob_public_access=False, allow_shared_key_access=False, minimum_tls_version="TLS1_2",
            enable_https_traffic_only=True, public_network_access="Disabled" if private else "Enabled",
            network_rule_set={"default_action": storage.DefaultAction.DENY, "bypass": storage.Bypass.AZURE_SERVICES},
            identity={"type": "UserAssigned", "user_assigned_identities": [fence.storage_identity_id]},
            encryption=encryption, tags={**fence.tags, "dragonfarm-purpose": spec.purpose.value}, opts=self.stateful())
        self.account_name = account.name
        storage.BlobServiceProperties(f"{name}-blob", account_name=account.name, resource_group_name=rg, blob_services_name="default",
                                      is_versioning_enabled=spec.versioning,
                                      delete_retention_policy={"enabled": True, "days": 7},
                                      container_delete_retention_policy={"enabled": True, "days": 7}, opts=self.child())
        container = storage.BlobContainer(f"{name}-data", container_name="data", account_name=account.name, resource_group_name=rg,
                                          public_access=storage.PublicAccess.NONE, opts=self.stateful())
        self.container_id: pulumi.Output[str] | None = container.id
        storage.ManagementPolicy(f"{name}-lifecycle", management_policy_name="default", account_name=account.name,
                                 resource_group_name=rg, policy=lifecycle_policy(spec.effective_lifecycle(), spec.versioning),
                                 opts=self.child())
        if private and fence.blob_dns_zone_id is not None:
            endpoint = network.PrivateEndpoint(
                f"{name}-blob-pe", private_endpoint_name=f"{name}-blob", resource_group_name=rg, location=fence.location,
                subnet={"id": fence.endpoint_subnet_id},
                private_link_service_connections=[{"name": "blob", "private_link_service_id": account.id, "group_ids": ["blob"]}],
                tags=fence.tags, opts=self.child())
            network.PrivateDnsZoneGroup(f"{name}-blob-dns", private_dns_zone_group_name="default", private_endpoint_name=endpoint.name,
                                        resource_group_name=rg,
                                        private_dns_zone_configs=[{"name": "blob", "private_dns_zone_id": fence.blob_dns_zone_id}],
                                        opts=self.child())
        self.finish({"account_name": self.account_name})
