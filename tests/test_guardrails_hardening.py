"""Guardrail hardening: each defect a reviewer proved by mutating a shipped plan is a test here. Every mutation is one
change to a shipped plan (delete the linked resource, retarget a link, or change one input); the test asserts the
whole rule set's verdict: exactly the expected (rule, resource) pairs, so no unrelated rule fires. Unknown values
and rules that raise are "not evaluated", never a traceback."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from dragonfarm.guardrails import BY_ID, check, resources_from_plan
from dragonfarm.guardrails.model import UNKNOWN, Resource, Rule, Unknown, open_to_world
from dragonfarm.guardrails.rules_k8s import is_karpenter_gpu_pool
from tests.test_guardrails import DELETE, S3, WILDCARD, Seed, findings, plan_json, row, seeded, set_path

ANY = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"      # the wire's unknown string / any
NUMBER = "3eeb2bf0-c639-47a8-9e75-3b44932eb421"   # the wire's unknown number
ARRAY = "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2"    # the wire's unknown array

OTHER_AWS_KEY = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-4000-8000-000000000000"
OTHER_GCP_KEY = "projects/someone-else/locations/us-central1/keyRings/theirs/cryptoKeys/theirs"
GKE = "gcp:container/cluster:Cluster"
FIREWALL = "gcp:compute/firewall:Firewall"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ADDON = "aws:eks/addon:Addon"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PAB = f"{S3}bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = f"{S3}bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"

# Seeded variants of the rules this pass adds (one input changed; the finding names the changed resource).
# tests/test_guardrails.py counts these toward "every rule has a seeded variant".
HARDENING_SEEDS: list[Seed] = [
    ("DF-AWS-018", "aws-dev", LOG_GROUP, "flow-logs", "kmsKeyId", OTHER_AWS_KEY, "dfarm-aws-dev-fence-flow-logs"),
    ("DF-AWS-020", "aws-dev", ADDON, "vpc-cni", "configurationValues", "{}", "dfarm-aws-dev-cluster-vpc-cni"),
    ("DF-AWS-022", "aws-dev", NODE_CLASS, "train", "spec.metadataOptions.httpPutResponseHopLimit", 2, "dfarm-aws-dev-cluster-nodeclass-train"),
    ("DF-GCP-018", "gcp-dev", "gcp:storage/bucket:Bucket", "logs", "encryption.defaultKmsKeyName", OTHER_GCP_KEY, "dfarm-gcp-dev-logs"),
    ("DF-GCP-019", "gcp-dev", "gcp:projects/iAMMember:IAMMember", "nodes-role", "role", "roles/editor", "dfarm-gcp-dev-cluster-nodes-role"),
]


def _drop(plan: dict[str, Any], type_: str, name_part: str) -> None:
    target = row(plan, type_, name_part)
    plan["resources"] = [r for r in plan["resources"] if r is not target]


def _no_control_plane_log_group(plan: dict[str, Any]) -> tuple[dict[str, Any], str]:
    _drop(plan, LOG_GROUP, "control-plane")
    return plan, "dfarm-aws-dev-cluster"


def _no_pod_identity_agent(plan: dict[str, Any]) -> tuple[dict[str, Any], str]:
    _drop(plan, ADDON, "pod-identity-agent")
    return plan, "dfarm-aws-dev-cluster"


def _no_public_access_block(plan: dict[str, Any]) -> tuple[dict[str, Any], str]:
    _drop(plan, PAB, "models")
    return plan, "dfarm-aws-dev-models"


HARDENING_BUILT: dict[str, tuple[str, Callable[[dict[str, Any]], tuple[dict[str, Any], str]]]] = {
    "DF-AWS-019": ("aws-dev", _no_control_plane_log_group),
    "DF-AWS-023": ("aws-dev", _no_public_access_block),
    "DF-AWS-021": ("aws-dev", _no_pod_identity_agent),
}


def fired(plan: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (rule, resource) the whole rule set reports on a plan, waived advisory findings left out."""
    report = check(resources_from_plan(plan), waivers=plan.get("waivers"))
    return {(f.rule, f.name) for f in report.findings if not f.waived}


