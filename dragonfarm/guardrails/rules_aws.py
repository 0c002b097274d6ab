"""AWS guardrails over the types the AWS blueprint emits (S3 trough, KMS, EKS, Karpenter, EC2 barns, IAM, logs).

Meanings follow the AWS provider's documented defaults and, where one exists, the checkov check of the same
name (bridgecrewio/checkov, checkov/terraform/checks/resource/aws/); ids are cited per rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from dragonfarm.guardrails.model import (
    PURPOSE_TAG, Resource, Stack, Unknown, each, items, known, known_items, open_to_world, port, resource_rule,
    stack_rule, truthy,
)

CHECKOV = "https://github.com/bridgecrewio/checkov/tree/main/checkov/terraform/checks/resource/aws"

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
EKS_ADDON = "aws:eks/addon:Addon"
OIDC_PROVIDER = "aws:iam/openIdConnectProvider:OpenIdConnectProvider"
EKS = "aws:eks/cluster:Cluster"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
INSTANCE = "aws:ec2/instance:Instance"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
SG = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
POLICY_TYPES = ("aws:iam/policy:Policy", "aws:iam/rolePolicy:RolePolicy", "aws:iam/userPolicy:UserPolicy",
                "aws:iam/groupPolicy:GroupPolicy", BUCKET_POLICY, "aws:sns/topicPolicy:TopicPolicy",
                "aws:sqs/queuePolicy:QueuePolicy", KMS_KEY)
ROLE = "aws:iam/role:Role"
ATTACHMENT_TYPES = ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/userPolicyAttachment:UserPolicyAttachment",
                    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment")
ADMIN_POLICY = ":iam::aws:policy/AdministratorAccess"

# Ports nobody on the internet may reach directly: SSH, RDP, the Kubernetes API (443 on EKS, 6443 self-managed).
SENSITIVE_PORTS = (22, 3389, 443, 6443)


# ---- the farm's KMS key -----------------------------------------------------------------------------

def aws_managed_key(ref: Any) -> bool:
    """No key named (the service's default), or an AWS-managed key (`alias/aws/s3`, `alias/aws/ebs`, ...)."""
    if not isinstance(ref, str) or not ref.strip():
        return True
    ref = ref.strip()
    return ref.startswith("alias/aws/") or ":alias/aws/" in ref


def key_id(ref: str) -> str:
    """A KMS key reference as a key id or `alias/<name>`: key ARN, alias ARN, alias name or bare id."""
    ref = ref.strip()
    if ":key/" in ref:
        return ref.split(":key/", 1)[1]
    if ref.startswith("arn:") and ":alias/" in ref:
        return "alias/" + ref.split(":alias/", 1)[1]
    return ref


def farm_keys(stack: Stack) -> set[str] | None:
    """Ids and alias names of the KMS key the fence creates (its alias targets it); None when the stack creates no key
    (dragonfarm:fence.existing_key_id brings one the plan cannot name) or names it nowhere the plan can read."""
    if not stack.of_type(KMS_KEY):
        return None
    out: set[str] = set()
    for alias in stack.of_type(KMS_ALIAS):
        target, name = alias.get("targetKeyId"), alias.get("name")
        if isinstance(target, str) and target:
            out.add(key_id(target))
        if isinstance(name, str) and name:
            out.add(name)
    return out or None


def key_problem(ref: Any, keys: set[str] | None, field: str) -> str:
    """What is wrong with a key reference ('' when it is the farm's key, or any customer-managed key when the plan
    cannot name the farm's)."""
    if aws_managed_key(ref):
        named = f" ({ref})" if isinstance(ref, str) and ref.strip() else ""
        return f"{field} is not a customer-managed KMS key: AWS-managed or default key{named}"
    if keys is not None and key_id(str(ref)) not in keys:
        return f"{field} names a KMS key that is not the farm's ({ref})"
    return ""


# ---- S3 troughs -------------------------------------------------------------------------------------

def _linked(stack: Stack, type_: str) -> dict[str, list[Resource]]:
    """Resources of a type by the bucket name they attach to (their `bucket` input)."""
    out: dict[str, list[Resource]] = {}
    for r in stack.of_type(type_):
        out.setdefault(_bucket_of(r), []).append(r)
    return out


def _bucket_name(b: Resource) -> str:
    return b.get("bucket") or b.name


@resource_rule("DF-AWS-001", "S3 public access block sets all four flags", "mandatory",
               "trough layer: components/trough/aws.py sets the bucket's public access block; do not override "
               "dragonfarm:troughs.<key> buckets with a public one", [PUBLIC_ACCESS_BLOCK],
               checkov="CKV_AWS_53, CKV_AWS_54, CKV_AWS_55, CKV_AWS_56",
               source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html")
def s3_public_access_block(r: Resource) -> list[str]:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    off = [f for f in flags if not truthy(r.get(f))]
    return [f"public access block leaves {', '.join(off)} off"] if off else []


# DF-AWS-001 stays a resource rule (the CrossGuard pack checks each block as it is planned); that every bucket has
# one needs the whole stack, so it is its own stack rule.
@stack_rule("DF-AWS-023", "every S3 bucket has its own public access block", "mandatory",
            "trough layer: components/trough/aws.py gives each dragonfarm:troughs.<key> bucket a BucketPublicAccessBlock "
            "naming it; a bucket made outside the trough needs one too",
            checkov="CKV2_AWS_6",
            source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html")
def s3_has_public_access_block(stack: Stack) -> list[tuple[Resource | None, str | Unknown]]:
    blocks = _linked(stack, PUBLIC_ACCESS_BLOCK)

    def one(b: Resource) -> list[tuple[Resource | None, str]]:
        if blocks.get(_bucket_name(b)):
            return []
        return [(b, "bucket has no public access block (no BucketPublicAccessBlock with this bucket)")]

    return each(stack.of_type(BUCKET), one)


def _sse_problem(config: Resource, keys: set[str] | None) -> str:
    problems = []
    for rule in known_items(config.get("rules"), f"{config.name}: rules"):
        default = known(rule.get("applyServerSideEncryptionByDefault") if isinstance(rule, Mapping) else None,
                        f"{config.name}: rules.applyServerSideEncryptionByDefault") or {}
        if not isinstance(default, Mapping):
            continue
        algorithm = known(default.get("sseAlgorithm"), f"{config.name}: sseAlgorithm")
        if algorithm not in ("aws:kms", "aws:kms:dsse"):
            problems.append(f"sseAlgorithm is {algorithm!r}, not aws:kms")
            continue
        problem = key_problem(known(default.get("kmsMasterKeyId"), f"{config.name}: kmsMasterKeyId"), keys, "kmsMasterKeyId")
        if not problem:
            return ""
        problems.append(problem)
    return "bucket default encryption is not SSE-KMS with the farm's key: " + ("; ".join(problems) or "no rule")


@stack_rule("DF-AWS-002", "every S3 bucket's default encryption uses the farm's KMS key", "mandatory",
            "trough layer encrypts with the fence key; set dragonfarm:fence.existing_key_id only to a customer-managed "
            "KMS key ARN (never alias/aws/s3)", checkov="CKV_AWS_145",
            source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html")
def s3_kms(stack: Stack) -> list[tuple[Resource | None, str | Unknown]]:
    configs = _linked(stack, SSE)
    keys = farm_keys(stack)

    def one(b: Resource) -> list[tuple[Resource | None, str]]:
        mine = configs.get(_bucket_name(b), [])
        if not mine:
            return [(b, "bucket has no default encryption configuration (BucketServerSideEncryptionConfiguration)")]
        return [(c, problem) for c in mine if (problem := _sse_problem(c, keys))]

    return each(stack.of_type(BUCKET), one)


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
    statements = [statements] if isinstance(statements, Mapping) else known_items(statements, where)
    return [s for s in statements if isinstance(s, Mapping)]


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, (str, Mapping)) else items(value)


def _denies_plain_http(s: Mapping[str, Any], bucket: str) -> bool:
    """A Deny for every principal on every S3 action against the bucket and its objects when aws:SecureTransport
    is false."""
    if s.get("Effect") != "Deny" or "NotAction" in s or "NotResource" in s or "NotPrincipal" in s:
        return False
    cond = s.get("Condition")
    if not isinstance(cond, Mapping):
        return False
    secure = [v for op in ("Bool", "BoolIfExists") if isinstance(cond.get(op), Mapping)
              for v in _as_list(cond[op].get("aws:SecureTransport"))]
    if not secure or any(str(v).lower() != "false" for v in secure):
        return False
    principal = s.get("Principal")
    if not (principal == "*" or (isinstance(principal, Mapping) and "*" in _as_list(principal.get("AWS")))):
        return False
    if not any(a in ("*", "s3:*") for a in _as_list(s.get("Action"))):
        return False
    patterns = [p for p in _as_list(s.get("Resource")) if isinstance(p, str)]
    partitions = {p.split(":")[1] for p in patterns if p.startswith("arn:") and p.count(":") >= 2} or {"aws"}
    return any(all(any(fnmatchcase(f"arn:{part}:s3:::{bucket}{tail}", p) for p in patterns) for tail in ("", "/*"))
               for part in partitions)


@stack_rule("DF-AWS-005", "S3 buckets refuse requests without TLS", "mandatory",
            "trough layer: each bucket's policy denies s3:* on the bucket and <bucket>/* when aws:SecureTransport is "
            "false (components/trough/aws.py)",
            checkov="CKV_AWS_379",
            source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html")
def s3_tls_only(stack: Stack) -> list[tuple[Resource | None, str | Unknown]]:
    policies = _linked(stack, BUCKET_POLICY)

    def one(b: Resource) -> list[tuple[Resource | None, str]]:
        name = _bucket_name(b)
        for p in policies.get(name, []):
            if any(_denies_plain_http(s, name) for s in _statements(p.get("policy"), f"{p.name}: policy")):
                return []
        return [(b, "no bucket policy denies s3:* on the bucket and its objects (arn and arn/*) to every principal "
                    "when aws:SecureTransport is false")]

    return each(stack.of_type(BUCKET), one)


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
    if "secrets" not in resources:
        return ["Kubernetes secrets are not envelope-encrypted with a KMS key (encryptionConfig)"]
    problem = key_problem(r.get("encryptionConfig.provider.keyArn"), None, "encryptionConfig.provider.keyArn")
    return [f"Kubernetes secrets are not envelope-encrypted with a customer-managed KMS key: {problem}"] if problem else []


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
    problem = key_problem(r.get("kmsKeyId"), None, "kmsKeyId")
    return [f"log group is not encrypted with a customer-managed KMS key: {problem}"] if problem else []


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


def _volumes(r: Resource) -> tuple[list[Mapping[str, Any]], str]:
    """A resource's EBS volume settings (instance root and extra volumes; launch template and node class mappings)
    and the field its key goes in."""
    if r.type == INSTANCE:
        root = known(r.get("rootBlockDevice"), f"{r.name}: rootBlockDevice")
        volumes = [dict(root) if isinstance(root, Mapping) else {}]
        volumes[0].setdefault("deviceName", "root")
        volumes += [v for v in known_items(r.get("ebsBlockDevices"), f"{r.name}: ebsBlockDevices") if isinstance(v, Mapping)]
        return volumes, "kmsKeyId"
    path, key_field = ("blockDeviceMappings", "kmsKeyId") if r.type == LAUNCH_TEMPLATE else ("spec.blockDeviceMappings", "kmsKeyID")
    volumes = []
    for m in known_items(r.get(path), f"{r.name}: {path}"):
        ebs = known(m.get("ebs"), f"{r.name}: {path}.ebs") if isinstance(m, Mapping) else None
        if isinstance(ebs, Mapping):
            volumes.append({"deviceName": m.get("deviceName"), **ebs})
    return volumes, key_field


@resource_rule("DF-AWS-013", "EBS volumes encrypted with the farm's KMS key", "mandatory",
               "barn / breeding ground: root and data volumes take the fence key (dragonfarm:fence.existing_key_id if you "
               "bring one); launch templates and EC2NodeClasses map at least the root volume with it",
               [INSTANCE, LAUNCH_TEMPLATE, NODE_CLASS], checkov="CKV_AWS_8",
               source="https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption.html")
def ebs_encryption(r: Resource) -> list[str]:
    volumes, key_field = _volumes(r)
    if not volumes:
        return [f"no block device mapping with the farm's key ({key_field}): volumes take the AMI's defaults"]
    out = []
    for v in volumes:
        where = f"{r.name}: {v.get('deviceName') or 'volume'}"
        problem = key_problem(known(v.get(key_field), f"{where}.{key_field}"), None, key_field)
        if not truthy(known(v.get("encrypted"), f"{where}.encrypted")) or problem:
            out.append(f"volume {v.get('deviceName') or '(unnamed)'} is not encrypted with a customer-managed KMS key "
                       f"({problem or 'encrypted is not true'})")
    return out


@resource_rule("DF-AWS-014", "EC2 instances get no public IP", "mandatory",
               "barn: dev boxes sit in private subnets, reached through SSM (components/barn/aws.py)",
               [INSTANCE], checkov="CKV_AWS_88",
               source="https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-instance-addressing.html")
def instance_public_ip(r: Resource) -> list[str]:
    return ["instance asks for a public IP (associatePublicIpAddress)"] if truthy(r.get("associatePublicIpAddress")) else []


def _port_hit(protocol: Any, low: Any, high: Any, where: str) -> list[int]:
    protocol = str(known(protocol, f"{where} protocol")).lower()
    if protocol in ("-1", "all"):
        return list(SENSITIVE_PORTS)
    if protocol not in ("tcp", "6"):
        return []
    lo, hi = port(low, f"{where} fromPort", 0), port(high, f"{where} toPort", 65535)
    return [p for p in SENSITIVE_PORTS if lo <= p <= hi]


@resource_rule("DF-AWS-015", "no 0.0.0.0/0 ingress to SSH, RDP or the Kubernetes API", "mandatory",
               "dragonfarm:breeding_ground.runner_cidrs / public_endpoint_cidrs (never 0.0.0.0/0); barns take no ingress; "
               "the fence empties the default security group",
               [SG, DEFAULT_SG, SG_INGRESS, SG_RULE], checkov="CKV_AWS_24, CKV_AWS_25, CKV_AWS_277",
               source="https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html")
def world_ingress(r: Resource) -> list[str]:
    out = []
    if r.type in (SG, DEFAULT_SG):
        for i, rule in enumerate(known_items(r.get("ingress"), f"{r.name}: ingress")):
            if not isinstance(rule, Mapping):
                continue
            where = f"{r.name}: ingress[{i}]"
            cidrs = known_items(rule.get("cidrBlocks"), f"{where}.cidrBlocks") + \
                known_items(rule.get("ipv6CidrBlocks"), f"{where}.ipv6CidrBlocks")
            ports = _port_hit(rule.get("protocol"), rule.get("fromPort"), rule.get("toPort"), where)
            if ports and any(open_to_world(c, f"{where} CIDR") for c in cidrs):
                out.append(f"inline ingress opens port(s) {', '.join(map(str, ports))} to the internet")
        return out
    if r.type == SG_RULE and r.get("type") != "ingress":
        return []
    cidrs = [r.get("cidrIpv4"), r.get("cidrIpv6")] + known_items(r.get("cidrBlocks"), f"{r.name}: cidrBlocks") + \
        known_items(r.get("ipv6CidrBlocks"), f"{r.name}: ipv6CidrBlocks")
    ports = _port_hit(r.get("ipProtocol") or r.get("protocol"), r.get("fromPort"), r.get("toPort"), r.name + ":")
    if ports and any(open_to_world(c, f"{r.name}: CIDR") for c in cidrs):
        out.append(f"ingress opens port(s) {', '.join(map(str, ports))} to the internet")
    return out


# ---- IAM and keys ---------------------------------------------------------------------------------------

def _wildcard_statements(policy: Any, where: str) -> list[str]:
    out = []
    for s in _statements(policy, where):
        if s.get("Effect") != "Allow":
            continue
        actions = _as_list(s.get("Action"))
        every_action = any(a in ("*", "*:*") for a in actions) or "NotAction" in s
        every_resource = "*" in _as_list(s.get("Resource")) or "NotResource" in s
        if every_action and every_resource:
            how = "NotAction (everything but a list)" if "NotAction" in s else "every action"
            out.append(f"statement {s.get('Sid') or '(no Sid)'} allows {how} on every resource")
    return out


@resource_rule("DF-AWS-016", "no policy the farm writes or attaches allows action * on resource *", "mandatory",
               "the component that writes the policy: scope its actions and resources, never attach AdministratorAccess "
               "(components/<layer>/aws.py)",
               POLICY_TYPES + (ROLE,) + ATTACHMENT_TYPES, checkov="CKV_AWS_62, CKV_AWS_1, CKV_AWS_274",
               source="https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html#grant-least-privilege")
def wildcard_policy(r: Resource) -> list[str]:
    if r.type in ATTACHMENT_TYPES:
        arn = r.get("policyArn")
        return [f"attaches {arn}"] if isinstance(arn, str) and arn.endswith(ADMIN_POLICY) else []
    if r.type == ROLE:
        out = [f"attaches {arn}" for arn in known_items(r.get("managedPolicyArns"), f"{r.name}: managedPolicyArns")
               if isinstance(arn, str) and arn.endswith(ADMIN_POLICY)]
        for i, inline in enumerate(known_items(r.get("inlinePolicies"), f"{r.name}: inlinePolicies")):
            if isinstance(inline, Mapping):
                name = inline.get("name") or f"inlinePolicies[{i}]"
                out += [f"inline policy {name}: {m}" for m in
                        _wildcard_statements(inline.get("policy"), f"{r.name}: inlinePolicies[{i}].policy")]
        return out
    return _wildcard_statements(r.get("policy"), f"{r.name}: policy")


@resource_rule("DF-AWS-017", "KMS keys rotate yearly", "mandatory",
               "fence: enableKeyRotation on the farm key (components/fence/aws.py)", [KMS_KEY], checkov="CKV_AWS_7",
               source="https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html")
def kms_rotation(r: Resource) -> list[str]:
    return [] if truthy(r.get("enableKeyRotation")) else ["key rotation is off (enableKeyRotation)"]



# ---- the farm's key everywhere, and the EKS cluster's own settings ---------------------------------------

def _key_refs(r: Resource) -> list[tuple[str, Any]]:
    """(field, key reference) for each KMS key a resource names (EKS secrets, log groups, EBS volumes)."""
    if r.type == EKS:
        return [("encryptionConfig.provider.keyArn", r.get("encryptionConfig.provider.keyArn"))]
    if r.type == LOG_GROUP:
        return [("kmsKeyId", r.get("kmsKeyId"))]
    volumes, key_field = _volumes(r)
    return [(f"{v.get('deviceName') or 'volume'} {key_field}", v.get(key_field)) for v in volumes]


@stack_rule("DF-AWS-018", "EKS secrets, log groups and EBS volumes use the farm's KMS key, not any key", "mandatory",
            "fence: every layer takes the fence key (dragonfarm:fence.existing_key_id if you bring one); do not hand a "
            "component another key",
            source="https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#customer-cmk")
def farm_key_everywhere(stack: Stack) -> list[tuple[Resource | None, str | Unknown]]:
    keys = farm_keys(stack)
    if keys is None:
        return []

    def one(r: Resource) -> list[tuple[Resource | None, str]]:
        out: list[tuple[Resource | None, str]] = []
        for field, ref in _key_refs(r):
            ref = known(ref, f"{r.name}: {field}")
            # No key or an AWS-managed one is DF-AWS-007/010/013's finding; here: a customer key that is not the farm's.
            if not aws_managed_key(ref) and key_id(str(ref)) not in keys:
                out.append((r, f"{field} names a KMS key that is not the farm's ({ref})"))
        return out

    return each(stack.of_type(EKS, LOG_GROUP, INSTANCE, LAUNCH_TEMPLATE, NODE_CLASS), one)


def _cluster_name(r: Resource) -> str:
    return r.get("name") or r.name


@stack_rule("DF-AWS-019", "each EKS cluster's control-plane log group exists with retention and the farm's key",
            "mandatory",
            "breeding ground creates /aws/eks/<cluster>/cluster before the cluster, with dragonfarm:fence.log_retention_days "
            "and the fence key (components/breeding_ground/aws.py); otherwise EKS creates it, kept for ever, unencrypted",
            source="https://docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html")
def eks_log_group(stack: Stack) -> list[tuple[Resource | None, str | Unknown]]:
    groups: dict[str, Resource] = {}
    for g in stack.of_type(LOG_GROUP):
        name = g.get("name")
        if isinstance(name, str):
            groups[name] = g

    def one(cluster: Resource) -> list[tuple[Resource | None, str]]:
        wanted = f"/aws/eks/{_cluster_name(cluster)}/cluster"
        group = groups.get(wanted)
        if group is None:
            return [(cluster, f"no log group {wanted}: EKS creates it with no retention and no KMS key")]
        days = group.get("retentionInDays")
        missing = ([] if isinstance(days, (int, float)) and days > 0 else ["retentionInDays"]) + \
            (["kmsKeyId"] if aws_managed_key(group.get("kmsKeyId")) else [])
        return [(cluster, f"log group {wanted} has no {' and no '.join(missing)}")] if missing else []

    return each(stack.of_type(EKS), one)


def _addons(stack: Stack, addon: str) -> dict[str, Resource]:
    """The stack's EKS add-ons of one name, by cluster name."""
    return {str(a.get("clusterName")): a for a in stack.of_type(EKS_ADDON) if a.get("addonName") == addon}


@stack_rule("DF-AWS-020", "EKS enforces Kubernetes network policies (VPC CNI network policy on)", "mandatory",
            "breeding ground: the vpc-cni add-on's configurationValues {\"enableNetworkPolicy\": \"true\"} "
            "(components/breeding_ground/aws.py); the team namespaces' NetworkPolicies do nothing without it",
            source="https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy.html")
def eks_network_policy(stack: Stack) -> list[tuple[Resource | None, str | Unknown]]:
    cni = _addons(stack, "vpc-cni")

    def one(cluster: Resource) -> list[tuple[Resource | None, str]]:
        addon = cni.get(_cluster_name(cluster))
        if addon is None:
            return [(cluster, "no vpc-cni add-on: network policies are not enforced")]
        raw = addon.get("configurationValues")
        try:
            values = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            values = None
        if not isinstance(values, Mapping) or not truthy(known(values.get("enableNetworkPolicy"),
                                                              f"{addon.name}: configurationValues.enableNetworkPolicy")):
            return [(addon, "vpc-cni configurationValues does not set enableNetworkPolicy \"true\": "
                            "network policies are not enforced")]
        return []

    return each(stack.of_type(EKS), one)


@stack_rule("DF-AWS-021", "EKS pods get AWS credentials through EKS Pod Identity (or IRSA), not the node role",
            "mandatory",
            "breeding ground: the eks-pod-identity-agent add-on and a pod identity association per team "
            "(dragonfarm:breeding_ground.teams.<team>), components/breeding_ground/aws.py",
            source="https://docs.aws.amazon.com/eks/latest/userguide/pod-identities.html")
def eks_pod_identity(stack: Stack) -> list[tuple[Resource | None, str | Unknown]]:
    agents = _addons(stack, "eks-pod-identity-agent")
    irsa = bool(stack.of_type(OIDC_PROVIDER))

    def one(cluster: Resource) -> list[tuple[Resource | None, str]]:
        if _cluster_name(cluster) in agents or irsa:
            return []
        return [(cluster, "no eks-pod-identity-agent add-on (nor an IAM OIDC provider for IRSA): "
                          "pods can only use the node role")]

    return each(stack.of_type(EKS), one)


@resource_rule("DF-AWS-022", "Kubernetes nodes keep the instance metadata hop limit at 1", "mandatory",
               "breeding ground: metadataOptions.httpPutResponseHopLimit 1 on node launch templates and EC2NodeClasses "
               "(components/breeding_ground/aws.py), so pods cannot take the node role's credentials from IMDS",
               [LAUNCH_TEMPLATE, NODE_CLASS], checkov="CKV_AWS_341",
               source="https://docs.aws.amazon.com/eks/latest/best-practices/identity-and-access-management.html")
def node_hop_limit(r: Resource) -> list[str]:
    path = "metadataOptions.httpPutResponseHopLimit" if r.type == LAUNCH_TEMPLATE else "spec.metadataOptions.httpPutResponseHopLimit"
    limit = r.get(path)
    if limit is None and r.type == NODE_CLASS:
        return []  # Karpenter's default is 1
    value = port(limit, f"{r.name}: {path}", 0)
    return [] if value == 1 else [f"metadata hop limit is {limit!r}, not 1 ({path}): pods can reach the node's IMDS"]
