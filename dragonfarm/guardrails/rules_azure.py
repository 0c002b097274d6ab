"""Azure guardrails over the azure-native types the Azure blueprint emits (storage troughs, Key Vault, AKS, NSGs)
and the barn types being added (VirtualMachine, NetworkInterface, GlobalSchedule, DiskEncryptionSet).

Checkov ids where one exists: bridgecrewio/checkov, checkov/terraform/checks/resource/azure/ (and graph_checks
for CKV2_*). AKS options: MicrosoftDocs/azure-aks-docs articles/aks/.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dragonfarm.guardrails.model import (
    PURPOSE_TAG, Resource, Stack, items, known, open_to_world, resource_rule, stack_rule, truthy,
)

ACCOUNT = "azure-native:storage:StorageAccount"
CONTAINER = "azure-native:storage:BlobContainer"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
MANAGEMENT_POLICY = "azure-native:storage:ManagementPolicy"
AKS = "azure-native:containerservice:ManagedCluster"
AGENT_POOL = "azure-native:containerservice:AgentPool"
WORKSPACE = "azure-native:operationalinsights:Workspace"
NSG = "azure-native:network:NetworkSecurityGroup"
SECURITY_RULE = "azure-native:network:SecurityRule"
VAULT = "azure-native:keyvault:Vault"
VM = "azure-native:compute:VirtualMachine"
NIC = "azure-native:network:NetworkInterface"
DIAGNOSTIC = "azure-native:monitor:DiagnosticSetting"

SENSITIVE_PORTS = (22, 3389, 443, 6443)
AKS_DOCS = "https://learn.microsoft.com/azure/aks"


@resource_rule("DF-AZ-001", "storage accounts refuse public blob and public network access", "mandatory",
               "trough layer: allowBlobPublicAccess false, publicNetworkAccess Disabled (components/trough/azure.py)",
               [ACCOUNT], checkov="CKV_AZURE_190, CKV_AZURE_59, CKV_AZURE_35",
               source="https://learn.microsoft.com/azure/storage/blobs/anonymous-read-access-prevent")
def account_public(r: Resource) -> list[str]:
    out = []
    if r.get("allowBlobPublicAccess") is not False:
        out.append("anonymous blob access is not refused (allowBlobPublicAccess is not false)")
    if r.get("publicNetworkAccess") != "Disabled" and r.get("networkRuleSet.defaultAction") != "Deny":
        out.append("reachable from any network (publicNetworkAccess not Disabled and networkRuleSet.defaultAction not Deny)")
    return out


@resource_rule("DF-AZ-002", "blob containers are private", "mandatory",
               "trough layer: publicAccess None (components/trough/azure.py)", [CONTAINER], checkov="CKV_AZURE_34",
               source="https://learn.microsoft.com/azure/storage/blobs/anonymous-read-access-configure")
def container_private(r: Resource) -> list[str]:
    access = r.get("publicAccess")
    return [] if access in (None, "None") else [f"container allows anonymous access (publicAccess {access!r})"]


@resource_rule("DF-AZ-003", "storage accounts encrypted with the farm's Key Vault key", "mandatory",
               "trough layer encrypts with the fence key (dragonfarm:fence.existing_key_id if you bring one)", [ACCOUNT],
               checkov="CKV2_AZURE_1",
               source="https://learn.microsoft.com/azure/storage/common/customer-managed-keys-overview")
def account_cmk(r: Resource) -> list[str]:
    if r.get("encryption.keySource") == "Microsoft.Keyvault" and r.get("encryption.keyVaultProperties.keyName"):
        return []
    return ["encrypted with Microsoft-managed keys (encryption.keySource is not Microsoft.Keyvault)"]


@resource_rule("DF-AZ-004", "storage accounts take HTTPS only, TLS 1.2 or later", "mandatory",
               "trough layer: enableHttpsTrafficOnly true, minimumTlsVersion TLS1_2 (components/trough/azure.py)",
               [ACCOUNT], checkov="CKV_AZURE_3, CKV_AZURE_44",
               source="https://learn.microsoft.com/azure/storage/common/transport-layer-security-configure-minimum-version")
def account_tls(r: Resource) -> list[str]:
    out = []
    if r.get("enableHttpsTrafficOnly") is False:
        out.append("plain HTTP allowed (enableHttpsTrafficOnly false)")
    if r.get("minimumTlsVersion") not in ("TLS1_2", "TLS1_3"):
        out.append(f"minimumTlsVersion {r.get('minimumTlsVersion')!r} is older than TLS1_2 or unset")
    return out


@resource_rule("DF-AZ-005", "storage accounts refuse shared-key (account key) access", "mandatory",
               "trough layer: allowSharedKeyAccess false; access goes through Entra ID (components/trough/azure.py)",
               [ACCOUNT], checkov="CKV2_AZURE_40",
               source="https://learn.microsoft.com/azure/storage/common/shared-key-authorization-prevent")
def account_shared_key(r: Resource) -> list[str]:
    return [] if r.get("allowSharedKeyAccess") is False else ["account keys work (allowSharedKeyAccess is not false)"]


def _accounts(stack: Stack) -> dict[str, Resource]:
    return {a.get("accountName") or a.name: a for a in stack.of_type(ACCOUNT)}


@stack_rule("DF-AZ-006", "checkpoint and model storage accounts keep blob versions", "mandatory",
            "dragonfarm:troughs.<key>.versioning: true (the default for purpose checkpoints and models)",
            source="https://learn.microsoft.com/azure/storage/blobs/versioning-overview")
def account_versioning(stack: Stack) -> list[tuple[Resource | None, str]]:
    versioned = {p.get("accountName") for p in stack.of_type(BLOB_SERVICE) if truthy(p.get("isVersioningEnabled"))}
    return [(a, f"{a.tags().get(PURPOSE_TAG)} account has no blob versioning (BlobServiceProperties.isVersioningEnabled)")
            for name, a in _accounts(stack).items()
            if a.tags().get(PURPOSE_TAG) in ("checkpoints", "models") and name not in versioned]


@stack_rule("DF-AZ-007", "every storage account has a lifecycle management policy", "mandatory",
            "dragonfarm:troughs.<key>.lifecycle",
            source="https://learn.microsoft.com/azure/storage/blobs/lifecycle-management-overview")
def account_lifecycle(stack: Stack) -> list[tuple[Resource | None, str]]:
    managed = set()
    for p in stack.of_type(MANAGEMENT_POLICY):
        if any(isinstance(rule, Mapping) and rule.get("enabled") is not False for rule in items(p.get("policy.rules"))):
            managed.add(p.get("accountName"))
    return [(a, "no enabled lifecycle rule (ManagementPolicy)") for name, a in _accounts(stack).items() if name not in managed]


@resource_rule("DF-AZ-008", "AKS API server private, or public only to listed ranges", "mandatory",
               "dragonfarm:breeding_ground.deploy_from (inside-network) or public_endpoint_cidrs (your egress CIDRs)",
               [AKS], checkov="CKV_AZURE_115, CKV_AZURE_6", source=f"{AKS_DOCS}/private-clusters")
def aks_endpoint(r: Resource) -> list[str]:
    if truthy(r.get("apiServerAccessProfile.enablePrivateCluster")):
        return []
    ranges = items(r.get("apiServerAccessProfile.authorizedIPRanges"))
    if not ranges or any(open_to_world(c) for c in ranges):
        return [f"public API server open to {', '.join(map(str, ranges)) or 'any address (no authorizedIPRanges)'}"]
    return []


@resource_rule("DF-AZ-009", "AKS workload identity on", "mandatory",
               "breeding ground: oidcIssuerProfile.enabled and securityProfile.workloadIdentity.enabled "
               "(components/breeding_ground/azure.py)", [AKS], source=f"{AKS_DOCS}/workload-identity-deploy-cluster")
def aks_workload_identity(r: Resource) -> list[str]:
    off = [k for k in ("oidcIssuerProfile.enabled", "securityProfile.workloadIdentity.enabled") if not truthy(r.get(k))]
    return [f"workload identity is off ({', '.join(off)})"] if off else []


@resource_rule("DF-AZ-010", "AKS enforces network policy", "mandatory",
               "breeding ground: networkProfile.networkPolicy cilium (components/breeding_ground/azure.py)", [AKS],
               checkov="CKV_AZURE_7", source=f"{AKS_DOCS}/use-network-policies")
def aks_network_policy(r: Resource) -> list[str]:
    policy = r.get("networkProfile.networkPolicy")
    return [] if policy in ("azure", "calico", "cilium") else [f"no network policy engine (networkProfile.networkPolicy {policy!r})"]


@resource_rule("DF-AZ-011", "AKS local accounts off (Entra ID only)", "mandatory",
               "breeding ground: disableLocalAccounts true (components/breeding_ground/azure.py)", [AKS],
               checkov="CKV_AZURE_141", source=f"{AKS_DOCS}/manage-local-accounts-managed-azure-ad")
def aks_local_accounts(r: Resource) -> list[str]:
    return [] if truthy(r.get("disableLocalAccounts")) else ["the static cluster-admin credential works (disableLocalAccounts)"]


@resource_rule("DF-AZ-012", "AKS secrets encrypted with a Key Vault key (etcd KMS)", "mandatory",
               "breeding ground: securityProfile.azureKeyVaultKms with the fence's etcd key (components/breeding_ground/azure.py; "
               "a stack with fence.existing_key_id brings no etcd key)", [AKS], source=f"{AKS_DOCS}/use-kms-etcd-encryption")
def aks_kms(r: Resource) -> list[str]:
    return [] if truthy(r.get("securityProfile.azureKeyVaultKms.enabled")) else [
        "secrets in etcd use platform keys only (securityProfile.azureKeyVaultKms)"]


@resource_rule("DF-AZ-013", "AKS node disks encrypted with the farm's key (disk encryption set or host)", "mandatory",
               "breeding ground: the cluster's diskEncryptionSetID (the fence's disk encryption set, set when the cluster is "
               "made) or enableEncryptionAtHost on every pool", [AKS],
               checkov="CKV_AZURE_117, CKV_AZURE_227", source=f"{AKS_DOCS}/azure-disk-customer-managed-keys")
def aks_disks(r: Resource) -> list[str]:
    # The cluster's disk encryption set covers every pool's OS disks, the separate agent pools' too.
    if r.get("diskEncryptionSetID"):
        return []
    bare = [p.get("name") for p in items(r.get("agentPoolProfiles"))
            if isinstance(p, Mapping) and not truthy(p.get("enableEncryptionAtHost"))]
    return [f"pool(s) {', '.join(map(str, bare))} use platform-managed disk keys (no diskEncryptionSetID, "
            f"no enableEncryptionAtHost)"] if bare else []


_AUDIT = ("kube-audit", "kube-audit-admin")


@stack_rule("DF-AZ-014", "AKS control-plane audit logs sent to a workspace that keeps them a set time", "mandatory",
            "fence: log_retention_days (the farm's Log Analytics workspace); breeding ground: the kube-audit-admin "
            "diagnostic setting (components/breeding_ground/azure.py)",
            source=f"{AKS_DOCS}/monitor-aks-reference#resource-logs")
def aks_audit_logs(stack: Stack) -> list[tuple[Resource | None, str]]:
    clusters = stack.of_type(AKS)
    if not clusters:
        return []
    made = stack.of_type(WORKSPACE)
    by_name = {str(w.get("workspaceName") or w.name): w for w in made}
    for d in stack.of_type(DIAGNOSTIC):
        logs = [known(entry, f"{d.name}: logs") for entry in items(d.get("logs"))]
        audit = any(isinstance(entry, Mapping) and truthy(entry.get("enabled"))
                    and (entry.get("category") in _AUDIT or entry.get("categoryGroup") in ("audit", "allLogs")) for entry in logs)
        target = str(d.get("workspaceId") or "").rsplit("/", 1)[-1]
        if not (audit and target):
            continue
        # A workspace of the farm's must say how long it keeps logs; a workspace id from outside the stack is trusted only
        # when the stack makes none of its own (else a renamed farm workspace would slip through).
        workspace = by_name.get(target)
        if workspace is not None and workspace.get("retentionInDays"):
            return []
        if workspace is None and not made:
            return []
    return [(c, "no diagnostic setting sends kube-audit logs to a workspace that keeps them a set time (retentionInDays)")
            for c in clusters]


@resource_rule("DF-AZ-019", "AKS nodes get no public IP", "mandatory",
               "breeding ground: enableNodePublicIP false on every pool (components/breeding_ground/azure.py)", [AKS, AGENT_POOL],
               checkov="CKV_AZURE_143", source=f"{AKS_DOCS}/use-node-public-ips")
def aks_node_public_ip(r: Resource) -> list[str]:
    pools = items(r.get("agentPoolProfiles")) if r.type == AKS else [dict(r.inputs)]
    return [f"pool {p.get('name') or r.name!s} gives its nodes public IPs (enableNodePublicIP)" for p in pools
            if isinstance(p, Mapping) and truthy(p.get("enableNodePublicIP"))]


ROLE_DEFINITION = "azure-native:authorization:RoleDefinition"


@resource_rule("DF-AZ-020", "custom roles name their actions (no '*')", "mandatory",
               "fence: the stop-spend role lists its operations (components/fence/azure.py STOP_SPEND_ACTIONS)", [ROLE_DEFINITION],
               checkov="CKV_AZURE_39", source="https://learn.microsoft.com/azure/role-based-access-control/custom-roles")
def role_wildcard(r: Resource) -> list[str]:
    out = []
    for permission in items(r.get("permissions")):
        permission = known(permission, f"{r.name}: permissions")
        if not isinstance(permission, Mapping):
            continue
        for key in ("actions", "dataActions"):
            wild = [a for a in items(permission.get(key)) if str(a) == "*" or str(a).startswith("*/")]
            if wild:
                out.append(f"{key} {', '.join(map(str, wild))} allow every operation")
    return out


def _rule_ports(rule: Mapping[str, Any]) -> list[int]:
    if str(rule.get("protocol", "*")).lower() not in ("*", "tcp"):
        return []
    ranges = [rule.get("destinationPortRange")] + items(rule.get("destinationPortRanges"))
    hit = set()
    for value in ranges:
        if value is None:
            continue
        if value == "*":
            return list(SENSITIVE_PORTS)
        low, _, high = str(value).partition("-")
        if low.isdigit():
            hit.update(p for p in SENSITIVE_PORTS if int(low) <= p <= int(high or low))
    return sorted(hit)


def _nsg_rule_problem(rule: Any, where: str) -> str | None:
    rule = known(rule, where)
    if not isinstance(rule, Mapping):
        return None
    rule = rule.get("properties", rule) if isinstance(rule.get("properties"), Mapping) else rule
    if rule.get("access") != "Allow" or rule.get("direction") != "Inbound":
        return None
    sources = [rule.get("sourceAddressPrefix")] + items(rule.get("sourceAddressPrefixes"))
    ports = _rule_ports(rule)
    if ports and any(open_to_world(s) for s in sources):
        return f"rule {rule.get('name', '')!s} allows port(s) {', '.join(map(str, ports))} from the internet"
    return None


@resource_rule("DF-AZ-015", "no internet ingress to SSH, RDP or the Kubernetes API", "mandatory",
               "fence: NSGs deny Internet inbound (components/fence/azure.py); barns take no inbound rule", [NSG, SECURITY_RULE],
               checkov="CKV_AZURE_10, CKV_AZURE_9",
               source="https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview")
def nsg_world(r: Resource) -> list[str]:
    rules = items(r.get("securityRules")) if r.type == NSG else [dict(r.inputs)]
    return [p for p in (_nsg_rule_problem(rule, f"{r.name}: securityRules") for rule in rules) if p]


@resource_rule("DF-AZ-016", "Key Vault keeps deleted keys recoverable (soft delete and purge protection)", "mandatory",
               "fence: enablePurgeProtection and enableSoftDelete on the vault (components/fence/azure.py)", [VAULT],
               checkov="CKV_AZURE_110, CKV_AZURE_42",
               source="https://learn.microsoft.com/azure/key-vault/general/soft-delete-overview")
def vault_recoverable(r: Resource) -> list[str]:
    off = [] if truthy(r.get("properties.enablePurgeProtection")) else ["enablePurgeProtection"]
    if r.get("properties.enableSoftDelete") is False:  # soft delete is on unless turned off
        off.append("enableSoftDelete")
    return [f"a deleted key could be lost ({', '.join(off)} off)"] if off else []


@resource_rule("DF-AZ-017", "dev-box network interfaces get no public IP", "mandatory",
               "barn: no publicIPAddress on the NIC; reach the box through Bastion or a private network (components/barn/azure.py)",
               [NIC], checkov="CKV_AZURE_119",
               source="https://learn.microsoft.com/azure/virtual-network/ip-services/public-ip-addresses")
def nic_public_ip(r: Resource) -> list[str]:
    for conf in items(r.get("ipConfigurations")):
        conf = known(conf, f"{r.name}: ipConfigurations")
        if isinstance(conf, Mapping) and (conf.get("publicIPAddress") or (conf.get("properties") or {}).get("publicIPAddress")):
            return [f"ip configuration {conf.get('name', '')!s} has a public IP"]
    return []


@resource_rule("DF-AZ-018", "dev-box disks encrypted with the farm's key (encryption at host or disk encryption set)",
               "mandatory", "barn: securityProfile.encryptionAtHost or the OS disk's diskEncryptionSet (components/barn/azure.py)",
               [VM], source="https://learn.microsoft.com/azure/virtual-machines/disk-encryption-overview")
def vm_disk_encryption(r: Resource) -> list[str]:
    if truthy(r.get("securityProfile.encryptionAtHost")) or r.get("storageProfile.osDisk.managedDisk.diskEncryptionSet.id"):
        return []
    return ["OS disk uses platform-managed keys only (no encryptionAtHost, no diskEncryptionSet)"]
