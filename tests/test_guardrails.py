"""Guardrails: the shipped stacks pass every mandatory rule; every rule fires on a seeded insecure variant of a shipped
plan (one input changed) and names the resource that was changed; waivers; the CLI; the README's rules table."""

from __future__ import annotations

import copy
import json
import re
import sys
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

from dragonfarm.cli import VIOLATION, app
from dragonfarm.guardrails import BY_ID, RULES, check, resources_from_plan, rules_markdown
from dragonfarm.guardrails.model import COST_TAG_KEYS
from tests.conftest import ROOT, STACKS, planned, stack_config

_json: dict[str, dict[str, Any]] = {}


def plan_json(stack: str) -> dict[str, Any]:
    """The stack's Plan as JSON data, planned once per session; callers get a deep copy to mutate."""
    if stack not in _json:
        _json[stack] = json.loads(planned(stack).to_json())
    return copy.deepcopy(_json[stack])


def row(plan: dict[str, Any], type_: str, name_part: str) -> dict[str, Any]:
    found = [r for r in plan["resources"] if r["type"] == type_ and name_part in r["name"]]
    assert len(found) == 1, f"{len(found)} {type_} named *{name_part}*"
    return found[0]


def set_path(d: dict[str, Any], path: str, value: Any) -> None:
    *head, last = path.split(".")
    for part in head:
        d = d[int(part)] if isinstance(d, list) else d.setdefault(part, {})
    if isinstance(d, list):
        d[int(last)] = value
    elif value is DELETE:
        del d[last]
    else:
        d[last] = value


DELETE = object()


def findings(plan: dict[str, Any], rule_id: str) -> list[tuple[str, str]]:
    report = check(resources_from_plan(plan), only=[BY_ID[rule_id]])
    return [(f.name, f.message) for f in report.findings]


# ---- seeded variants: (rule, stack, type, name part, path, new value, name the finding must carry) ----------

S3 = "aws:s3/"
AZ_SA = "azure-native:storage:StorageAccount"
AZ_AKS = "azure-native:containerservice:ManagedCluster"
GKE = "gcp:container/cluster:Cluster"
GKE_POOL = "gcp:container/nodePool:NodePool"
KARPENTER = "kubernetes:karpenter.sh/v1:NodePool"
WILDCARD = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})

