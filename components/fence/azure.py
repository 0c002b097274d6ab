"""AzureFence: resource group, VNet with node and private-endpoint subnets, NAT gateway, NSGs,
a Key Vault key for customer-managed encryption, and the identity storage accounts use to reach it.

Azure subnets attach to one NAT gateway, so `per-zone` NAT gives the same single gateway as
`single`. The vault uses RBAC, purge protection and a deny-by-default firewall (trusted Azure
services bypass it, which storage encryption needs).
"""

from __future__ import annotations

import uuid

import pulumi
from pulumi_azure_native import authorization, keyvault, managedidentity, network, privatedns, resources

from components.base import FarmComponent, token
from components.fence.spec import FenceSpec, NatMode, key_vault_name, subnet_plan

# Built-in role "Key Vault Crypto Service Encryption User": wrap/unwrap with the key, nothing more.
CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
BLOB_DNS_ZONE = "privatelink.blob.core.windows.net"


def deny_internet_inbound() -> list[network.SecurityRuleArgsDict]:
    return [{"name": "deny-internet-inbound", "priority": 4000, "direction": "Inbound", "access": "Deny", "protocol": "*",
             "source_address_prefix": "Internet", "source_port_range": "*", "destination_address_prefix": "*",
             "destination_port_range": "*"}]


class AzureFence(FarmComponent):
    TOKEN = token("AzureFence")

    resource_group_name: pulumi.Output[str]
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

    def __init__(self, name: str, spec: FenceSpec, *, region: str, environment: str, tags: dict[str, str],
                 protect_data: bool = False, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts, protect_data)
        group = resources.ResourceGroup(f"{name}-rg", resource_group_name=f"{name}-rg", location=region, tags=tags,
                                        opts=self.child())
        self.resource_group_name = group.name
        self.location = region
        self.tags = tags
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        identity = managedidentity.UserAssignedIdentity(f"{name}-storage", resource_name_=f"{name}-storage",
                                                        resource_group_name=group.name, location=region, tags=tags,
                                                        opts=self.child())
        self.storage_identity_id = identity.id
        self._key(name, spec, region, client, identity)
        self.endpoint_subnet_id = None
        self.blob_dns_zone_id = None
        self.nat_ip = None
        if spec.existing_network is not None:
            self.vnet_id = pulumi.Output.from_input(spec.existing_network.network_id)
            self.node_subnet_id = pulumi.Output.from_input(spec.existing_network.private_subnet_ids[0])
        else:
            self._network(name, spec, region, spec.nat_mode(environment))
        self.finish({"resource_group_name": self.resource_group_name, "vnet_id": self.vnet_id, "key_id": self.key_id})

    def _key(self, name: str, spec: FenceSpec, region: str, client: pulumi.Output, identity: managedidentity.UserAssignedIdentity) -> None:
        if spec.existing_key_id is not None:
            self.key_id = pulumi.Output.from_input(spec.existing_key_id)
            self.vault_uri = self.key_name = None
            return
        vault = keyvault.Vault(
            f"{name}-kv", vault_name=key_vault_name(name), resource_group_name=self.resource_group_name, location=region,
            properties=keyvault.VaultPropertiesArgsDict(
                tenant_id=client.tenant_id, sku={"family": keyvault.SkuFamily.A, "name": keyvault.SkuName.STANDARD},
                enable_rbac_authorization=True, enable_soft_delete=True, soft_delete_retention_in_days=90,
                enable_purge_protection=True,
                network_acls={"default_action": keyvault.NetworkRuleAction.DENY, "bypass": keyvault.NetworkRuleBypassOptions.AZURE_SERVICES},
            ),
            tags=self.tags, opts=self.stateful())
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
            f"{name}-key-storage", role_assignment_name=str(uuid.uuid5(uuid.NAMESPACE_URL, f"dragonfarm/{name}/key-storage")),
            principal_id=identity.principal_id, principal_type="ServicePrincipal", scope=vault.id,
            role_definition_id=client.subscription_id.apply(
                lambda sub: f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{CRYPTO_SERVICE_ENCRYPTION_USER}"),
            opts=self.child())
        self.vault_uri = vault.properties.apply(lambda p: p.vault_uri or "")
        # The key name is handed out only once the identity may use it (storage encryption needs the grant first).
        self.key_name = pulumi.Output.all(key.name, grant.id).apply(lambda parts: str(parts[0]))
        self.key_id = key.key_uri

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
