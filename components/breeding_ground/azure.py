"""AzureBreedingGround: AKS with GPU agent pools, spot first, scaling to zero, usable on day one.

- AKS on the fence's node subnet: Azure CNI overlay with the Cilium dataplane and Cilium network policy
  (the team NetworkPolicies are enforced), `services_cidr` honoured, outbound through the fence's NAT
  gateway. Private cluster unless `deploy_from: internet`, then a public API limited to
  `public_endpoint_cidrs` (authorized IP ranges).
- Entra ID with Azure RBAC for Kubernetes authorization, local accounts off, OIDC issuer and workload
  identity, etcd secrets through Key Vault KMS and node OS disks through the fence's disk encryption set,
  a user-assigned control-plane identity (Network Contributor on the VNet), auto-upgrade
  of node images only (the Kubernetes minor stays pinned), a weekend maintenance window for them, Free
  tier in dev and Standard (uptime SLA) in prod.
- System pool inline (mode System, `CriticalAddonsOnly` taint, autoscaling min..max across the stack's
  zones); GPU pools as separate agent pools (mode User): the catalog's VM size, autoscaling from
  `min_nodes`, GPU taint, pool/capacity/GPU labels, disk size, the farm's tags; spot pools with priority
  Spot, eviction Delete, max price -1 and AKS's own spot label and taint declared. `spot-with-fallback`:
  a spot pool and a regular pool, the cluster autoscaler's priority expander preferring the spot one.
- People: admins get "Azure Kubernetes Service RBAC Cluster Admin" on the cluster; team members
  "Azure Kubernetes Service RBAC Writer" on their namespace and "Cluster User" (credentials).
- Per team: a user-assigned identity federated with the team's `workload` ServiceAccount, holding
  Storage Blob Data roles on its troughs' containers only.
- The cloud-neutral GpuStack on top, with the NVIDIA device plugin (AKS installs the driver, not the
  plugin) and the DCGM exporter, every GPU toleration also tolerating AKS's spot taint.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass
from typing import Any

import pulumi
import yaml
from pulumi_azure_native import authorization, containerservice, managedidentity, monitor
from pulumi_kubernetes import Provider as KubernetesProvider
from pulumi_kubernetes.core.v1 import ConfigMap

from components.azure_rbac import assignment_name, blob_grants, role_id
from components.base import FarmComponent, token
from components.breeding_ground import catalog
from components.breeding_ground.access import principal_slug, refuse_deployer
from components.breeding_ground.gpu_stack import TEAM_SERVICE_ACCOUNT, GpuStack
from components.breeding_ground.spec import SYSTEM_GROUP, BreedingGroundSpec, Capacity, GpuPoolSpec, node_group_names, pool_labels

# AKS labels and taints spot pools itself (AKS "Add a spot node pool"); a spot pool that does not declare
# them shows a permanent difference, and every pod meant for it must tolerate the taint.
SPOT_LABEL = ("kubernetes.azure.com/scalesetpriority", "spot")
SPOT_TAINT = f"{SPOT_LABEL[0]}={SPOT_LABEL[1]}:NoSchedule"
SPOT_TOLERATION = {"key": SPOT_LABEL[0], "operator": "Equal", "value": SPOT_LABEL[1], "effect": "NoSchedule"}
# The system pool keeps application pods off (AKS "Manage system node pools").
SYSTEM_TAINT = "CriticalAddonsOnly=true:NoSchedule"
SYSTEM_TOLERATION = {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}
SYSTEM_DISK_GB = 64
# The autoscaler's priority expander reads this ConfigMap (kubernetes/autoscaler expander/priority readme):
# the highest number wins; node groups are AKS scale sets named aks-<pool>-<digits>-vmss.
PRIORITY_CONFIGMAP = "cluster-autoscaler-priority-expander"


@dataclass(frozen=True)
class ClusterEncryption:
    """The fence's keys for a cluster: etcd secrets through KMS and node OS disks through a disk encryption set. Both
    are set when the cluster is made (AKS allows disk encryption only then)."""

    etcd_key_id: pulumi.Input[str]
    etcd_vault_id: pulumi.Input[str]
    disk_encryption_set_id: pulumi.Input[str]


def taint_strings(pool: GpuPoolSpec) -> list[str]:
    """AKS takes taints as key=value:Effect strings."""
    return [f"{t.key}={t.value}:{t.effect}" for t in pool.taints]


def agent_pool_args(key: str, pool: GpuPoolSpec, capacity: str, *, region: str, zones: list[str], subnet_id: pulumi.Input[str],
                    tags: dict[str, str]) -> dict[str, Any]:
    """The AgentPool arguments of one capacity type of a GPU pool (pure apart from its inputs: tests read it)."""
    instance = catalog.instance("azure", pool.instance_types("azure", region)[0])
    assert instance is not None  # checked at load
    spot = capacity == "spot"
    labels = pool_labels(key, pool, capacity)
    taints = taint_strings(pool)
    warm = pool.min_nodes if (capacity == "on-demand" or pool.capacity is Capacity.spot) else 0
    args: dict[str, Any] = {
        "agent_pool_name": node_group_names("azure", key, pool)[capacity], "mode": "User", "os_type": "Linux",
        "vm_size": instance.instance_type, "vnet_subnet_id": subnet_id, "availability_zones": zones or None,
        "enable_auto_scaling": True, "min_count": warm, "max_count": pool.max_nodes, "count": warm,
        "os_disk_size_gb": pool.disk_gb, "os_disk_type": "Managed", "enable_node_public_ip": False,
        "node_labels": labels, "node_taints": taints, "tags": dict(tags),
        # AKS installs the NVIDIA driver on GPU sizes (gpu_profile.driver Install, the default, said explicitly).
        "gpu_profile": {"driver": "Install"},
        "scale_set_priority": "Spot" if spot else "Regular",
    }
    if spot:
        # Delete: evicted nodes free their quota (Deallocate keeps it); -1: pay up to the regular price, never
        # evicted for price (AKS "Add a spot node pool").
        args.update(scale_set_eviction_policy="Delete", spot_max_price=-1.0,
                    node_labels={**labels, SPOT_LABEL[0]: SPOT_LABEL[1]}, node_taints=[*taints, SPOT_TAINT])
    if pool.capacity_reservation_id:
        args["capacity_reservation_group_id"] = pool.capacity_reservation_id
    return args


def priority_expander(spec: BreedingGroundSpec) -> dict[str, str] | None:
    """The priority expander's ConfigMap data: each fallback pool's spot scale set above its regular one
    (highest number wins), every other node group at the lowest priority. None without fallback pools."""
    spot, regular = [], []
    for key, pool in spec.gpu_pools.items():
        if pool.capacity is Capacity.spot_with_fallback:
            names = node_group_names("azure", key, pool)
            spot.append(f"^aks-{names['spot']}-[0-9]+-vmss$")
            regular.append(f"^aks-{names['on-demand']}-[0-9]+-vmss$")
    if not spot:
        return None
    return {"priorities": yaml.safe_dump({20: spot, 10: regular, 1: [".*"]}, sort_keys=True)}


def checked_deployer(object_id: str, admins: list[str]) -> str:
    """The Entra object id running `pulumi up` if it is one of `admins`: the program installs the in-cluster
    stack as that identity, and with local accounts off only Azure RBAC grants let it in. A member of an admin
    group cannot be told apart here: list the deploying identity itself. Refused in preview otherwise."""
    if object_id not in [principal(a)[0] for a in admins]:
        refuse_deployer(object_id, admins, what="the Entra object id")
    return object_id


PRINCIPAL_TYPES = {"user": "User", "group": "Group", "servicePrincipal": "ServicePrincipal"}


def principal(entry: str) -> tuple[str, str]:
    """(object id, role assignment principal type) of a `<type>:<object id>` stack entry."""
    kind, _, object_id = entry.partition(":")
    return object_id, PRINCIPAL_TYPES[kind]


def azure_cli_login(kubeconfig: str) -> str:
    """The user kubeconfig AKS returns runs `kubelogin get-token --login devicecode`, which would wait for a person
    at a browser (pulumi/pulumi-azure-native#2399): log in with the Azure CLI's session instead, as `pulumi up`
    itself does (kubelogin's login modes; AAD_LOGIN_METHOD overrides it, e.g. msi or workloadidentity in CI)."""
    config = yaml.safe_load(kubeconfig) or {}
    for user in config.get("users") or []:
        args = ((user.get("user") or {}).get("exec") or {}).get("args")
        if isinstance(args, list) and "--login" in args:
            args[args.index("--login") + 1] = "azurecli"
    return yaml.safe_dump(config, sort_keys=False)


class AzureBreedingGround(FarmComponent):
    TOKEN = token("AzureBreedingGround")

    cluster_name: pulumi.Output[str]
    cluster_id: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    gpu_agent_pools: list[str]

    def __init__(self, name: str, spec: BreedingGroundSpec, *, region: str, zones: list[str], resource_group_name: pulumi.Input[str],
                 subnet_id: pulumi.Input[str], vnet_id: pulumi.Input[str], egress_ip: pulumi.Input[str] | None,
                 services_cidr: str, pods_cidr: str, tags: dict[str, str], prod: bool,
                 encryption: ClusterEncryption | None = None, audit_workspace_id: pulumi.Input[str] | None = None,
                 team_troughs: dict[str, dict[str, tuple[pulumi.Input[str], str]]] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        client = authorization.get_client_config_output(opts=self.invoke())
        self.subscription = client.subscription_id
        identity = managedidentity.UserAssignedIdentity(f"{name}-control-plane", resource_name_=f"{name}-control-plane",
                                                        resource_group_name=resource_group_name, location=region, tags=tags,
                                                        opts=self.child())
        # A cluster in a custom VNet manages its subnet and links its private DNS zone to the VNet with its own identity
        # (AKS "Azure CNI overview": at least Network Contributor; "Private clusters": on the VNet).
        network_role = authorization.RoleAssignment(
            f"{name}-control-plane-network", role_assignment_name=assignment_name(name, "control-plane-network"),
            principal_id=identity.principal_id, principal_type="ServicePrincipal", scope=vnet_id,
            role_definition_id=role_id(self.subscription, "network-contributor"), opts=self.child())
        control_plane_grants: list[pulumi.Resource] = [network_role]
        if encryption is not None:
            # KMS: Key Vault Crypto User on the key's vault (AKS "Add KMS etcd encryption"); Reader on the disk encryption
            # set its node disks use (AKS "Bring your own keys with Azure managed disks").
            for role, scope in (("key-vault-crypto-user", encryption.etcd_vault_id), ("reader", encryption.disk_encryption_set_id)):
                control_plane_grants.append(authorization.RoleAssignment(
                    f"{name}-control-plane-{role}", role_assignment_name=assignment_name(name, "control-plane", role),
                    principal_id=identity.principal_id, principal_type="ServicePrincipal", scope=scope,
                    role_definition_id=role_id(self.subscription, role), opts=self.child(delete_before_replace=True)))
        cluster = self._cluster(name, spec, region, zones, resource_group_name, subnet_id, egress_ip, services_cidr, pods_cidr, tags,
                                prod, identity, control_plane_grants, encryption)
        self.cluster_name, self.cluster_id = cluster.name, cluster.id
        # Node image upgrades (the only automatic upgrades) happen in a weekend window (AKS "Use planned maintenance":
        # the aksManagedNodeOSUpgradeSchedule configuration).
        window = containerservice.MaintenanceConfiguration(
            f"{name}-node-os-window", config_name="aksManagedNodeOSUpgradeSchedule", resource_group_name=resource_group_name,
            resource_name_=cluster.name,
            maintenance_window={"schedule": {"weekly": {"day_of_week": "Saturday", "interval_weeks": 1}}, "duration_hours": 6,
                                "start_time": "02:00", "utc_offset": "+00:00"},
            opts=self.child())
        if audit_workspace_id is not None:
            # Who changed what through the API (kube-audit-admin: the audit log without get and list, the volume AKS
            # suggests keeping; AKS "Monitor AKS" resource logs), kept as long as the workspace keeps logs.
            # Resource-specific tables (AKSAuditAdmin) rather than the legacy AzureDiagnostics one (AKS "Monitor AKS").
            monitor.DiagnosticSetting(f"{name}-audit", name="dragonfarm-audit", resource_uri=cluster.id, workspace_id=audit_workspace_id,
                                      log_analytics_destination_type="Dedicated",
                                      logs=[{"category": "kube-audit-admin", "enabled": True}], opts=self.child())
        self.endpoint = pulumi.Output.all(cluster.fqdn, cluster.private_fqdn).apply(lambda a: a[0] or a[1] or "")
        self.gpu_agent_pools = []
        # One agent pool operation at a time per cluster (AKS answers a concurrent one with 409 OperationNotAllowed).
        previous: list[pulumi.Resource] = [window]
        for key, pool in spec.gpu_pools.items():
            for capacity in pool.capacity.capacity_types:
                args = agent_pool_args(key, pool, capacity, region=region, zones=zones, subnet_id=subnet_id, tags=tags)
                agent_pool = containerservice.AgentPool(f"{name}-{args['agent_pool_name']}", resource_group_name=resource_group_name,
                                                        resource_name_=cluster.name, orchestrator_version=spec.version("azure"), **args,
                                                        # The autoscaler owns the node count.
                                                        opts=self.child(ignore_changes=["count"], depends_on=previous))
                previous = [agent_pool]
                self.gpu_agent_pools.append(args["agent_pool_name"])
        admin_grants = self._people(name, spec, cluster)
        self.deployer = client.object_id.apply(lambda oid: checked_deployer(oid, spec.admins))
        credentials = containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=resource_group_name, resource_name=cluster.name, format="exec", opts=self.invoke())
        self.kubeconfig = pulumi.Output.secret(credentials.kubeconfigs.apply(
            lambda k: azure_cli_login(base64.b64decode(k[0].value).decode()) if k else ""))
        provider = KubernetesProvider(f"{name}-k8s", kubeconfig=pulumi.Output.all(self.kubeconfig, self.deployer).apply(lambda a: a[0]),
                                      enable_server_side_apply=True,
                                      opts=self.child(depends_on=admin_grants))
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[cluster])
        expander = priority_expander(spec)
        if expander is not None:
            ConfigMap(f"{name}-priority-expander", metadata={"name": PRIORITY_CONFIGMAP, "namespace": "kube-system"}, data=expander,
                      opts=in_cluster)
        annotations = self._team_identities(name, spec, region, resource_group_name, cluster, team_troughs or {}, tags)
        GpuStack(f"{name}-gpu", spec, cloud="azure", extra_tolerations=[SPOT_TOLERATION], system_tolerations=[SYSTEM_TOLERATION],
                 service_account_annotations=annotations, after=[cluster],
                 opts=pulumi.ResourceOptions(parent=self, providers=[provider]))
        self.finish({"cluster_name": self.cluster_name, "endpoint": self.endpoint})

    def _cluster(self, name: str, spec: BreedingGroundSpec, region: str, zones: list[str], resource_group_name: pulumi.Input[str],
                 subnet_id: pulumi.Input[str], egress_ip: pulumi.Input[str] | None, services_cidr: str, pods_cidr: str,
                 tags: dict[str, str], prod: bool, identity: managedidentity.UserAssignedIdentity, after: list[pulumi.Resource],
                 encryption: ClusterEncryption | None) -> containerservice.ManagedCluster:
        system = spec.system_pool
        public = spec.deploy_from == "internet"
        services = services_cidr
        # The DNS service address must sit inside the service range: its tenth address, as AKS's default does.
        dns_ip = str(ipaddress.ip_network(services)[10])
        authorized: list[pulumi.Input[str]] = [str(c) for c in spec.public_endpoint_cidrs]
        if egress_ip is not None:
            authorized.append(pulumi.Output.concat(egress_ip, "/32"))
        cluster_identity: containerservice.ManagedClusterIdentityArgsDict = {
            "type": containerservice.ResourceIdentityType.USER_ASSIGNED, "user_assigned_identities": [identity.id]}
        access: containerservice.ManagedClusterAPIServerAccessProfileArgsDict = {
            "enable_private_cluster": not public, "authorized_ip_ranges": authorized if public else None}
        security: containerservice.ManagedClusterSecurityProfileArgsDict = {"workload_identity": {"enabled": True}}
        if encryption is not None:
            security["azure_key_vault_kms"] = {"enabled": True, "key_id": encryption.etcd_key_id, "key_vault_network_access": "Public"}
        return containerservice.ManagedCluster(
            name, resource_name_=name, resource_group_name=resource_group_name, location=region, dns_prefix=name,
            kubernetes_version=spec.version("azure"),
            identity=cluster_identity,
            sku={"name": "Base", "tier": "Standard" if prod else "Free"},
            agent_pool_profiles=[{
                "name": SYSTEM_GROUP, "mode": "System", "os_type": "Linux", "vm_size": system.instance("azure").instance_type,
                "vnet_subnet_id": subnet_id, "availability_zones": zones or None, "enable_auto_scaling": True,
                "min_count": system.min_nodes, "max_count": system.max_nodes, "count": system.min_nodes,
                "os_disk_size_gb": SYSTEM_DISK_GB, "node_taints": [SYSTEM_TAINT], "node_labels": {"dragonfarm.io/pool": SYSTEM_GROUP},
                "enable_node_public_ip": False, "tags": dict(tags)}],
            network_profile={"network_plugin": "azure", "network_plugin_mode": "overlay", "network_dataplane": "cilium",
                             "network_policy": "cilium", "pod_cidr": pods_cidr, "service_cidr": services, "dns_service_ip": dns_ip,
                             # Out through the fence's NAT gateway when it made one; else AKS's load balancer.
                             "outbound_type": "userAssignedNATGateway" if egress_ip is not None else "loadBalancer"},
            # Nodes reach a public API through the NAT gateway: its address must be authorized too (AKS "API server
            # authorized IP ranges" adds only a load balancer's outbound IP by itself).
            api_server_access_profile=access,
            disk_encryption_set_id=encryption.disk_encryption_set_id if encryption is not None else None,
            aad_profile={"managed": True, "enable_azure_rbac": True},
            disable_local_accounts=True,
            oidc_issuer_profile={"enabled": True},
            security_profile=security,
            # Node images follow AKS's weekly releases; the Kubernetes minor moves only when the stack says so.
            # (The node-image upgrade channel is legacy: AKS "Automatically upgrade a cluster".)
            auto_upgrade_profile={"upgrade_channel": "none", "node_os_upgrade_channel": "NodeImage"},
            auto_scaler_profile={"expander": "priority" if priority_expander(spec) is not None else "least-waste",
                                 # GpuPoolSpec's default delay; AKS has one for the cluster (a per-pool one is refused at load).
                                 "scale_down_unneeded_time": f"{GpuPoolSpec.model_fields['scale_down_after_minutes'].default}m",
                                 "max_node_provision_time": "15m", "skip_nodes_with_system_pods": "true"},
            tags=tags,
            # The autoscaler owns the system pool's count.
            opts=self.child(depends_on=after, ignore_changes=["agentPoolProfiles[0].count"]))

    def _people(self, name: str, spec: BreedingGroundSpec, cluster: containerservice.ManagedCluster) -> list[pulumi.Resource]:
        """Azure RBAC for Kubernetes: admins cluster-wide, members write in their teams' namespaces."""
        grants: list[pulumi.Resource] = []
        for admin in spec.admins:
            object_id, kind = principal(admin)
            grants.append(authorization.RoleAssignment(
                f"{name}-admin-{principal_slug(admin)}", role_assignment_name=assignment_name(name, "admin", admin), principal_id=object_id,
                principal_type=kind, scope=cluster.id, role_definition_id=role_id(self.subscription, "aks-rbac-cluster-admin"),
                opts=self.child(delete_before_replace=True)))
        for team, team_spec in spec.teams.items():
            for member in team_spec.members:
                object_id, kind = principal(member)
                authorization.RoleAssignment(
                    f"{name}-team-{team}-{principal_slug(member)}", role_assignment_name=assignment_name(name, team, member),
                    principal_id=object_id, principal_type=kind, scope=pulumi.Output.concat(cluster.id, "/namespaces/", team),
                    role_definition_id=role_id(self.subscription, "aks-rbac-writer"), opts=self.child(delete_before_replace=True))
        for member in dict.fromkeys(m for t in spec.teams.values() for m in t.members if m not in spec.admins):
            object_id, kind = principal(member)
            authorization.RoleAssignment(
                f"{name}-user-{principal_slug(member)}", role_assignment_name=assignment_name(name, "user", member), principal_id=object_id,
                principal_type=kind, scope=cluster.id, role_definition_id=role_id(self.subscription, "aks-cluster-user"),
                opts=self.child(delete_before_replace=True))
        return grants

    def _team_identities(self, name: str, spec: BreedingGroundSpec, region: str, resource_group_name: pulumi.Input[str],
                         cluster: containerservice.ManagedCluster,
                         team_troughs: dict[str, dict[str, tuple[pulumi.Input[str], str]]],
                         tags: dict[str, str]) -> dict[str, dict[str, pulumi.Input[str]]]:
        """Each team's `workload` ServiceAccount acts as its own managed identity (workload identity federation),
        which holds Storage Blob Data roles on its troughs' containers only."""
        annotations: dict[str, dict[str, pulumi.Input[str]]] = {}
        issuer = cluster.oidc_issuer_profile.apply(lambda p: (p.issuer_url if p else None) or "")
        for team in spec.teams:
            grants = team_troughs.get(team, {})
            if not grants:
                continue
            identity = managedidentity.UserAssignedIdentity(f"{name}-team-{team}", resource_name_=f"{name}-team-{team}",
                                                            resource_group_name=resource_group_name, location=region, tags=tags,
                                                            opts=self.child())
            managedidentity.FederatedIdentityCredential(
                f"{name}-team-{team}", federated_identity_credential_resource_name=f"{team}-{TEAM_SERVICE_ACCOUNT}",
                resource_group_name=resource_group_name, resource_name_=identity.name, issuer=issuer,
                subject=f"system:serviceaccount:{team}:{TEAM_SERVICE_ACCOUNT}", audiences=["api://AzureADTokenExchange"],
                opts=self.child())
            blob_grants(self, f"{name}-team-{team}", identity.principal_id, self.subscription, grants, (name, team))
            annotations[team] = {"azure.workload.identity/client-id": identity.client_id}
        return annotations