Seed = tuple[str, str, str, str, str, Any, str]
SEEDS: list[Seed] = [
    ("DF-AWS-001", "aws-dev", f"{S3}bucketPublicAccessBlock:BucketPublicAccessBlock", "checkpoints", "blockPublicPolicy", False, "dfarm-aws-dev-checkpoints-public-access"),
    ("DF-AWS-002", "aws-dev", f"{S3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "models", "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm", "AES256", "dfarm-aws-dev-models-encryption"),
    ("DF-AWS-003", "aws-dev", f"{S3}bucketVersioning:BucketVersioning", "checkpoints", "versioningConfiguration.status", "Suspended", "dfarm-aws-dev-checkpoints"),
    ("DF-AWS-004", "aws-dev", f"{S3}bucketLifecycleConfiguration:BucketLifecycleConfiguration", "datasets", "rules", [], "dfarm-aws-dev-datasets"),
    ("DF-AWS-005", "aws-dev", f"{S3}bucketPolicy:BucketPolicy", "models", "policy", json.dumps({"Statement": []}), "dfarm-aws-dev-models"),
    ("DF-AWS-006", "aws-dev", "aws:eks/cluster:Cluster", "cluster", "vpcConfig.publicAccessCidrs", ["0.0.0.0/0"], "dfarm-aws-dev-cluster"),
    ("DF-AWS-007", "aws-dev", "aws:eks/cluster:Cluster", "cluster", "encryptionConfig", DELETE, "dfarm-aws-dev-cluster"),
    ("DF-AWS-008", "aws-prod", "aws:eks/cluster:Cluster", "cluster", "enabledClusterLogTypes", ["api"], "dfarm-aws-prod-cluster"),
    ("DF-AWS-009", "aws-dev", "aws:cloudwatch/logGroup:LogGroup", "flow-logs", "retentionInDays", DELETE, "dfarm-aws-dev-fence-flow-logs"),
    ("DF-AWS-010", "aws-dev", "aws:cloudwatch/logGroup:LogGroup", "control-plane", "kmsKeyId", DELETE, "dfarm-aws-dev-cluster-control-plane"),
    ("DF-AWS-011", "aws-dev", "aws:ec2/instance:Instance", "devbox", "metadataOptions.httpTokens", "optional", "dfarm-aws-dev-devbox"),
    ("DF-AWS-012", "aws-dev", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "train", "spec.metadataOptions.httpTokens", "optional", "dfarm-aws-dev-cluster-nodeclass-train"),
    ("DF-AWS-013", "aws-dev", "aws:ec2/launchTemplate:LaunchTemplate", "system", "blockDeviceMappings.0.ebs.encrypted", "false", "dfarm-aws-dev-cluster-system"),
    ("DF-AWS-014", "aws-dev", "aws:ec2/instance:Instance", "devbox", "associatePublicIpAddress", True, "dfarm-aws-dev-devbox"),
    ("DF-AWS-015", "aws-prod", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "api-from", "cidrIpv4", "0.0.0.0/0", "dfarm-aws-prod-cluster-api-from-10-10-0-0-16"),
    ("DF-AWS-016", "aws-dev", "aws:iam/rolePolicy:RolePolicy", "nightly-stop", "policy", WILDCARD, "dfarm-aws-dev-devbox-nightly-stop"),
    ("DF-AWS-017", "aws-prod", "aws:kms/key:Key", "fence-key", "enableKeyRotation", False, "dfarm-aws-prod-fence-key"),
    ("DF-GCP-001", "gcp-dev", "gcp:storage/bucket:Bucket", "checkpoints", "publicAccessPrevention", "inherited", "dfarm-gcp-dev-checkpoints"),
    ("DF-GCP-002", "gcp-dev", "gcp:storage/bucket:Bucket", "datasets", "uniformBucketLevelAccess", False, "dfarm-gcp-dev-datasets"),
    ("DF-GCP-003", "gcp-dev", "gcp:storage/bucket:Bucket", "logs", "encryption", DELETE, "dfarm-gcp-dev-logs"),
    ("DF-GCP-004", "gcp-prod", "gcp:storage/bucket:Bucket", "models", "versioning.enabled", False, "dfarm-gcp-prod-models"),
    ("DF-GCP-005", "gcp-dev", "gcp:storage/bucket:Bucket", "logs", "lifecycleRules", [], "dfarm-gcp-dev-logs"),
    ("DF-GCP-006", "gcp-dev", GKE, "cluster", "masterAuthorizedNetworksConfig.cidrBlocks.0.cidrBlock", "0.0.0.0/0", "dfarm-gcp-dev-cluster"),
    ("DF-GCP-007", "gcp-dev", GKE, "cluster", "workloadIdentityConfig", DELETE, "dfarm-gcp-dev-cluster"),
    ("DF-GCP-008", "gcp-dev", GKE_POOL, "l4", "nodeConfig.workloadMetadataConfig.mode", "GCE_METADATA", "dfarm-gcp-dev-cluster-l4"),
    ("DF-GCP-009", "gcp-dev", GKE, "cluster", "datapathProvider", "LEGACY_DATAPATH", "dfarm-gcp-dev-cluster"),
    ("DF-GCP-010", "gcp-prod", GKE, "cluster", "databaseEncryption.state", "DECRYPTED", "dfarm-gcp-prod-cluster"),
    ("DF-GCP-011", "gcp-dev", GKE_POOL, "l4", "management.autoRepair", False, "dfarm-gcp-dev-cluster-l4"),
    ("DF-GCP-012", "gcp-dev", GKE, "cluster", "loggingConfig.enableComponents", ["SYSTEM_COMPONENTS"], "dfarm-gcp-dev-cluster"),
    ("DF-GCP-013", "gcp-dev", "gcp:logging/projectBucketConfig:ProjectBucketConfig", "log-retention", "retentionDays", DELETE, "dfarm-gcp-dev-cluster"),
    ("DF-GCP-014", "gcp-dev", GKE_POOL, "l4", "nodeConfig.bootDiskKmsKey", DELETE, "dfarm-gcp-dev-cluster-l4"),
    ("DF-GCP-015", "gcp-dev", "gcp:compute/firewall:Firewall", "iap-ssh", "sourceRanges", ["0.0.0.0/0"], "dfarm-gcp-dev-devbox-iap-ssh"),
    ("DF-GCP-016", "gcp-dev", "gcp:compute/instance:Instance", "devbox", "networkInterfaces.0.accessConfigs", [{}], "dfarm-gcp-dev-devbox"),
    ("DF-GCP-017", "gcp-dev", "gcp:kms/cryptoKey:CryptoKey", "fence-key", "rotationPeriod", "31536000s", "dfarm-gcp-dev-fence-key"),
    ("DF-AZ-001", "azure-dev", AZ_SA, "ckpt", "allowBlobPublicAccess", True, "dfarm-az-dev-ckpt"),
    ("DF-AZ-002", "azure-dev", "azure-native:storage:BlobContainer", "ckpt-data", "publicAccess", "Blob", "dfarm-az-dev-ckpt-data"),
    ("DF-AZ-003", "azure-dev", AZ_SA, "data", "encryption.keySource", "Microsoft.Storage", "dfarm-az-dev-data"),
    ("DF-AZ-004", "azure-dev", AZ_SA, "logs", "minimumTlsVersion", "TLS1_0", "dfarm-az-dev-logs"),
    ("DF-AZ-005", "azure-dev", AZ_SA, "ckpt", "allowSharedKeyAccess", True, "dfarm-az-dev-ckpt"),
    ("DF-AZ-006", "azure-dev", "azure-native:storage:BlobServiceProperties", "ckpt", "isVersioningEnabled", False, "dfarm-az-dev-ckpt"),
    ("DF-AZ-007", "azure-dev", "azure-native:storage:ManagementPolicy", "data", "policy.rules.0.enabled", False, "dfarm-az-dev-data"),
    ("DF-AZ-008", "azure-dev", AZ_AKS, "cluster", "apiServerAccessProfile.authorizedIPRanges", ["0.0.0.0/0"], "dfarm-az-dev-cluster"),
    ("DF-AZ-009", "azure-dev", AZ_AKS, "cluster", "securityProfile.workloadIdentity.enabled", False, "dfarm-az-dev-cluster"),
    ("DF-AZ-010", "azure-dev", AZ_AKS, "cluster", "networkProfile.networkPolicy", DELETE, "dfarm-az-dev-cluster"),
    ("DF-AZ-011", "azure-dev", AZ_AKS, "cluster", "disableLocalAccounts", False, "dfarm-az-dev-cluster"),
    ("DF-AZ-015", "azure-dev", "azure-native:network:NetworkSecurityGroup", "fence-nodes", "securityRules.0",
     {"name": "ssh", "access": "Allow", "direction": "Inbound", "protocol": "Tcp", "sourceAddressPrefix": "*",
      "destinationPortRange": "22", "priority": 100}, "dfarm-az-dev-fence-nodes"),
    ("DF-AZ-016", "azure-prod", "azure-native:keyvault:Vault", "fence-kv", "properties.enablePurgeProtection", False, "dfarm-az-prod-fence-kv"),
    ("DF-AZ-012", "azure-prod", AZ_AKS, "cluster", "securityProfile.azureKeyVaultKms", DELETE, "dfarm-az-prod-cluster"),
    ("DF-AZ-013", "azure-prod", AZ_AKS, "cluster", "diskEncryptionSetID", DELETE, "dfarm-az-prod-cluster"),
    ("DF-AZ-017", "azure-dev", "azure-native:network:NetworkInterface", "box-nic", "ipConfigurations.0.publicIPAddress", {"id": "/pip"}, "dfarm-az-dev-box-nic"),
    ("DF-AZ-018", "azure-dev", "azure-native:compute:VirtualMachine", "dfarm-az-dev-box", "storageProfile.osDisk.managedDisk.diskEncryptionSet", DELETE, "dfarm-az-dev-box"),
    ("DF-K8S-001", "aws-dev", "kubernetes:networking.k8s.io/v1:NetworkPolicy", "research", "spec.policyTypes", ["Egress"], "dfarm-aws-dev-cluster-gpu-team-research"),
    ("DF-K8S-002", "gcp-prod", "kubernetes:core/v1:ResourceQuota", "research", "spec.hard", {"requests.cpu": "8"}, "dfarm-gcp-prod-cluster-gpu-team-research"),
    ("DF-K8S-003", "aws-dev", KARPENTER, "train", "spec.template.spec.taints", [], "dfarm-aws-dev-cluster-nodepool-train"),
    ("DF-K8S-004", "aws-dev", "kubernetes:helm.sh/v3:Release", "kueue", "version", "^0.14", "dfarm-aws-dev-cluster-gpu-kueue"),
    ("DF-K8S-005", "azure-prod", "kubernetes:core/v1:Namespace", "serving", "metadata.labels.pod-security.kubernetes.io/enforce", "privileged", "dfarm-az-prod-cluster-gpu-team-serving"),
    ("DF-COST-001", "aws-dev", "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass", "infer", "spec.tags.dragonfarm-farm", DELETE, "dfarm-aws-dev-cluster-nodeclass-infer"),
    ("DF-COST-002", "gcp-dev", GKE_POOL, "l4", "autoscaling.totalMaxNodeCount", DELETE, "dfarm-gcp-dev-cluster-l4"),
    ("DF-COST-003", "aws-dev", KARPENTER, "infer", "spec.limits", {"cpu": "64"}, "dfarm-aws-dev-cluster-nodepool-infer"),
    ("DF-COST-004", "gcp-dev", GKE_POOL, "l4", "nodeConfig.spot", False, "dfarm-gcp-dev-cluster-l4"),
    ("DF-COST-005", "aws-dev", "aws:scheduler/schedule:Schedule", "nightly-stop", "target.arn", "arn:aws:scheduler:::aws-sdk:ec2:startInstances", "dfarm-aws-dev-devbox"),
    ("DF-COST-006", "azure-dev", "azure-native:consumption:Budget", "monthly", "notifications.forecast-100", DELETE, "dfarm-az-dev-ledger-monthly"),
    ("DF-COST-008", "gcp-prod", "gcp:kms/cryptoKey:CryptoKey", "fence-key", "!protect", False, "dfarm-gcp-prod-fence-key"),
    ("DF-COST-010", "aws-dev", "aws:s3/bucket:Bucket", "models", "tags.dragonfarm-purpose", DELETE, "dfarm-aws-dev-models"),
    ("DF-AZ-019", "azure-dev", "azure-native:containerservice:AgentPool", "t4", "enableNodePublicIP", True, "dfarm-az-dev-cluster-t4"),
    ("DF-AZ-020", "azure-dev", "azure-native:authorization:RoleDefinition", "stop-spend", "permissions.0.actions", ["*"], "dfarm-az-dev-fence-stop-spend"),
]

# Rules whose seeded variant is not one changed input: the variant is built by a function.


def _no_budget(plan: dict[str, Any]) -> tuple[dict[str, Any], str]:
    plan["resources"] = [r for r in plan["resources"] if r["type"] != "aws:budgets/budget:Budget"]
    return plan, "(stack)"


def _no_audit_setting(plan: dict[str, Any]) -> tuple[dict[str, Any], str]:
    plan["resources"] = [r for r in plan["resources"] if r["type"] != "azure-native:monitor:DiagnosticSetting"]
    return plan, "dfarm-az-dev-cluster"


def _no_cluster_queues(plan: dict[str, Any]) -> tuple[dict[str, Any], str]:
    plan["resources"] = [r for r in plan["resources"] if r["type"] != "kubernetes:kueue.x-k8s.io/v1beta1:ClusterQueue"]
    return plan, "dfarm-gcp-dev-cluster-l4"


def _workspace_keeps_forever(plan: dict[str, Any]) -> tuple[dict[str, Any], str]:
    del row(plan, "azure-native:operationalinsights:Workspace", "logs")["inputs"]["retentionInDays"]
    return plan, "dfarm-az-prod-cluster"


BUILT: dict[str, tuple[str, Callable[[dict[str, Any]], tuple[dict[str, Any], str]]]] = {
    "DF-COST-007": ("aws-dev", _no_budget),
    "DF-AZ-014": ("azure-dev", _no_audit_setting),
    "DF-COST-009": ("gcp-dev", _no_cluster_queues),
}


def seeded(seed: Seed) -> dict[str, Any]:
    rule_id, stack, type_, part, path, value, _ = seed
    plan = plan_json(stack)
    target = row(plan, type_, part)
    if path.startswith("!"):
        target[path[1:]] = value
    elif path.startswith("metadata.labels."):
        target["inputs"]["metadata"]["labels"][path.removeprefix("metadata.labels.")] = value
    elif path.startswith("spec.tags."):
        del target["inputs"]["spec"]["tags"][path.removeprefix("spec.tags.")]
    elif path.startswith("notifications."):
        del target["inputs"]["notifications"][path.removeprefix("notifications.")]
    else:
        set_path(target["inputs"], path, value)
    return plan


def test_the_registry_has_at_least_35_rules_with_ids_titles_severities_and_fixes():
    assert len(RULES) >= 35
    assert len({r.id for r in RULES}) == len(RULES)
    for r in RULES:
        assert re.fullmatch(r"DF-(AWS|GCP|AZ|K8S|COST)-\d{3}", r.id), r.id
        assert r.severity in ("mandatory", "advisory") and r.title and r.fix and r.source
        assert (r.kind == "resource") == bool(r.types), r.id


def test_every_rule_has_a_seeded_variant():
    from tests.test_guardrails_hardening import HARDENING_BUILT, HARDENING_SEEDS

    seeded_ids = [s[0] for s in SEEDS + HARDENING_SEEDS] + list(BUILT) + list(HARDENING_BUILT)
    assert sorted(seeded_ids) == sorted(r.id for r in RULES), "a rule without a firing test is a defect"


@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stacks_pass_every_mandatory_rule(stack):
    plan = plan_json(stack)
    report = check(resources_from_plan(plan), waivers=plan["waivers"])
    assert [(f.rule, f.name, f.message) for f in report.mandatory] == []
    assert report.not_evaluated == []
    assert all(f.waived for f in report.advisory), "every advisory finding on a shipped stack is waived with a reason"


@pytest.mark.parametrize("seed", SEEDS, ids=[s[0] for s in SEEDS])
def test_rule_passes_shipped_and_fires_on_its_seeded_variant(seed):
    rule_id, stack, *_, expected_name = seed
    base = plan_json(stack)
    assert findings(base, rule_id) == [], f"{rule_id} already fires on {stack} before the change"
    found = findings(seeded(seed), rule_id)
    assert found, f"{rule_id} does not fire on its seeded variant"
    assert expected_name in [name for name, _ in found]


@pytest.mark.parametrize("rule_id", sorted(BUILT))
def test_rule_fires_on_its_built_variant(rule_id):
    stack, build = BUILT[rule_id]
    plan, expected_name = build(plan_json(stack))
    assert expected_name in [name for name, _ in findings(plan, rule_id)]


def test_audit_logs_need_a_workspace_that_keeps_them_a_set_time():
    plan, name = _workspace_keeps_forever(plan_json("azure-prod"))
    assert [n for n, _ in findings(plan, "DF-AZ-014")] == [name]


def test_a_renamed_farm_workspace_without_retention_is_not_taken_for_an_outside_one():
    plan = plan_json("azure-prod")
    workspace = row(plan, "azure-native:operationalinsights:Workspace", "logs")["inputs"]
    del workspace["workspaceName"], workspace["retentionInDays"]
    assert [n for n, _ in findings(plan, "DF-AZ-014")] == ["dfarm-az-prod-cluster"]


def test_azure_dev_box_needs_its_auto_shutdown_enabled_and_aimed_at_it():
    plan = plan_json("azure-dev")
    assert findings(plan, "DF-COST-005") == []
    row(plan, "azure-native:devtestlab:GlobalSchedule", "nightly-stop")["inputs"]["status"] = "Disabled"
    assert [n for n, _ in findings(plan, "DF-COST-005")] == ["dfarm-az-dev-box"]
    plan = plan_json("azure-dev")
    row(plan, "azure-native:devtestlab:GlobalSchedule", "nightly-stop")["inputs"]["targetResourceId"] = "/x/virtualMachines/other"
    assert [m for _, m in findings(plan, "DF-COST-005")] == ["auto-shutdown dfarm-az-dev-box-nightly-stop does not shut this VM down "
                                                             "(taskType, targetResourceId)"]


@pytest.mark.parametrize("stack,type_,part,key", [
    ("aws-dev", "aws:ec2/instance:Instance", "devbox", "userData"),
    ("gcp-dev", "gcp:compute/instance:Instance", "devbox", "metadata.startup-script"),
    ("azure-dev", "azure-native:compute:VirtualMachine", "dfarm-az-dev-box", "osProfile.customData"),
])
def test_a_dev_box_without_the_idle_watcher_has_no_idle_stop(stack, type_, part, key):
    plan = plan_json(stack)
    box = row(plan, type_, part)
    set_path(box["inputs"], key, "#!/bin/bash\necho hello\n")
    assert [(n, m) for n, m in findings(plan, "DF-COST-005")] == [(box["name"], "no idle watcher in the first-boot script "
                                                                                  "(dragonfarm-idle-watch)")]


def test_a_disabled_aws_nightly_schedule_is_caught():
    plan = plan_json("aws-dev")
    row(plan, "aws:scheduler/schedule:Schedule", "nightly-stop")["inputs"]["state"] = "DISABLED"
    assert [n for n, _ in findings(plan, "DF-COST-005")] == ["dfarm-aws-dev-devbox"]


def test_an_unattached_gcp_nightly_schedule_is_caught():
    plan = plan_json("gcp-dev")
    row(plan, "gcp:compute/instance:Instance", "devbox")["inputs"]["resourcePolicies"] = "projects/p/regions/r/resourcePolicies/other"
    assert [n for n, _ in findings(plan, "DF-COST-005")] == ["dfarm-gcp-dev-devbox"]


def test_a_karpenter_gpu_pool_is_known_by_its_instance_types_too():
    # Without the GPU label and the GPU limit, a pool of g5 instances (EC2 accelerated computing) is still a GPU pool.
    plan = plan_json("aws-dev")
    pool = row(plan, "kubernetes:karpenter.sh/v1:NodePool", "train")["inputs"]
    del pool["spec"]["template"]["metadata"]["labels"]["nvidia.com/gpu.present"]
    pool["spec"]["limits"] = {"cpu": "64"}
    assert [n for n, _ in findings(plan, "DF-COST-003")] == ["dfarm-aws-dev-cluster-nodepool-train"]


def test_a_gpu_pool_inline_in_an_aks_cluster_is_judged_too():
    # Standard_NC24ads_A100_v4: an A100 size (gpu_catalog.csv) in the cluster's own agentPoolProfiles.
    plan = plan_json("azure-dev")
    cluster = row(plan, AZ_AKS, "cluster")["inputs"]
    cluster["agentPoolProfiles"].append({"name": "gpu", "vmSize": "Standard_NC24ads_A100_v4", "enableAutoScaling": True, "minCount": 1})
    assert [m for _, m in findings(plan, "DF-COST-002")] == ["inline GPU pool gpu has no ceiling (maxCount)"]
    assert [n for n, _ in findings(plan, "DF-COST-004")] == ["dfarm-az-dev-cluster"]


@pytest.mark.parametrize("type_,part", [("azure-native:operationalinsights:Workspace", "logs"),
                                        ("azure-native:devtestlab:GlobalSchedule", "nightly-stop"),
                                        ("azure-native:compute:VirtualMachineExtension", "entra-login")])
def test_azure_resources_without_provider_default_tags_need_their_own(type_, part):
    plan = plan_json("azure-dev")
    target = row(plan, type_, part)
    del target["inputs"]["tags"]
    assert [n for n, _ in findings(plan, "DF-COST-001")] == [target["name"]]


def test_dev_rule_ignores_prod_and_prod_rule_ignores_dev():
    prod = plan_json("gcp-prod")
    for pool in prod["resources"]:
        if pool["type"] == GKE_POOL and pool["inputs"].get("nodeConfig", {}).get("guestAccelerators"):
            pool["inputs"]["nodeConfig"]["spot"] = False
    assert findings(prod, "DF-COST-004") == []
    dev = plan_json("gcp-dev")
    row(dev, "gcp:storage/bucket:Bucket", "logs")["protect"] = False
    assert findings(dev, "DF-COST-008") == []


def test_an_unknown_input_is_not_evaluated_rather_than_failed():
    plan = plan_json("aws-dev")
    row(plan, f"{S3}bucketPublicAccessBlock:BucketPublicAccessBlock", "models")["inputs"]["blockPublicAcls"] = \
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"  # the wire's unknown boolean, as a preview sends it
    report = check(resources_from_plan(plan), only=[BY_ID["DF-AWS-001"]])
    assert report.findings == []
    assert [(rule, name) for rule, name, _ in report.not_evaluated] == [("DF-AWS-001", "dfarm-aws-dev-models-public-access")]


def test_cost_tag_keys_are_the_ledgers():
    from components.ledger.spec import cost_tags

    assert set(COST_TAG_KEYS) == set(cost_tags("p", "dev", {"team": "t"})) - {"team"}


def test_guardrails_import_without_pulumi_or_pydantic():
    import subprocess

    code = ("import sys; sys.modules['pulumi'] = None; sys.modules['pydantic'] = None; sys.modules['yaml'] = None; "
            "import dragonfarm.guardrails as g; print(len(g.RULES))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(RULES)


# ---- waivers ---------------------------------------------------------------------------------------------

def test_waiving_a_mandatory_or_unknown_rule_is_one_clear_line(tmp_path):
    from blueprints.config import ConfigError, load_farm

    config = {f"dragonfarm:{k}" if not k.startswith("dragonfarm:") else k: v
              for k, v in stack_config("azure-dev").items()}
    config["dragonfarm:waivers"] = {"DF-AZ-001": "we like public blobs", "DF-NOPE-001": "typo", "DF-K8S-004": " "}
    with pytest.raises(ConfigError) as err:
        load_farm(config, source="s.yaml")
    lines = str(err.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("s.yaml: dragonfarm:waivers.DF-AZ-001: got 'DF-AZ-001'; allowed: an advisory rule (DF-AZ-001 is mandatory")
    assert lines[1].endswith("waivers.DF-NOPE-001: got 'DF-NOPE-001'; allowed: the id of an advisory rule: DF-K8S-003, DF-K8S-004, DF-K8S-005")
    assert "waivers.DF-K8S-004" in lines[2] and "a reason" in lines[2]


def test_a_waiver_marks_an_advisory_finding_and_never_a_mandatory_one():
    plan = seeded(next(s for s in SEEDS if s[0] == "DF-K8S-004"))
    report = check(resources_from_plan(plan), waivers={"DF-K8S-004": "chart ranges on purpose", "DF-AWS-001": "ignored"})
    k8s = [f for f in report.findings if f.rule == "DF-K8S-004"]
    assert k8s and all(f.waived == "chart ranges on purpose" for f in k8s)
    mutated = seeded(next(s for s in SEEDS if s[0] == "DF-AWS-001"))
    report = check(resources_from_plan(mutated), waivers={"DF-AWS-001": "ignored"})
    assert [f.waived for f in report.findings if f.rule == "DF-AWS-001"] == [""]


# ---- the CLI ---------------------------------------------------------------------------------------------

runner = CliRunner()


def test_check_exits_violation_on_a_mandatory_failure_and_prints_the_fix(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(seeded(next(s for s in SEEDS if s[0] == "DF-AWS-006"))))
    result = runner.invoke(app, ["check", str(path), "--json"])
    assert result.exit_code == VIOLATION == 5
    body = json.loads(result.stdout)
    assert [(f["rule"], f["name"]) for f in body["findings"]] == [("DF-AWS-006", "dfarm-aws-dev-cluster")]
    assert "public_endpoint_cidrs" in body["findings"][0]["fix"]
    text = runner.invoke(app, ["check", str(path)], env={"COLUMNS": "250"})
    assert text.exit_code == VIOLATION
    assert "DF-AWS-006" in text.stdout and "1 mandatory" in text.stdout


def test_check_on_a_plan_with_only_waived_advisory_findings_exits_zero_and_shows_the_waivers(tmp_path):
    plan = seeded(next(s for s in SEEDS if s[0] == "DF-K8S-004"))
    plan["waivers"] = {"DF-K8S-004": "a chart range on purpose"}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    result = runner.invoke(app, ["check", str(path)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.stdout
    assert "waiver: DF-K8S-004: a chart range on purpose" in result.stdout and "0 mandatory" in result.stdout
    markdown = runner.invoke(app, ["check", str(path), "--markdown"])
    assert markdown.exit_code == 0 and "advisory (waived:" in markdown.stdout


def test_check_without_a_stack_is_bad_input():
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 2


def test_readme_rules_table_is_the_generated_one():
    result = runner.invoke(app, ["check", "--rules-markdown"])
    assert result.exit_code == 0 and result.stdout == rules_markdown()
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- rules:begin -->") + len("<!-- rules:begin -->\n")
    end = readme.index("<!-- rules:end -->")
    assert readme[start:end] == result.stdout, "README rules table is stale: paste `dragonfarm check --rules-markdown`"

