"""GCP guardrails over the types the GCP blueprint emits (GCS troughs, Cloud KMS, GKE, firewalls, dev boxes, logs).

Checkov ids where one exists: bridgecrewio/checkov, checkov/terraform/checks/resource/gcp/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from dragonfarm.guardrails.model import (
    PURPOSE_TAG, Resource, Stack, Unknown, each, items, known, known_items, open_to_world, port, resource_rule,
    stack_rule, truthy,
)

BUCKET = "gcp:storage/bucket:Bucket"
CLUSTER = "gcp:container/cluster:Cluster"
NODE_POOL = "gcp:container/nodePool:NodePool"
FIREWALL = "gcp:compute/firewall:Firewall"
INSTANCE = "gcp:compute/instance:Instance"
CRYPTO_KEY = "gcp:kms/cryptoKey:CryptoKey"
LOG_BUCKET = "gcp:logging/projectBucketConfig:ProjectBucketConfig"
PROJECT_IAM = ("gcp:projects/iAMMember:IAMMember", "gcp:projects/iAMBinding:IAMBinding")
PROJECT_IAM_POLICY = "gcp:projects/iAMPolicy:IAMPolicy"
# Basic (primitive) roles: checkov AbsGoogleBasicRoles BASIC_ROLES.
BASIC_ROLES = ("roles/owner", "roles/editor", "roles/viewer")

SENSITIVE_PORTS = (22, 3389, 443, 6443)
GKE_DOCS = "https://cloud.google.com/kubernetes-engine/docs"

# A Cloud KMS crypto key (optionally one version of it): what a customer-managed key reference looks like.
CRYPTO_KEY_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+(/cryptoKeyVersions/[^/]+)?$")


def cmek_problem(ref: Any, field: str) -> str:
    """'' when `ref` names a Cloud KMS crypto key; otherwise what is wrong (no key: Google-managed encryption)."""
    if not isinstance(ref, str) or not ref.strip():
        return f"no Cloud KMS key ({field}): Google-managed encryption"
    if not CRYPTO_KEY_NAME.match(_strip_url(ref)):
        return f"{field} is not a Cloud KMS crypto key name ({ref})"
    return ""


def _strip_url(ref: str) -> str:
    ref = ref.strip()
    for prefix in ("https://cloudkms.googleapis.com/v1/", "//cloudkms.googleapis.com/"):
        ref = ref.removeprefix(prefix)
    return ref


def crypto_key(ref: str) -> str:
    """The crypto key a reference names, without a version."""
    return _strip_url(ref).split("/cryptoKeyVersions/", 1)[0]


def farm_keys(stack: Stack) -> set[str] | None:
    """The crypto keys the fence creates (`<keyRing>/cryptoKeys/<name>`); None when it creates none
    (dragonfarm:fence.existing_key_id brings one the plan cannot name)."""
    keys = stack.of_type(CRYPTO_KEY)
    if not keys:
        return None
    out = set()
    for k in keys:
        ring, name = k.get("keyRing"), k.get("name")
        if isinstance(ring, str) and isinstance(name, str):
            out.add(f"{_strip_url(ring)}/cryptoKeys/{name}")
    return out or None


@resource_rule("DF-GCP-001", "GCS buckets enforce public access prevention", "mandatory",
               "trough layer: publicAccessPrevention 'enforced' (components/trough/gcp.py)", [BUCKET],
               checkov="CKV_GCP_114", source="https://cloud.google.com/storage/docs/public-access-prevention")
def public_access_prevention(r: Resource) -> list[str]:
    return [] if r.get("publicAccessPrevention") == "enforced" else ["publicAccessPrevention is not 'enforced'"]


@resource_rule("DF-GCP-002", "GCS buckets use uniform bucket-level access", "mandatory",
               "trough layer: uniformBucketLevelAccess true (components/trough/gcp.py)", [BUCKET],
               checkov="CKV_GCP_29", source="https://cloud.google.com/storage/docs/uniform-bucket-level-access")
def uniform_access(r: Resource) -> list[str]:
    return [] if truthy(r.get("uniformBucketLevelAccess")) else ["object ACLs are on (uniformBucketLevelAccess is not true)"]


@resource_rule("DF-GCP-003", "GCS buckets encrypted with the farm's Cloud KMS key", "mandatory",
               "trough layer encrypts with the fence key (dragonfarm:fence.existing_key_id if you bring one)", [BUCKET],
               source="https://cloud.google.com/storage/docs/encryption/customer-managed-keys")
def bucket_cmek(r: Resource) -> list[str]:
    problem = cmek_problem(r.get("encryption.defaultKmsKeyName"), "encryption.defaultKmsKeyName")
    return [problem] if problem else []


@resource_rule("DF-GCP-004", "GCS checkpoint and model buckets are versioned", "mandatory",
               "dragonfarm:troughs.<key>.versioning: true (the default for purpose checkpoints and models)", [BUCKET],
               checkov="CKV_GCP_78", source="https://cloud.google.com/storage/docs/object-versioning")
def bucket_versioning(r: Resource) -> list[str]:
    purpose = r.tags().get(PURPOSE_TAG)
    if purpose in ("checkpoints", "models") and not truthy(r.get("versioning.enabled")):
        return [f"{purpose} bucket is not versioned (versioning.enabled)"]
    return []


@resource_rule("DF-GCP-005", "every GCS bucket has lifecycle rules", "mandatory",
               "dragonfarm:troughs.<key>.lifecycle", [BUCKET],
               source="https://cloud.google.com/storage/docs/lifecycle")
def bucket_lifecycle(r: Resource) -> list[str]:
    return [] if items(r.get("lifecycleRules")) else ["bucket has no lifecycle rule"]


@resource_rule("DF-GCP-006", "GKE nodes private; endpoint private or open only to listed CIDRs", "mandatory",
               "dragonfarm:breeding_ground.deploy_from (inside-network) or public_endpoint_cidrs (your egress CIDRs); "
               "never controlPlaneEndpointsConfig.dnsEndpointConfig.allowExternalTraffic",
               [CLUSTER], checkov="CKV_GCP_18, CKV_GCP_20, CKV_GCP_64",
               source=f"{GKE_DOCS}/concepts/network-isolation")
def gke_endpoint(r: Resource) -> list[str]:
    out = []
    if not truthy(r.get("privateClusterConfig.enablePrivateNodes")):
        out.append("nodes get public IPs (privateClusterConfig.enablePrivateNodes)")
    if not truthy(r.get("privateClusterConfig.enablePrivateEndpoint")):
        blocks = known_items(r.get("masterAuthorizedNetworksConfig.cidrBlocks"), f"{r.name}: cidrBlocks")
        cidrs = [b.get("cidrBlock") for b in blocks if isinstance(b, Mapping)]
        if not cidrs or any(open_to_world(c, f"{r.name}: cidrBlocks.cidrBlock") for c in cidrs):
            out.append(f"public endpoint open to {', '.join(map(str, cidrs)) or 'any address (no master authorized networks)'}")
        elif truthy(r.get("masterAuthorizedNetworksConfig.gcpPublicCidrsAccessEnabled")):
            out.append("public endpoint open to all Google Cloud public addresses (gcpPublicCidrsAccessEnabled)")
    # The DNS-based endpoint is reached from anywhere Google Cloud APIs are, guarded by IAM only: authorized
    # networks do not apply to it (GKE network isolation, "DNS-based endpoint").
    if truthy(r.get("controlPlaneEndpointsConfig.dnsEndpointConfig.allowExternalTraffic")):
        out.append("the DNS-based control-plane endpoint takes traffic from anywhere, bypassing authorized networks "
                   "(controlPlaneEndpointsConfig.dnsEndpointConfig.allowExternalTraffic)")
    return out


@resource_rule("DF-GCP-007", "GKE Workload Identity on", "mandatory",
               "breeding ground: workloadIdentityConfig.workloadPool '<project>.svc.id.goog' (components/breeding_ground/gcp.py)",
               [CLUSTER], source=f"{GKE_DOCS}/how-to/workload-identity")
def gke_workload_identity(r: Resource) -> list[str]:
    pool = r.get("workloadIdentityConfig.workloadPool")
    return [] if isinstance(pool, str) and pool.endswith(".svc.id.goog") else ["Workload Identity is off (workloadIdentityConfig)"]


@resource_rule("DF-GCP-008", "GKE node pools use the GKE metadata server", "mandatory",
               "breeding ground: nodeConfig.workloadMetadataConfig.mode GKE_METADATA (components/breeding_ground/gcp.py)",
               [NODE_POOL], checkov="CKV_GCP_69", source=f"{GKE_DOCS}/how-to/workload-identity")
def gke_metadata(r: Resource) -> list[str]:
    mode = r.get("nodeConfig.workloadMetadataConfig.mode")
    return [] if mode == "GKE_METADATA" else [f"pods can reach the node's metadata server (workloadMetadataConfig.mode {mode!r})"]


@resource_rule("DF-GCP-009", "GKE enforces network policy", "mandatory",
               "breeding ground: datapathProvider ADVANCED_DATAPATH (Dataplane V2) (components/breeding_ground/gcp.py)",
               [CLUSTER], checkov="CKV_GCP_12", source=f"{GKE_DOCS}/concepts/dataplane-v2")
def gke_network_policy(r: Resource) -> list[str]:
    if r.get("datapathProvider") == "ADVANCED_DATAPATH" or truthy(r.get("networkPolicy.enabled")):
        return []
    return ["network policy is not enforced (neither Dataplane V2 nor networkPolicy.enabled)"]


@resource_rule("DF-GCP-010", "GKE secrets encrypted with the farm's Cloud KMS key", "mandatory",
               "breeding ground: databaseEncryption ENCRYPTED with the fence key (components/breeding_ground/gcp.py)",
               [CLUSTER], source=f"{GKE_DOCS}/how-to/encrypting-secrets")
def gke_secrets(r: Resource) -> list[str]:
    if r.get("databaseEncryption.state") != "ENCRYPTED":
        return ["application-layer secrets encryption is off (databaseEncryption)"]
    problem = cmek_problem(r.get("databaseEncryption.keyName"), "databaseEncryption.keyName")
    return [f"application-layer secrets encryption: {problem}"] if problem else []


@resource_rule("DF-GCP-011", "GKE node pools auto-repair", "mandatory",
               "breeding ground: management.autoRepair true (components/breeding_ground/gcp.py)", [NODE_POOL],
               checkov="CKV_GCP_9", source=f"{GKE_DOCS}/how-to/node-auto-repair")
def gke_auto_repair(r: Resource) -> list[str]:
    repair = r.get("management.autoRepair")
    # The provider defaults autoRepair to true when `management` is absent.
    return [] if repair is None or truthy(repair) else ["node auto-repair is off (management.autoRepair)"]


@resource_rule("DF-GCP-012", "GKE control-plane API server logs are collected", "mandatory",
               "breeding ground: loggingConfig.enableComponents includes APISERVER (components/breeding_ground/gcp.py)",
               [CLUSTER], checkov="CKV_GCP_1", source=f"{GKE_DOCS}/how-to/view-logs")
def gke_logging(r: Resource) -> list[str]:
    components = items(r.get("loggingConfig.enableComponents"))
    if r.get("loggingService") == "none":
        return ["cluster logging is off (loggingService none)"]
    return [] if "APISERVER" in components else ["API server logs are not collected (loggingConfig.enableComponents)"]


@stack_rule("DF-GCP-013", "GCP log retention is set for the project's logs", "mandatory",
            "dragonfarm:fence.log_retention_days",
            source="https://cloud.google.com/logging/docs/buckets#custom-retention")
def log_retention(stack: Stack) -> list[tuple[Resource | None, str]]:
    if not stack.of_type(CLUSTER):
        return []
    for b in stack.of_type(LOG_BUCKET):
        if b.get("bucketId") == "_Default" and isinstance(b.get("retentionDays"), (int, float)):
            return []
    cluster = stack.of_type(CLUSTER)[0]
    return [(cluster, "no retention set on the _Default log bucket that keeps GKE and audit logs (ProjectBucketConfig)")]


def _disk_key_field(r: Resource) -> str:
    return "bootDisk.kmsKeySelfLink" if r.type == INSTANCE else "nodeConfig.bootDiskKmsKey"


@resource_rule("DF-GCP-014", "GKE node and dev-box disks encrypted with the farm's Cloud KMS key", "mandatory",
               "breeding ground / barn: bootDiskKmsKey / kmsKeySelfLink take the fence key (the cluster's default pool "
               "too)", [NODE_POOL, INSTANCE, CLUSTER], checkov="CKV_GCP_38",
               source="https://cloud.google.com/compute/docs/disks/customer-managed-encryption")
def disk_cmek(r: Resource) -> list[str]:
    if r.type == CLUSTER and truthy(r.get("enableAutopilot")):
        return []
    field = _disk_key_field(r)
    problem = cmek_problem(r.get(field), field)
    what = "boot disk" if r.type == INSTANCE else "node boot disks"
    return [f"{what}: {problem}"] if problem else []


def _ports(allow: Mapping[str, Any], where: str) -> list[int]:
    protocol = str(known(allow.get("protocol"), f"{where}.protocol")).lower()
    if protocol == "all":
        return list(SENSITIVE_PORTS)
    if protocol not in ("tcp", "6"):
        return []
    ports = known_items(allow.get("ports"), f"{where}.ports")
    if not ports:
        return list(SENSITIVE_PORTS)
    hit = []
    for p in ports:
        low, _, high = str(known(p, f"{where}.ports")).partition("-")
        lo = port(low, f"{where}.ports", 0)
        hi = port(high, f"{where}.ports", 0) if high else lo
        hit += [s for s in SENSITIVE_PORTS if lo <= s <= hi]
    return hit


@resource_rule("DF-GCP-015", "no 0.0.0.0/0 ingress to SSH, RDP or the Kubernetes API", "mandatory",
               "barn: SSH only from the IAP range 35.235.240.0/20 (components/barn/gcp.py)", [FIREWALL],
               checkov="CKV_GCP_2, CKV_GCP_3", source="https://cloud.google.com/firewall/docs/firewalls")
def firewall_world(r: Resource) -> list[str]:
    if str(r.get("direction") or "INGRESS").upper() != "INGRESS" or truthy(r.get("disabled")):
        return []
    ranges = known_items(r.get("sourceRanges"), f"{r.name}: sourceRanges")
    # An ingress rule with no source ranges, tags or service accounts applies to every source (0.0.0.0/0).
    no_source = not ranges and not items(r.get("sourceTags")) and not items(r.get("sourceServiceAccounts"))
    if not no_source and not any(open_to_world(c, f"{r.name}: sourceRanges") for c in ranges):
        return []
    allows = known_items(r.get("allows"), f"{r.name}: allows")
    ports = sorted({p for i, a in enumerate(allows) if isinstance(a, Mapping) for p in _ports(a, f"{r.name}: allows[{i}]")})
    source = "any source (no sourceRanges, sourceTags or sourceServiceAccounts)" if no_source else "0.0.0.0/0"
    return [f"allows port(s) {', '.join(map(str, ports))} from {source}"] if ports else []


@resource_rule("DF-GCP-016", "dev boxes get no external IP", "mandatory",
               "barn: no accessConfigs on the network interface; SSH through IAP (components/barn/gcp.py)", [INSTANCE],
               checkov="CKV_GCP_40", source="https://cloud.google.com/compute/docs/ip-addresses#externaladdresses")
def instance_external_ip(r: Resource) -> list[str]:
    for nic in items(r.get("networkInterfaces")):
        if isinstance(nic, Mapping) and items(nic.get("accessConfigs")):
            return ["a network interface has an external IP (accessConfigs)"]
    return []


@resource_rule("DF-GCP-017", "Cloud KMS keys rotate at least every 90 days", "mandatory",
               "fence: rotationPeriod on the farm key (components/fence/gcp.py)", [CRYPTO_KEY], checkov="CKV_GCP_43",
               source="https://cloud.google.com/kms/docs/key-rotation")
def kms_rotation(r: Resource) -> list[str]:
    period = r.get("rotationPeriod")
    seconds = float(str(period).rstrip("s")) if isinstance(period, str) and period.rstrip("s").replace(".", "").isdigit() else None
    if seconds is None or seconds > 90 * 86400:
        return [f"key rotation period {period!r} is missing or longer than 90 days"]
    return []


@stack_rule("DF-GCP-018", "GCS buckets, GKE secrets and disks use the farm's Cloud KMS key, not any key", "mandatory",
            "fence: every layer takes the fence key (dragonfarm:fence.existing_key_id if you bring one); do not hand a "
            "component another key",
            source="https://cloud.google.com/kms/docs/cmek")
def farm_key_everywhere(stack: Stack) -> list[tuple[Resource | None, str | Unknown]]:
    keys = farm_keys(stack)
    if keys is None:
        return []

    def one(r: Resource) -> list[tuple[Resource | None, str]]:
        if r.type == BUCKET:
            fields = ["encryption.defaultKmsKeyName"]
        elif r.type == CLUSTER:
            fields = ["databaseEncryption.keyName", "nodeConfig.bootDiskKmsKey"]
        else:
            fields = [_disk_key_field(r)]
        out: list[tuple[Resource | None, str]] = []
        for field in fields:
            ref = r.get(field)
            # No key, or not a crypto key, is DF-GCP-003/010/014's finding; here: a crypto key that is not the farm's.
            if not cmek_problem(ref, field) and crypto_key(str(ref)) not in keys:
                out.append((r, f"{field} names a Cloud KMS key that is not the farm's ({ref})"))
        return out

    return each(stack.of_type(BUCKET, CLUSTER, NODE_POOL, INSTANCE), one)


@resource_rule("DF-GCP-019", "the farm grants no basic role (owner, editor, viewer) on the project", "mandatory",
               "the component that grants the role: use a predefined role (components/<layer>/gcp.py; "
               "dragonfarm:breeding_ground.teams.<team> members get container roles)",
               [*PROJECT_IAM, PROJECT_IAM_POLICY], checkov="CKV_GCP_117",
               source="https://cloud.google.com/iam/docs/roles-overview#basic")
def basic_roles(r: Resource) -> list[str]:
    if r.type == PROJECT_IAM_POLICY:
        data = r.get("policyData")
        try:
            policy = json.loads(data) if isinstance(data, str) else data
        except ValueError:
            policy = None
        roles = [b.get("role") for b in items(policy.get("bindings") if isinstance(policy, Mapping) else None)
                 if isinstance(b, Mapping)]
    else:
        roles = [r.get("role")]
    return [f"grants the basic role {role}" for role in roles if role in BASIC_ROLES]
