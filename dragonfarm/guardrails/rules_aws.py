"""AWS guardrails over the types the AWS blueprint emits (S3 trough, KMS, EKS, Karpenter, EC2 barns, IAM, logs).

Meanings follow the AWS provider's documented defaults and, where one exists, the checkov check of the same
name (bridgecrewio/checkov, checkov/terraform/checks/resource/aws/); ids are cited per rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dragonfarm.guardrails.model import (
    PURPOSE_TAG, Resource, Stack, items, known, open_to_world, resource_rule, stack_rule, truthy,
)

CHECKOV = "https://github.com/bridgecrewio/checkov/tree/main/checkov/terraform/checks/resource/aws"

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KMS_KEY = "aws:kms/key:Key"
EKS = "aws:eks/cluster:Cluster"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
SG = "aws:ec2/securityGroup:SecurityGroup"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
POLICY_TYPES = ("aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy", "aws:iam/userPolicy:UserPolicy",
                "aws:iam/groupPolicy:GroupPolicy", BUCKET_POLICY, "aws:sns/topicPolicy:TopicPolicy",
                "aws:sqs/queuePolicy:QueuePolicy", KMS_KEY)

# Ports nobody on the internet may reach directly: SSH, RDP, the Kubernetes API (443 on EKS, 6443 self-managed).
SENSITIVE_PORTS = (22, 3389, 443, 6443)


# ---- S3 troughs -------------------------------------------------------------------------------------

@resource_rule("DF-AWS-001", "S3 public access block sets all four flags", "mandatory",
               "trough layer: components/trough/aws.py sets the bucket's public access block; do not override "
               "dragonfarm:troughs.<key> buckets with a public one", [PUBLIC_ACCESS_BLOCK],
               checkov="CKV_AWS_53, CKV_AWS_54, CKV_AWS_55, CKV_AWS_56",
               source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html")
def s3_public_access_block(r: Resource) -> list[str]:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    off = [f for f in flags if not truthy(r.get(f))]
    return [f"public access block leaves {', '.join(off)} off"] if off else []


@resource_rule("DF-AWS-002", "S3 default encryption uses the farm's KMS key", "mandatory",
               "trough layer encrypts with the fence key; set dragonfarm:fence.existing_key_id only to a KMS key ARN",
               [SSE], checkov="CKV_AWS_145",
               source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html")
def s3_kms(r: Resource) -> list[str]:
    rules = items(r.get("rules"))
    for rule in rules:
        default = known(rule, f"{r.name}: rules").get("applyServerSideEncryptionByDefault") or {}
        if default.get("sseAlgorithm") in ("aws:kms", "aws:kms:dsse") and default.get("kmsMasterKeyId"):
            return []
    return ["bucket default encryption is not SSE-KMS with the farm's key (sseAlgorithm aws:kms and kmsMasterKeyId)"]


def _buckets_by_name(stack: Stack) -> dict[str, Resource]:
    return {b.get("bucket") or b.name: b for b in stack.of_type(BUCKET)}


def _bucket_of(r: Resource) -> str:
    return r.get("bucket") or ""


@stack_rule("DF-AWS-003", "S3 checkpoint and model buckets are versioned", "mandatory",
            "dragonfarm:troughs.<key>.versioning: true (the default for purpose checkpoints and models)",
            checkov="CKV_AWS_21", source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/Versioning.html")
def s3_versioning(stack: Stack) -> list[tuple[Resource | None, str]]:
    enabled = {_bucket_of(v) for v in stack.of_type(VERSIONING) if v.get("versioningConfiguration.status") == "Enabled"}
    return [(b, f"{b.tags().get(PURPOSE_TAG)} bucket has no versioning with status Enabled")
            for name, b in _buckets_by_name(stack).items()
            if b.tags().get(PURPOSE_TAG) in ("checkpoints", "models") and name not in enabled]


@stack_rule("DF-AWS-004", "every S3 bucket has lifecycle rules, incomplete uploads aborted", "mandatory",
            "dragonfarm:troughs.<key>.lifecycle (abort_incomplete_upload_days and tiering/expiry)",
            checkov="CKV2_AWS_61, CKV_AWS_300",
            source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lifecycle-mgmt.html")
def s3_lifecycle(stack: Stack) -> list[tuple[Resource | None, str]]:
    by_bucket: dict[str, list[Any]] = {}
    for lc in stack.of_type(LIFECYCLE):
        by_bucket.setdefault(_bucket_of(lc), []).extend(
            rule for rule in items(lc.get("rules")) if isinstance(rule, Mapping) and rule.get("status") == "Enabled")
    out: list[tuple[Resource | None, str]] = []
    for name, b in _buckets_by_name(stack).items():
        rules = by_bucket.get(name, [])
        if not rules:
            out.append((b, "bucket has no enabled lifecycle rule"))
        elif not any(rule.get("abortIncompleteMultipartUpload") for rule in rules):
            out.append((b, "no lifecycle rule aborts incomplete multipart uploads"))
    return out


def _statements(policy: Any, where: str) -> list[Mapping[str, Any]]:
    policy = known(policy, where)
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return []
    if not isinstance(policy, Mapping):
        return []
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, Mapping) else items(statements)
    return [s for s in statements if isinstance(s, Mapping)]


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, (str, Mapping)) else items(value)


@stack_rule("DF-AWS-005", "S3 buckets refuse requests without TLS", "mandatory",
            "trough layer: each bucket's policy denies aws:SecureTransport false (components/trough/aws.py)",
            checkov="CKV_AWS_379",
            source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html")
def s3_tls_only(stack: Stack) -> list[tuple[Resource | None, str]]:
    tls: set[str] = set()
    for p in stack.of_type(BUCKET_POLICY):
        for s in _statements(p.get("policy"), f"{p.name}: policy"):
            cond = s.get("Condition") or {}
            secure = (cond.get("Bool") or {}).get("aws:SecureTransport") if isinstance(cond, Mapping) else None
            if s.get("Effect") == "Deny" and str(secure).lower() == "false":
                tls.add(_bucket_of(p))
    return [(b, "no bucket policy denies requests with aws:SecureTransport false")
            for name, b in _buckets_by_name(stack).items() if name not in tls]


# ---- EKS ----------------------------------------------------------------------------------------------

@resource_rule("DF-AWS-006", "EKS API endpoint private, or public only to listed CIDRs", "mandatory",
               "dragonfarm:breeding_ground.deploy_from (inside-network) or public_endpoint_cidrs (your egress CIDRs)",
               [EKS], checkov="CKV_AWS_38, CKV_AWS_39",
               source="https://docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html")
def eks_endpoint(r: Resource) -> list[str]:
    public = r.get("vpcConfig.endpointPublicAccess")
    if public is not None and not truthy(public):
        return []
    cidrs = items(r.get("vpcConfig.publicAccessCidrs"))  # the provider's default is 0.0.0.0/0
    if not cidrs or any(open_to_world(c) for c in cidrs):
        return [f"public API endpoint open to {', '.join(map(str, cidrs)) or '0.0.0.0/0 (no publicAccessCidrs)'}"]
    return []


@resource_rule("DF-AWS-007", "EKS secrets encrypted with the farm's KMS key", "mandatory",
               "breeding ground: encryptionConfig with the fence key (dragonfarm:fence.existing_key_id if you bring one)",
               [EKS], checkov="CKV_AWS_58",
               source="https://docs.aws.amazon.com/eks/latest/userguide/enable-kms.html")
def eks_secrets(r: Resource) -> list[str]:
    resources = items(r.get("encryptionConfig.resources"))
    if "secrets" in resources and r.get("encryptionConfig.provider.keyArn"):
        return []
    return ["Kubernetes secrets are not envelope-encrypted with a KMS key (encryptionConfig)"]


@resource_rule("DF-AWS-008", "EKS control-plane audit and API logs enabled", "mandatory",
               "breeding ground: enabledClusterLogTypes includes api and audit (components/breeding_ground/aws.py)",
               [EKS], checkov="CKV_AWS_37",
               source="https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html")
def eks_logs(r: Resource) -> list[str]:
    missing = [t for t in ("api", "audit") if t not in items(r.get("enabledClusterLogTypes"))]
    return [f"control-plane log types {', '.join(missing)} are off"] if missing else []


@resource_rule("DF-AWS-009", "CloudWatch log groups keep logs for a set time", "mandatory",
               "dragonfarm:fence.log_retention_days", [LOG_GROUP], checkov="CKV_AWS_66",
               source="https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/Working-with-log-groups-and-streams.html")
def log_retention(r: Resource) -> list[str]:
    days = r.get("retentionInDays")
    return [] if isinstance(days, (int, float)) and days > 0 else ["log group keeps logs for ever (no retentionInDays)"]


@resource_rule("DF-AWS-010", "CloudWatch log groups encrypted with the farm's KMS key", "mandatory",
               "fence: log groups take the fence key (dragonfarm:fence.existing_key_id if you bring one)",
               [LOG_GROUP], checkov="CKV_AWS_158",
               source="https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html")
def log_kms(r: Resource) -> list[str]:
    return [] if r.get("kmsKeyId") else ["log group is not encrypted with a KMS key (kmsKeyId)"]


# ---- EC2: instances, launch templates, Karpenter node classes --------------------------------------

def _imds(options: Any) -> list[str]:
    if not isinstance(options, Mapping) or options.get("httpTokens") != "required":
        return ["instance metadata allows IMDSv1 (metadataOptions.httpTokens is not 'required')"]
    return []


@resource_rule("DF-AWS-011", "EC2 instances and launch templates require IMDSv2", "mandatory",
               "barn / breeding ground: metadataOptions.httpTokens 'required' (components/barn/aws.py, breeding_ground/aws.py)",
               [INSTANCE, LAUNCH_TEMPLATE], checkov="CKV_AWS_79",
               source="https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html")
def imdsv2(r: Resource) -> list[str]:
    return _imds(r.get("metadataOptions"))


@resource_rule("DF-AWS-012", "Karpenter EC2NodeClass requires IMDSv2", "mandatory",
               "breeding ground: EC2NodeClass spec.metadataOptions.httpTokens 'required' (components/breeding_ground/aws.py)",
               [NODE_CLASS], checkov="",
               source="https://karpenter.sh/docs/concepts/nodeclasses/#specmetadataoptions")
def nodeclass_imdsv2(r: Resource) -> list[str]:
    return _imds(r.get("spec.metadataOptions"))


def _ebs_problems(volumes: list[Any], where: str, key_field: str) -> list[str]:
    out = []
    for v in volumes:
        v = known(v, where)
        if not isinstance(v, Mapping):
            continue
        if not truthy(v.get("encrypted")) or not v.get(key_field):
            out.append(f"volume {v.get('deviceName', 'root')} is not encrypted with the farm's KMS key ({key_field})")
    return out


@resource_rule("DF-AWS-013", "EBS volumes encrypted with the farm's KMS key", "mandatory",
               "barn / breeding ground: root volumes take the fence key (dragonfarm:fence.existing_key_id if you bring one)",
               [INSTANCE, LAUNCH_TEMPLATE, NODE_CLASS], checkov="CKV_AWS_8",
               source="https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html")
def ebs_encryption(r: Resource) -> list[str]:
    if r.type == INSTANCE:
        root = r.get("rootBlockDevice")
        return _ebs_problems([root or {"deviceName": "root"}], r.name, "kmsKeyId")
    if r.type == LAUNCH_TEMPLATE:
        return _ebs_problems([m.get("ebs") or {} for m in items(r.get("blockDeviceMappings")) if isinstance(m, Mapping)],
                             r.name, "kmsKeyId")
    return _ebs_problems([m.get("ebs") or {} for m in items(r.get("spec.blockDeviceMappings")) if isinstance(m, Mapping)],
                         r.name, "kmsKeyID")


@resource_rule("DF-AWS-014", "EC2 instances get no public IP", "mandatory",
               "barn: dev boxes sit in private subnets, reached through SSM (components/barn/aws.py)",
               [INSTANCE], checkov="CKV_AWS_88",
               source="https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-instance-addressing.html")
def instance_public_ip(r: Resource) -> list[str]:
    return ["instance asks for a public IP (associatePublicIpAddress)"] if truthy(r.get("associatePublicIpAddress")) else []


def _port_hit(protocol: Any, low: Any, high: Any) -> list[int]:
    if str(protocol) in ("-1", "all"):
        return list(SENSITIVE_PORTS)
    if str(protocol).lower() not in ("tcp", "6"):
        return []
    low = int(low) if isinstance(low, (int, float)) else 0
    high = int(high) if isinstance(high, (int, float)) else 65535
    return [p for p in SENSITIVE_PORTS if low <= p <= high]


@resource_rule("DF-AWS-015", "no 0.0.0.0/0 ingress to SSH, RDP or the Kubernetes API", "mandatory",
               "dragonfarm:breeding_ground.runner_cidrs / public_endpoint_cidrs (never 0.0.0.0/0); barns take no ingress",
               [SG, SG_INGRESS, SG_RULE], checkov="CKV_AWS_24, CKV_AWS_25, CKV_AWS_277",
               source="https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html")
def world_ingress(r: Resource) -> list[str]:
    out = []
    if r.type == SG:
        for rule in items(r.get("ingress")):
            cidrs = items(rule.get("cidrBlocks")) + items(rule.get("ipv6CidrBlocks"))
            ports = _port_hit(rule.get("protocol"), rule.get("fromPort"), rule.get("toPort"))
            if ports and any(open_to_world(c) for c in cidrs):
                out.append(f"inline ingress opens port(s) {', '.join(map(str, ports))} to the internet")
        return out
    if r.type == SG_RULE and r.get("type") != "ingress":
        return []
    cidrs = [r.get("cidrIpv4"), r.get("cidrIpv6")] + items(r.get("cidrBlocks")) + items(r.get("ipv6CidrBlocks"))
    ports = _port_hit(r.get("ipProtocol") or r.get("protocol"), r.get("fromPort"), r.get("toPort"))
    if ports and any(open_to_world(c) for c in cidrs):
        out.append(f"ingress opens port(s) {', '.join(map(str, ports))} to the internet")
    return out


# ---- IAM and keys ---------------------------------------------------------------------------------------

@resource_rule("DF-AWS-016", "no policy the farm writes allows action * on resource *", "mandatory",
               "the component that writes the policy: scope its actions and resources (components/<layer>/aws.py)",
               POLICY_TYPES, checkov="CKV_AWS_62, CKV_AWS_1",
               source="https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html#grant-least-privilege")
def wildcard_policy(r: Resource) -> list[str]:
    out = []
    for s in _statements(r.get("policy"), f"{r.name}: policy"):
        actions = _as_list(s.get("Action"))
        resources = _as_list(s.get("Resource"))
        if s.get("Effect") == "Allow" and any(a in ("*", "*:*") for a in actions) and "*" in resources:
            out.append(f"statement {s.get('Sid') or '(no Sid)'} allows every action on every resource")
    return out


@resource_rule("DF-AWS-017", "KMS keys rotate yearly", "mandatory",
               "fence: enableKeyRotation on the farm key (components/fence/aws.py)", [KMS_KEY], checkov="CKV_AWS_7",
               source="https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html")
def kms_rotation(r: Resource) -> list[str]:
    return [] if truthy(r.get("enableKeyRotation")) else ["key rotation is off (enableKeyRotation)"]

