"""AzureFence: resource group, VNet with node and private-endpoint subnets, NAT gateway, NSGs,
a Key Vault key for customer-managed encryption, and the identity storage accounts use to reach it.

Azure subnets attach to one NAT gateway, so `per-zone` NAT gives the same single gateway as
`single`. The vault uses RBAC, purge protection and a deny-by-default firewall (trusted Azure
services bypass it, which storage encryption needs).
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import authorization, compute, keyvault, managedidentity, network, operationalinsights, privatedns, resources

from components.azure_rbac import assignment_name, role_id
from components.base import FarmComponent, token
from components.fence.spec import FenceSpec, NatMode, key_vault_name, subnet_plan

# Writing an agent pool back also links its subnet and disk encryption set: AKS checks the caller may join the subnet
# and read the set (AKS "Access and identity options": permissions of the identity operating the cluster).
STOP_SPEND_ACTIONS = ["Microsoft.Compute/virtualMachines/read", "Microsoft.Compute/virtualMachines/deallocate/action",
                      "Microsoft.ContainerService/managedClusters/read", "Microsoft.ContainerService/managedClusters/agentPools/read",
                      "Microsoft.ContainerService/managedClusters/agentPools/write", "Microsoft.Network/virtualNetworks/subnets/read",
                      "Microsoft.Network/virtualNetworks/subnets/join/action", "Microsoft.Compute/diskEncryptionSets/read"]
DEV_LOG_CAP_GB = 1.0
BLOB_DNS_ZONE = "privatelink.blob.core.windows.net"


def deny_internet_inbound() -> list[network.SecurityRuleArgsDict]:
    return [{"name": "deny-internet-inbound", "priority": 4000, "direction": "Inbound", "access": "Deny", "protocol": "*",
             "source_address_prefix": "Internet", "source_port_range": "*", "destination_address_prefix": "*",
             "destination_port_range": "*"}]


class AzureFence(FarmComponent):
    TOKEN = token("AzureFence")

    resource_group_name: pulumi.Output[str]
    resource_group_id: pulumi.Output[str]
    vnet_id: pulumi.Output[str]
    node_subnet_id: pulumi.Output[str]
    endpoint_subnet_id: pulumi.Output[str] | None
    blob_dns_zone_id: pulumi.Output[str] | None
    vault_uri: pulumi.Output[str] | None
    key_name: pulumi.Output[str] | None
    key_id: pulumi.Output[str]
    storage_identity_id: pulumi.Output[str]
    nat_ip: pulumi.Output[str] | None
    """The NAT gateway's public address (what the nodes' outbound traffic comes from), None without one."""
    disk_encryption_set_id: pulumi.Output[str] | None
    """Managed disks (node OS disks, dev boxes) encrypted with the farm key; ready once its identity may use the key.
    None with `existing_key_id` (bring your own disk encryption set with it)."""
    etcd_key_id: pulumi.Output[str] | None
    """A versioned key id for AKS's KMS etcd encryption (encrypt/decrypt, no expiry), None with `existing_key_id`."""
    etcd_vault_id: pulumi.Output[str] | None
    """The vault holding it (KMS public mode: reachable from any network, usable by the cluster identity only)."""
    vault_id: pulumi.Output[str] | None
    log_workspace_id: pulumi.Output[str]
    """Where control-plane logs go (AKS audit), kept `log_retention_days`."""
    stop_role_id: pulumi.Output[str]
    """A custom role for what a dev box's idle watcher and the budget hard stop do: deallocate VMs and write agent pools
    (which could also scale them up: the hard stop's workflow only scales down), assignable in the farm's resource group."""

    def __init__(self, name: str, spec: FenceSpec, *, region: str, environment: str, tags: dict[str, str],
                 protect_data: bool = False, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts, protect_data)
        group = resources.ResourceGroup(f"{name}-rg", resource_group_name=f"{name}-rg", location=region, tags=tags,
                                        opts=self.child())
        self.resource_group_name = group.name
        self.resource_group_id = group.id
        self.location = region
        self.tags = tags
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        identity = managedidentity.UserAssignedIdentity(f"{name}-storage", resource_name_=f"{name}-storage",
                                                        resource_group_name=group.name, location=region, tags=tags,
                                                        opts=self.child())
        self.storage_identity_id = identity.id
        self.stop_role_id = self._stop_role(name, group)
        # Log Analytics bills per GB ingested: a dev farm's ingestion stops at 1 GB a day (the cap resets daily; Azure
        # Monitor Logs "Set daily cap"), a prod farm keeps every audit record.
        workspace = operationalinsights.Workspace(
            f"{name}-logs", workspace_name=f"{name}-logs", resource_group_name=group.name, location=region,
            sku={"name": operationalinsights.WorkspaceSkuNameEnum.PER_GB2018}, retention_in_days=spec.log_retention_days,
            workspace_capping=None if environment == "prod" else {"daily_quota_gb": DEV_LOG_CAP_GB}, tags=tags, opts=self.child())
        self.log_workspace_id = workspace.id
        self._key(name, spec, region, client, identity, prod=environment == "prod")
        self.endpoint_subnet_id = None
        self.blob_dns_zone_id = None
        self.nat_ip = None
        if spec.existing_network is not None:
            self.vnet_id = pulumi.Output.from_input(spec.existing_network.network_id)
            self.node_subnet_id = pulumi.Output.from_input(spec.existing_network.private_subnet_ids[0])
        else:
            self._network(name, spec, region, spec.nat_mode(environment))
        self.finish({"resource_group_name": self.resource_group_name, "vnet_id": self.vnet_id, "key_id": self.key_id})

    def _stop_role(self, name: str, group: resources.ResourceGroup) -> pulumi.Output[str]:
        # Operation names: Azure resource provider operations (Microsoft.Compute, Microsoft.ContainerService).
        role = authorization.RoleDefinition(
            f"{name}-stop-spend", role_definition_id=assignment_name(name, "stop-spend"),
            role_name=f"dragonfarm stop spend ({name})", scope=group.id, assignable_scopes=[group.id],
            description="Deallocate virtual machines and scale AKS agent pools (dragonfarm idle stop and budget hard stop)",
            permissions=[{"actions": STOP_SPEND_ACTIONS}], opts=self.child())
        return role.id

    def _key(self, name: str, spec: FenceSpec, region: str, client: pulumi.Output, identity: managedidentity.UserAssignedIdentity,
             prod: bool) -> None:
        if spec.existing_key_id is not None:
            self.key_id = pulumi.Output.from_input(spec.existing_key_id)
            self.vault_uri = self.key_name = self.disk_encryption_set_id = self.etcd_key_id = self.etcd_vault_id = self.vault_id = None
            return
        vault = self._vault(f"{name}-kv", key_vault_name(name), region, client, prod, spec.recover_key_vault, firewall=True)
        self.vault_id = vault.id
        key = keyvault.Key(
            f"{name}-key", key_name="farm-data", vault_name=vault.name, resource_group_name=self.resource_group_name,
            properties=keyvault.KeyPropertiesArgsDict(
                kty=keyvault.JsonWebKeyType.RSA, key_size=3072,
                key_ops=[keyvault.JsonWebKeyOperation.WRAP_KEY, keyvault.JsonWebKeyOperation.UNWRAP_KEY],
                rotation_policy={"lifetime_actions": [{"action": {"type": keyvault.KeyRotationPolicyActionType.ROTATE},
                                                       "trigger": {"time_after_create": "P90D"}}],
                                 "attributes": {"expiry_time": "P2Y"}},
            ),
            opts=self.stateful())
        grant = authorization.RoleAssignment(
            f"{name}-key-storage", role_assignment_name=assignment_name(name, "key-storage"),
            principal_id=identity.principal_id, principal_type="ServicePrincipal", scope=vault.id,
            role_definition_id=role_id(client.subscription_id, "crypto-service-encryption-user"),
            opts=self.child())
        self.vault_uri = vault.properties.apply(lambda p: p.vault_uri or "")
        # The key name is handed out only once the identity may use it (storage encryption needs the grant first).
        self.key_name = pulumi.Output.all(key.name, grant.id).apply(lambda parts: str(parts[0]))
        self.key_id = key.key_uri
        self._disk_encryption_set(name, region, client, vault, key)
        self._etcd_key(name, region, client, prod, spec.recover_key_vault)

    def _disk_encryption_set(self, name: str, region: str, client: pulumi.Output, vault: keyvault.Vault, key: keyvault.Key) -> None:
        """Managed disks encrypted with the farm key. The set's own identity wraps and unwraps the disk keys; it follows
        the key's rotations by itself (Azure "Server-side encryption of managed disks": automatic key rotation), so
        the versioned key URL it was made with is not written back on each rotation."""
        des = compute.DiskEncryptionSet(
            f"{name}-disks", disk_encryption_set_name=f"{name}-disks", resource_group_name=self.resource_group_name, location=region,
            identity={"type": compute.DiskEncryptionSetIdentityType.SYSTEM_ASSIGNED},
            encryption_type=compute.DiskEncryptionSetType.ENCRYPTION_AT_REST_WITH_CUSTOMER_KEY,
            active_key={"key_url": key.key_uri_with_version, "source_vault": {"id": vault.id}},
            rotation_to_latest_key_version_enabled=True, tags=self.tags,
            opts=self.child(ignore_changes=["activeKey.keyUrl"]))
        grant = authorization.RoleAssignment(
            f"{name}-key-disks", role_assignment_name=assignment_name(name, "key-disks"),
            principal_id=des.identity.apply(lambda i: i.principal_id if i else ""), principal_type="ServicePrincipal", scope=vault.id,
            role_definition_id=role_id(client.subscription_id, "crypto-service-encryption-user"),
            opts=self.child(delete_before_replace=True))
        self.disk_encryption_set_id = pulumi.Output.all(des.id, grant.id).apply(lambda parts: str(parts[0]))

    def _vault(self, resource: str, vault_name: str, region: str, client: pulumi.Output, prod: bool, recover: bool,
               firewall: bool) -> keyvault.Vault:
        """A farm vault: RBAC, purge protection, and (`firewall`) a deny-by-default firewall that trusted Azure services
        pass. Customer-managed keys need soft delete and purge protection, so a destroyed vault keeps its name for the
        retention period (7-90 days, Key Vault soft-delete overview): a week in dev, so a re-created dev stack waits at
        most that long, or recovers it (`recover_key_vault`)."""
        acls: keyvault.NetworkRuleSetArgsDict = {"default_action": keyvault.NetworkRuleAction.ALLOW}
        if firewall:
            acls = {"default_action": keyvault.NetworkRuleAction.DENY, "bypass": keyvault.NetworkRuleBypassOptions.AZURE_SERVICES}
        return keyvault.Vault(
            resource, vault_name=vault_name, resource_group_name=self.resource_group_name, location=region,
            properties=keyvault.VaultPropertiesArgsDict(
                tenant_id=client.tenant_id, sku={"family": keyvault.SkuFamily.A, "name": keyvault.SkuName.STANDARD},
                enable_rbac_authorization=True, enable_soft_delete=True, soft_delete_retention_in_days=90 if prod else 7,
                enable_purge_protection=True, create_mode=keyvault.CreateMode.RECOVER if recover else None, network_acls=acls),
            # createMode matters only when the vault is made; dropping `recover_key_vault` afterwards changes nothing.
            tags=self.tags, opts=self.stateful(ignore_changes=["properties.createMode"]))

    def _etcd_key(self, name: str, region: str, client: pulumi.Output, prod: bool, recover: bool) -> None:
        """AKS's KMS plugin encrypts and decrypts with the key version it is given (AKS "Add Key Management Service etcd
        encryption"): a key of its own with those operations and no expiry (an expired version stops the API server
        reading secrets; ARM makes a key once and adds no versions: rotating means a new key). Its vault is in KMS's public mode: KMS refuses a vault limited to
        selected networks, and its private mode needs a vault whose keys cannot be created without a private endpoint
        (same page). Only Entra RBAC guards the vault: the cluster identity alone may use the key."""
        vault = self._vault(f"{name}-etcd-kv", key_vault_name(name.removesuffix("-fence") + "-etcd"), region, client, prod, recover,
                            firewall=False)
        key = keyvault.Key(
            f"{name}-etcd-key", key_name="etcd", vault_name=vault.name, resource_group_name=self.resource_group_name,
            properties=keyvault.KeyPropertiesArgsDict(
                kty=keyvault.JsonWebKeyType.RSA, key_size=2048,
                key_ops=[keyvault.JsonWebKeyOperation.ENCRYPT, keyvault.JsonWebKeyOperation.DECRYPT]),
            opts=self.stateful())
        self.etcd_vault_id = vault.id
        self.etcd_key_id = key.key_uri_with_version

    def _network(self, name: str, spec: FenceSpec, region: str, nat: NatMode) -> None:
        rg = self.resource_group_name
        # Subnets are separate resources; the VNet must not fight them over its `subnets` property.
        vnet = network.VirtualNetwork(f"{name}-vnet", virtual_network_name=f"{name}-vnet", resource_group_name=rg, location=region,
                                      address_space={"address_prefixes": [str(spec.cidr)]}, tags=self.tags,
                                      opts=self.child(ignore_changes=["subnets"]))
        self.vnet_id = vnet.id
        nodes_cidr, edge_cidrs = subnet_plan(spec.cidr, 1)
        nsgs = {role: network.NetworkSecurityGroup(f"{name}-{role}", network_security_group_name=f"{name}-{role}",
                                                   resource_group_name=rg, location=region,
                                                   security_rules=deny_internet_inbound(), tags=self.tags, opts=self.child())
                for role in ("nodes", "endpoints")}
        nat_gateway = None
        if nat is not NatMode.none:
            ip = network.PublicIPAddress(f"{name}-nat-ip", public_ip_address_name=f"{name}-nat-ip", resource_group_name=rg,
                                         location=region, sku={"name": "Standard"}, public_ip_allocation_method="Static",
                                         tags=self.tags, opts=self.child())
            self.nat_ip = ip.ip_address.apply(lambda a: a or "")
            nat_gateway = network.NatGateway(f"{name}-nat", nat_gateway_name=f"{name}-nat", resource_group_name=rg, location=region,
                                             sku={"name": "Standard"}, public_ip_addresses=[{"id": ip.id}],
                                             idle_timeout_in_minutes=4, tags=self.tags, opts=self.child())
        nodes = network.Subnet(f"{name}-nodes", subnet_name="nodes", resource_group_name=rg, virtual_network_name=vnet.name,
                               address_prefix=nodes_cidr[0], network_security_group={"id": nsgs["nodes"].id},
                               nat_gateway={"id": nat_gateway.id} if nat_gateway is not None else None,
                               default_outbound_access=False, opts=self.child())
        self.node_subnet_id = nodes.id
        if spec.private_endpoints:
            endpoints = network.Subnet(f"{name}-endpoints", subnet_name="endpoints", resource_group_name=rg,
                                       virtual_network_name=vnet.name, address_prefix=edge_cidrs[0],
                                       network_security_group={"id": nsgs["endpoints"].id},
                                       private_endpoint_network_policies="Enabled", default_outbound_access=False,
                                       opts=self.child(depends_on=[nodes]))
            self.endpoint_subnet_id = endpoints.id
            zone = privatedns.PrivateZone(f"{name}-blob-dns", private_zone_name=BLOB_DNS_ZONE, resource_group_name=rg,
                                          location="global", tags=self.tags, opts=self.child())
            privatedns.VirtualNetworkLink(f"{name}-blob-dns-link", virtual_network_link_name=f"{name}-vnet",
                                          private_zone_name=zone.name, resource_group_name=rg, location="global",
                                          virtual_network={"id": vnet.id}, registration_enabled=False, opts=self.child())
            self.blob_dns_zone_id = zone.id