@pytest.mark.parametrize("seed", HARDENING_SEEDS, ids=[s[0] for s in HARDENING_SEEDS])
def test_new_rule_passes_shipped_and_only_it_fires_on_its_seeded_variant(seed):
    rule_id, stack, *_, expected_name = seed
    assert findings(plan_json(stack), rule_id) == []
    assert fired(seeded(seed)) == {(rule_id, expected_name)}


@pytest.mark.parametrize("rule_id", sorted(HARDENING_BUILT))
def test_new_stack_rule_fires_only_on_its_built_variant(rule_id):
    stack, build = HARDENING_BUILT[rule_id]
    assert findings(plan_json(stack), rule_id) == []
    plan, name = build(plan_json(stack))
    assert fired(plan) == {(rule_id, name)}


# ---- mutations of shipped plans: (stack, change, the exact findings) -------------------------------------------

def _set(type_: str, part: str, path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(plan: dict[str, Any]) -> None:
        set_path(row(plan, type_, part)["inputs"], path, value)
    return change


def _delete(type_: str, part: str) -> Callable[[dict[str, Any]], None]:
    return lambda plan: _drop(plan, type_, part)


def _policy(type_: str, part: str, edit: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(plan: dict[str, Any]) -> None:
        target = row(plan, type_, part)["inputs"]
        document = json.loads(target["policy"])
        edit(document["Statement"][0])
        target["policy"] = json.dumps(document)
    return change


SSH_FROM_WORLD = [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}]
BUCKET_POLICY = f"{S3}bucketPolicy:BucketPolicy"
MUTATIONS: list[tuple[str, str, Callable[[dict[str, Any]], None], set[tuple[str, str]]]] = [
    # 1. every bucket needs its own public access block
    ("AWS-023 block deleted", "aws-dev", _delete(PAB, "checkpoints"), {("DF-AWS-023", "dfarm-aws-dev-checkpoints")}),
    ("AWS-023 block on another bucket", "aws-dev", _set(PAB, "checkpoints", "bucket", "some-other-bucket"),
     {("DF-AWS-023", "dfarm-aws-dev-checkpoints")}),
    # 2. every bucket needs SSE-KMS with the farm's key
    ("AWS-002 encryption deleted", "aws-dev", _delete(SSE, "checkpoints"), {("DF-AWS-002", "dfarm-aws-dev-checkpoints")}),
    ("AWS-002 AWS-managed key", "aws-dev", _set(SSE, "models", "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId",
                                                "alias/aws/s3"), {("DF-AWS-002", "dfarm-aws-dev-models-encryption")}),
    ("AWS-002 no key (the AWS-managed default)", "aws-dev",
     _set(SSE, "models", "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId", DELETE),
     {("DF-AWS-002", "dfarm-aws-dev-models-encryption")}),
    ("AWS-002 another customer key", "aws-dev",
     _set(SSE, "models", "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId", OTHER_AWS_KEY),
     {("DF-AWS-002", "dfarm-aws-dev-models-encryption")}),
    ("AWS-002 encryption retargeted", "aws-dev", _set(SSE, "logs", "bucket", "some-other-bucket"),
     {("DF-AWS-002", "dfarm-aws-dev-logs")}),
    # 2. the farm's key, not any key, elsewhere
    ("AWS-018 EKS secrets under another key", "aws-dev",
     _set("aws:eks/cluster:Cluster", "cluster", "encryptionConfig.provider.keyArn", OTHER_AWS_KEY),
     {("DF-AWS-018", "dfarm-aws-dev-cluster")}),
    ("AWS-013 launch template on the AWS-managed EBS key", "aws-dev",
     _set(LAUNCH_TEMPLATE, "system", "blockDeviceMappings.0.ebs.kmsKeyId", "alias/aws/ebs"),
     {("DF-AWS-013", "dfarm-aws-dev-cluster-system")}),
    ("AWS-010 log group on no key", "aws-dev", _set(LOG_GROUP, "flow-logs", "kmsKeyId", ""),
     {("DF-AWS-010", "dfarm-aws-dev-fence-flow-logs")}),
    ("GCP-003 bucket key is not a crypto key", "gcp-dev",
     _set("gcp:storage/bucket:Bucket", "logs", "encryption.defaultKmsKeyName", "google-managed"),
     {("DF-GCP-003", "dfarm-gcp-dev-logs")}),
    ("GCP-018 GKE secrets under another key", "gcp-prod", _set(GKE, "cluster", "databaseEncryption.keyName", OTHER_GCP_KEY),
     {("DF-GCP-018", "dfarm-gcp-prod-cluster")}),
    ("GCP-014 default pool without the key", "gcp-dev", _set(GKE, "cluster", "nodeConfig.bootDiskKmsKey", DELETE),
     {("DF-GCP-014", "dfarm-gcp-dev-cluster")}),
    # 3. TLS-only: s3:* on the bucket and its objects
    ("AWS-005 deny covers one action", "aws-dev", _policy(BUCKET_POLICY, "models", lambda s: s.update(Action="s3:GetObject")),
     {("DF-AWS-005", "dfarm-aws-dev-models")}),
    ("AWS-005 deny covers the objects only", "aws-dev",
     _policy(BUCKET_POLICY, "models", lambda s: s.update(Resource=s["Resource"][1:])), {("DF-AWS-005", "dfarm-aws-dev-models")}),
    ("AWS-005 deny on another bucket", "aws-dev",
     _policy(BUCKET_POLICY, "models", lambda s: s.update(Resource=["arn:aws:s3:::unrelated", "arn:aws:s3:::unrelated/*"])),
     {("DF-AWS-005", "dfarm-aws-dev-models")}),
    # 4. the default security group
    ("AWS-015 default SG opens SSH", "aws-dev",
     _set("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "default-sg", "ingress", SSH_FROM_WORLD),
     {("DF-AWS-015", "dfarm-aws-dev-fence-default-sg")}),
    # 5. wildcard IAM in roles, attachments and NotAction
    ("AWS-016 role inline policy *", "aws-dev",
     _set("aws:iam/role:Role", "nightly-stop", "inlinePolicies", [{"name": "x", "policy": WILDCARD}]),
     {("DF-AWS-016", "dfarm-aws-dev-devbox-nightly-stop")}),
    ("AWS-016 AdministratorAccess attached", "aws-dev",
     _set("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "devbox-ssm", "policyArn",
          "arn:aws:iam::aws:policy/AdministratorAccess"), {("DF-AWS-016", "dfarm-aws-dev-devbox-ssm")}),
    ("AWS-016 Allow NotAction on *", "aws-dev",
     _set("aws:iam/rolePolicy:RolePolicy", "nightly-stop", "policy",
          json.dumps({"Statement": [{"Effect": "Allow", "NotAction": "iam:CreateUser", "Resource": "*"}]})),
     {("DF-AWS-016", "dfarm-aws-dev-devbox-nightly-stop")}),
    # 6. EBS: extra volumes, and at least one mapping with the key
    ("AWS-013 instance data volume unencrypted", "aws-dev",
     _set("aws:ec2/instance:Instance", "devbox", "ebsBlockDevices", [{"deviceName": "/dev/sdf", "volumeSize": 500}]),
     {("DF-AWS-013", "dfarm-aws-dev-devbox")}),
    ("AWS-013 launch template without mappings", "aws-dev", _set(LAUNCH_TEMPLATE, "system", "blockDeviceMappings", DELETE),
     {("DF-AWS-013", "dfarm-aws-dev-cluster-system")}),
    ("AWS-013 node class without mappings", "aws-prod", _set(NODE_CLASS, "train-h100", "spec.blockDeviceMappings", DELETE),
     {("DF-AWS-013", "dfarm-aws-prod-cluster-nodeclass-train-h100")}),
    # 7. the control-plane log group's settings
    ("AWS-019 control-plane log group kept for ever", "aws-prod", _set(LOG_GROUP, "control-plane", "retentionInDays", DELETE),
     {("DF-AWS-009", "dfarm-aws-prod-cluster-control-plane"), ("DF-AWS-019", "dfarm-aws-prod-cluster")}),
    ("AWS-019 control-plane log group renamed", "aws-dev", _set(LOG_GROUP, "control-plane", "name", "/aws/eks/other/cluster"),
     {("DF-AWS-019", "dfarm-aws-dev-cluster")}),
    # 8. a firewall with no source is open to the world
    ("GCP-015 no source", "gcp-dev", _set(FIREWALL, "iap-ssh", "sourceRanges", DELETE),
     {("DF-GCP-015", "dfarm-gcp-dev-devbox-iap-ssh")}),
    ("GCP-015 world source", "gcp-dev", _set(FIREWALL, "iap-ssh", "sourceRanges", ["0.0.0.0/0"]),
     {("DF-GCP-015", "dfarm-gcp-dev-devbox-iap-ssh")}),
    # 10. the DNS endpoint bypasses authorized networks
    ("GCP-006 DNS endpoint open", "gcp-prod",
     _set(GKE, "cluster", "controlPlaneEndpointsConfig", {"dnsEndpointConfig": {"allowExternalTraffic": True}}),
     {("DF-GCP-006", "dfarm-gcp-prod-cluster")}),
    # 11. an allow-all ingress policy is no default deny
    ("K8S-001 allow-all rule", "aws-dev", _set(NETPOL, "research", "spec.ingress", [{}]),
     {("DF-K8S-001", "dfarm-aws-dev-cluster-gpu-team-research")}),
    ("K8S-001 rule with an empty from", "gcp-prod", _set(NETPOL, "serving", "spec.ingress.0.from", []),
     {("DF-K8S-001", "dfarm-gcp-prod-cluster-gpu-team-serving")}),
    ("K8S-001 every namespace may reach it", "aws-prod", _set(NETPOL, "serving", "spec.ingress.0.from", [{"namespaceSelector": {}}]),
     {("DF-K8S-001", "dfarm-aws-prod-cluster-gpu-team-serving")}),
    # 13. EKS network policy and workload identity, GCP basic roles
    ("AWS-020 vpc-cni without configuration", "aws-prod", _set(ADDON, "vpc-cni", "configurationValues", DELETE),
     {("DF-AWS-020", "dfarm-aws-prod-cluster-vpc-cni")}),
    ("AWS-022 launch template hop limit 2", "aws-prod",
     _set(LAUNCH_TEMPLATE, "warm-infer", "metadataOptions.httpPutResponseHopLimit", 2),
     {("DF-AWS-022", "dfarm-aws-prod-cluster-warm-infer")}),
    ("GCP-019 owner", "gcp-prod", _set("gcp:projects/iAMMember:IAMMember", "nodes-role", "role", "roles/owner"),
     {("DF-GCP-019", "dfarm-gcp-prod-cluster-nodes-role")}),
]


def _capital_tcp(plan: dict[str, Any]) -> None:
    row(plan, FIREWALL, "iap-ssh")["inputs"]["allows"][0]["protocol"] = "TCP"


@pytest.mark.parametrize("stack, change, expected", [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_a_mutated_shipped_plan_fires_exactly_the_rule_that_guards_it(stack, change, expected):
    plan = plan_json(stack)
    assert fired(plan) == set()
    change(plan)
    assert fired(plan) == expected


def test_firewall_protocol_is_read_in_any_case():
    plan = plan_json("gcp-dev")
    _capital_tcp(plan)
    assert fired(plan) == set()
    row(plan, FIREWALL, "iap-ssh")["inputs"]["sourceRanges"] = ["0.0.0.0/0"]
    assert fired(plan) == {("DF-GCP-015", "dfarm-gcp-dev-devbox-iap-ssh")}


def test_a_karpenter_pool_is_a_gpu_pool_by_its_requirements_alone():
    plan = plan_json("aws-dev")
    pool = row(plan, "kubernetes:karpenter.sh/v1:NodePool", "train")
    del pool["inputs"]["spec"]["template"]["metadata"]["labels"]["nvidia.com/gpu.present"]
    del pool["inputs"]["spec"]["limits"]
    view = next(r for r in resources_from_plan(plan) if r.name == pool["name"])
    assert is_karpenter_gpu_pool(view)  # g5.12xlarge / g5.24xlarge
    pool["inputs"]["spec"]["template"]["spec"]["taints"] = []
    assert [n for n, _ in findings(plan, "DF-K8S-003")] == [pool["name"]]
    cpu = Resource("kubernetes:karpenter.sh/v1:NodePool", "cpu", inputs={"spec": {"template": {"spec": {"requirements": [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m6g.large", "c7i.xlarge"]}]}}}})
    assert not is_karpenter_gpu_pool(cpu)
    by_count = Resource("kubernetes:karpenter.sh/v1:NodePool", "gpu", inputs={"spec": {"template": {"spec": {"requirements": [
        {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["0"]}]}}}})
    assert is_karpenter_gpu_pool(by_count)


def test_the_shipped_devbox_keeps_hop_limit_2_and_is_not_checked_for_it():
    # The dev box is no Kubernetes node: containers on it (docker) reach IMDS through one more hop.
    plan = plan_json("aws-dev")
    assert row(plan, "aws:ec2/instance:Instance", "devbox")["inputs"]["metadataOptions"]["httpPutResponseHopLimit"] == 2
    assert "aws:ec2/instance:Instance" not in BY_ID["DF-AWS-022"].types


# ---- 9. unknown values and rules that raise: not evaluated, never a traceback ----------------------------------

def _not_evaluated(plan: dict[str, Any], rule_id: str) -> list[tuple[str, str]]:
    report = check(resources_from_plan(plan), only=[BY_ID[rule_id]])
    assert report.findings == []
    return [(rule, name) for rule, name, _ in report.not_evaluated]


@pytest.mark.parametrize("item", [ANY, ARRAY], ids=["any", "array"])
def test_an_unknown_ingress_item_is_not_evaluated(item):
    plan = plan_json("aws-dev")
    row(plan, "aws:ec2/securityGroup:SecurityGroup", "devbox-sg")["inputs"]["ingress"] = [item]
    assert _not_evaluated(plan, "DF-AWS-015") == [("DF-AWS-015", "dfarm-aws-dev-devbox-sg")]


def test_an_unknown_port_or_cidr_in_an_ingress_rule_is_not_evaluated():
    plan = plan_json("aws-dev")
    sg = row(plan, "aws:ec2/securityGroup:SecurityGroup", "devbox-sg")["inputs"]
    sg["ingress"] = [{"protocol": "tcp", "fromPort": NUMBER, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}]
    assert _not_evaluated(plan, "DF-AWS-015") == [("DF-AWS-015", "dfarm-aws-dev-devbox-sg")]
    sg["ingress"] = [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": [ANY]}]
    assert _not_evaluated(plan, "DF-AWS-015") == [("DF-AWS-015", "dfarm-aws-dev-devbox-sg")]


@pytest.mark.parametrize("ports", [[ANY], ["ssh"], ["22-" + ANY]], ids=["unknown", "not-a-number", "unknown-range-end"])
def test_an_unknown_or_non_numeric_firewall_port_is_not_evaluated(ports):
    plan = plan_json("gcp-dev")
    fw = row(plan, FIREWALL, "iap-ssh")["inputs"]
    fw["sourceRanges"] = ["0.0.0.0/0"]
    fw["allows"] = [{"protocol": "tcp", "ports": ports}]
    assert _not_evaluated(plan, "DF-GCP-015") == [("DF-GCP-015", "dfarm-gcp-dev-devbox-iap-ssh")]


def test_unknown_list_items_elsewhere_are_not_evaluated():
    plan = plan_json("aws-dev")
    row(plan, SSE, "models")["inputs"]["rules"] = [ANY]
    row(plan, "aws:iam/role:Role", "nightly-stop")["inputs"]["inlinePolicies"] = [ANY]
    row(plan, LAUNCH_TEMPLATE, "system")["inputs"]["blockDeviceMappings"] = [ANY]
    assert _not_evaluated(plan, "DF-AWS-002") == [("DF-AWS-002", "dfarm-aws-dev-models-encryption")]
    assert _not_evaluated(plan, "DF-AWS-016") == [("DF-AWS-016", "dfarm-aws-dev-devbox-nightly-stop")]
    assert _not_evaluated(plan, "DF-AWS-013") == [("DF-AWS-013", "dfarm-aws-dev-cluster-system")]
    gcp = plan_json("gcp-dev")
    row(gcp, GKE, "cluster")["inputs"]["masterAuthorizedNetworksConfig"]["cidrBlocks"] = [{"cidrBlock": ANY}]
    assert _not_evaluated(gcp, "DF-GCP-006") == [("DF-GCP-006", "dfarm-gcp-dev-cluster")]


def test_an_unknown_stops_a_stack_rule_for_that_resource_only():
    plan = plan_json("aws-dev")
    row(plan, SSE, "models")["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] = ANY
    _drop(plan, SSE, "checkpoints")
    report = check(resources_from_plan(plan), only=[BY_ID["DF-AWS-002"]])
    assert [(f.rule, f.name) for f in report.findings] == [("DF-AWS-002", "dfarm-aws-dev-checkpoints")]
    assert [(rule, name) for rule, name, _ in report.not_evaluated] == [("DF-AWS-002", "dfarm-aws-dev-models-encryption")]
    # The CrossGuard pack's view: the findings it has (the unknown is reported only when nothing failed).
    from dragonfarm.guardrails.engine import stack_findings
    from dragonfarm.guardrails.model import Stack
    found = stack_findings(BY_ID["DF-AWS-002"], Stack(tuple(resources_from_plan(plan))))
    assert not isinstance(found, Unknown) and [r.name for r, _ in found if r is not None] == ["dfarm-aws-dev-checkpoints"]


def test_open_to_world_of_an_unknown_raises_unknown():
    with pytest.raises(Unknown):
        open_to_world(UNKNOWN)
    assert open_to_world("0.0.0.0/0") and not open_to_world("10.0.0.0/8")


def test_a_rule_that_raises_is_not_evaluated_with_its_error():
    def broken(r: Resource) -> list[str]:
        raise ValueError("bad shape")

    def broken_stack(stack: Any) -> list[tuple[Resource | None, str]]:
        return [(None, str(int("x")))]

    resources = resources_from_plan(plan_json("aws-dev"))
    rules = [Rule("DF-AWS-900", "broken", "mandatory", "fix", broken, ("aws:s3/bucket:Bucket",)),
             Rule("DF-AWS-901", "broken stack", "mandatory", "fix", broken_stack, (), "stack")]
    report = check(resources, only=rules)
    assert report.findings == []
    entries = report.not_evaluated
    assert len(entries) == 4 + 1
    assert all("could not be evaluated (ValueError" in what for _, _, what in entries)
    assert ("DF-AWS-901", "stack") in [(rule, name) for rule, name, _ in entries]
    assert "bad shape" in entries[0][2]
