"""AwsBreedingGround: EKS with Karpenter GPU pools, spot first, scaling to zero, usable on day one.

- EKS: pinned version inside standard support (versions.csv), API endpoint reachable from where
  `pulumi up` runs (`deploy_from`: a public endpoint open to listed public CIDRs, or a private one
  open to listed runner CIDRs inside the network), secrets encrypted with the fence's KMS key,
  control-plane logs kept `log_retention_days`, access entries (no aws-auth ConfigMap): admins get
  cluster admin, team members edit in their namespace.
- A small on-demand system node group (Karpenter and CoreDNS run there) from a launch template that
  tags instances and volumes with the farm's cost tags and encrypts the root volume with the farm key.
- Core add-ons pinned per Kubernetes version (addon_versions.csv); the VPC CNI enforces NetworkPolicy.
- Karpenter: controller role (Pod Identity) with the upstream reference policy's cluster-tag scoping,
  node role + access entry, the spot interruption queue and its EventBridge rules, the Helm release
  after the system nodes and core add-ons, and per GPU pool one EC2NodeClass (disk size, encrypted
  gp3, IMDSv2 only, private subnets, cost tags on instances and volumes, optional reservation) and
  one NodePool (capacity types, instance types from the GPU catalog, GPU limit, taint, labels,
  consolidate when empty, no forced expiry unless the pool asks). EFA pools stay in one zone.
- Warm GPU capacity (`min_nodes > 0`): a managed node group of `min_nodes` GPU nodes below the
  Karpenter NodePool, with the same labels and taints; Karpenter adds nodes above it up to max_nodes.
- Per team: an IAM role bound to the team's `workload` ServiceAccount by Pod Identity, with least
  privilege on the team's troughs.
- The cloud-neutral GpuStack on top.

Karpenter never creates placement groups, so EFA pools stay usable with capacity reservations.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi_aws import cloudwatch, ec2, eks, iam, sqs, vpc
from pulumi_kubernetes import Provider as KubernetesProvider
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.helm.v3 import Release

from components.aws_iam import assume, deny_insecure_transport, policy, trough_policy
from components.base import FarmComponent, token
from components.breeding_ground import catalog, charts, versions
from components.breeding_ground.access import exec_kubeconfig, principal_slug, refuse_deployer
from components.breeding_ground.gpu_stack import TEAM_SERVICE_ACCOUNT, GpuStack, gpu_tolerations
from components.breeding_ground.spec import GPU_NODE_LABEL, POOL_LABEL, BreedingGroundSpec, Capacity, GpuPoolSpec, pool_labels

SYSTEM_DISK_GB = 50
CONTROL_PLANE_LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
NODE_DRAIN_LIMIT = "24h"
KARPENTER_NAMESPACE = "kube-system"
# EKS managed access policies (EKS user guide, "Review access policy permissions").
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
EDIT_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"


def node_image(spec: BreedingGroundSpec) -> str:
    """The EKS AMI release pinned for the cluster's Kubernetes version (addon_versions.csv, `node-ami`)."""
    return versions.addons("aws", spec.version("aws"))["node-ami"]


def node_ami_alias(release_version: str) -> str:
    """Karpenter's alias for the EKS-optimized AL2023 release of a managed node group release version
    (`1.35.6-20260714` -> `al2023@v20260714`): Karpenter picks that release's NVIDIA variant for GPU
    instance types, the node groups run the same release, and no GPU driver drifts silently. The release
    must exist for the cluster's Kubernetes version, so it is pinned per version (addon_versions.csv)."""
    return f"al2023@v{release_version.split('-')[1]}"

# Managed node groups take the taint effect as an enum (EKS API NodeGroup Taint).
MNG_TAINT_EFFECT = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}


def system_ami_type(instance: catalog.CpuInstance) -> str:
    """The EKS AL2023 AMI type matching the instance's architecture (cpu_catalog.csv; an arm64 type on an
    x86_64 AMI never joins)."""
    return "AL2023_ARM_64_STANDARD" if instance.arch == "arm64" else "AL2023_x86_64_STANDARD"


def node_pool_spec(key: str, pool: GpuPoolSpec, node_class: str, region: str, zones: list[str]) -> dict[str, Any]:
    """The Karpenter NodePool spec for a GPU pool (pure: tests read it directly)."""
    capacity_types = ["reserved"] if pool.capacity_reservation_id else pool.capacity.capacity_types
    requirements = [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity_types},
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": pool.instance_types("aws", region)},
    ]
    if pool.efa:
        # EFA traffic does not cross subnets: every node of an EFA pool goes in the first zone's subnet.
        requirements.append({"key": "topology.kubernetes.io/zone", "operator": "In", "values": zones[:1]})
    return {
        "template": {
            "metadata": {"labels": pool_labels(key, pool)},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class},
                "requirements": requirements,
                "taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.taints],
                # A node being removed (drift, deletion, `pulumi destroy`) is force-drained after this, even if a
                # PodDisruptionBudget or karpenter.sh/do-not-disrupt blocks it: without it a blocked drain holds
                # the node (and its GPUs' bill) forever (Karpenter v1 NodePool API, terminationGracePeriod).
                "terminationGracePeriod": NODE_DRAIN_LIMIT,
                # Expiry drains a node whatever runs on it: off unless the pool asks (training jobs run for days).
                "expireAfter": f"{pool.expire_after_hours}h" if pool.expire_after_hours else "Never",
            },
        },
        # Warm nodes (a managed node group below Karpenter) count toward max_nodes, so Karpenter gets the rest.
        "limits": {"nvidia.com/gpu": str((pool.max_nodes - pool.min_nodes) * pool.gpus_per_node)},
        # GPU jobs are long: only empty nodes are removed (never a running job's node), after the pool's delay.
        # A new node image (a node-ami bump) drifts every node; with terminationGracePeriod set Karpenter would
        # drain drifted nodes through do-not-disrupt and PDBs, killing long jobs. No budget for Drifted: old
        # nodes leave when empty and new ones come up on the new image.
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": f"{pool.scale_down_after_minutes}m",
                       "budgets": [{"nodes": "0", "reasons": ["Drifted"]}]},
    }


def node_class_spec(discovery_tag: str, pool: GpuPoolSpec, role: pulumi.Input[str], security_group: pulumi.Input[str],
                    key_arn: pulumi.Input[str], tags: dict[str, str], ami_release: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "role": role,
        "amiSelectorTerms": [{"alias": node_ami_alias(ami_release)}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": discovery_tag}}],
        "securityGroupSelectorTerms": [{"id": security_group}],
        "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1},
        "blockDeviceMappings": [{"deviceName": "/dev/xvda",
                                 "ebs": {"volumeSize": f"{pool.disk_gb}Gi", "volumeType": "gp3", "encrypted": True,
                                         "kmsKeyID": key_arn, "deleteOnTermination": True}}],
        # Provider default tags never reach instances Karpenter launches: without these the farm's
        # tag-filtered budget would not see its largest cost.
        "tags": dict(tags),
    }
    if pool.capacity_reservation_id:
        spec["capacityReservationSelectorTerms"] = [{"id": pool.capacity_reservation_id}]
    return spec


def node_policies() -> dict[str, str]:
    base = "arn:aws:iam::aws:policy/"
    return {"worker": base + "AmazonEKSWorkerNodePolicy", "cni": base + "AmazonEKS_CNI_Policy",
            "ecr": base + "AmazonEC2ContainerRegistryReadOnly", "ssm": base + "AmazonSSMManagedInstanceCore"}


def karpenter_controller_policy(region: str, account: str, cluster: str, node_role_arn: str, queue_arn: str, cluster_arn: str) -> str:
    """Least privilege for the Karpenter controller, scoped to this cluster's resources by tag the way
    the Karpenter project's reference policy is (getting-started cloudformation.yaml at tag v1.14.1, its
    NodeLifecycle, IAMIntegration, EKSIntegration, Interruption and ResourceDiscovery policies in one
    document; the zonal-shift policy is left out as the farm leaves enableZonalShift off): a controller can
    create, tag and terminate only what carries its own cluster's tags."""
    ec2_arn = f"arn:aws:ec2:{region}"
    owned = {f"aws:RequestTag/kubernetes.io/cluster/{cluster}": "owned", "aws:RequestTag/eks:eks-cluster-name": cluster}
    launched = [f"{ec2_arn}:*:{kind}/*" for kind in ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")]
    profile = f"arn:aws:iam::{account}:instance-profile/*"
    profile_owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned", "aws:ResourceTag/topology.kubernetes.io/region": region}
    return policy(
        {"Sid": "AllowScopedEC2InstanceAccessActions", "Effect": "Allow", "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
         "Resource": [f"{ec2_arn}::image/*", f"{ec2_arn}::snapshot/*", f"{ec2_arn}:*:security-group/*", f"{ec2_arn}:*:subnet/*",
                      f"{ec2_arn}:*:capacity-reservation/*", f"{ec2_arn}:*:placement-group/*"]},
        {"Sid": "AllowScopedEC2LaunchTemplateAccessActions", "Effect": "Allow", "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
         "Resource": f"{ec2_arn}:*:launch-template/*",
         "Condition": {"StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"},
                       "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "AllowScopedEC2InstanceActionsWithTags", "Effect": "Allow",
         "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"], "Resource": launched,
         "Condition": {"StringEquals": owned, "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "AllowScopedResourceCreationTagging", "Effect": "Allow", "Action": "ec2:CreateTags", "Resource": launched,
         "Condition": {"StringEquals": {**owned, "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                       "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "AllowScopedResourceTagging", "Effect": "Allow", "Action": "ec2:CreateTags", "Resource": f"{ec2_arn}:*:instance/*",
         "Condition": {"StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"},
                       "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                       "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster},
                       "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]}}},
        {"Sid": "AllowScopedDeletion", "Effect": "Allow", "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
         "Resource": [f"{ec2_arn}:*:instance/*", f"{ec2_arn}:*:launch-template/*"],
         "Condition": {"StringEquals": {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"},
                       "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "AllowRegionalReadActions", "Effect": "Allow",
         "Action": ["ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances", "ec2:DescribeInstanceStatus",
                    "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates",
                    "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups", "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"],
         "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": region}}},
        {"Sid": "AllowSSMReadActions", "Effect": "Allow", "Action": "ssm:GetParameter",
         "Resource": f"arn:aws:ssm:{region}::parameter/aws/service/*"},
        {"Sid": "AllowPricingReadActions", "Effect": "Allow", "Action": "pricing:GetProducts", "Resource": "*"},
        {"Sid": "AllowInterruptionQueueActions", "Effect": "Allow",
         "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"], "Resource": queue_arn},
        {"Sid": "AllowPassingInstanceRole", "Effect": "Allow", "Action": "iam:PassRole", "Resource": node_role_arn,
         "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}},
        {"Sid": "AllowScopedInstanceProfileCreationActions", "Effect": "Allow", "Action": "iam:CreateInstanceProfile",
         "Resource": profile,
         "Condition": {"StringEquals": {**owned, "aws:RequestTag/topology.kubernetes.io/region": region},
                       "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
        {"Sid": "AllowScopedInstanceProfileTagActions", "Effect": "Allow", "Action": "iam:TagInstanceProfile", "Resource": profile,
         "Condition": {"StringEquals": {**profile_owned, **owned, "aws:RequestTag/topology.kubernetes.io/region": region},
                       "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                                      "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
        {"Sid": "AllowScopedInstanceProfileActions", "Effect": "Allow",
         "Action": ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
         "Resource": profile,
         "Condition": {"StringEquals": profile_owned, "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}}},
        {"Sid": "AllowInstanceProfileReadActions", "Effect": "Allow", "Action": "iam:GetInstanceProfile", "Resource": profile},
        {"Sid": "AllowUnscopedInstanceProfileListAction", "Effect": "Allow", "Action": "iam:ListInstanceProfiles", "Resource": "*"},
        {"Sid": "AllowAPIServerEndpointDiscovery", "Effect": "Allow", "Action": "eks:DescribeCluster", "Resource": cluster_arn},
    )


def kubeconfig(cluster: eks.Cluster, region: str) -> pulumi.Output[str]:
    """A kubeconfig that gets tokens from the AWS CLI."""
    return exec_kubeconfig(cluster.name, cluster.endpoint, cluster.certificate_authority.data, "aws",
                           cluster.name.apply(lambda n: ["eks", "get-token", "--cluster-name", n, "--region", region]))


def same_principal(caller_arn: str, principal_arn: str) -> bool:
    """Whether an access-entry principal is the identity running `pulumi up` (an IAM user, or the role behind
    an assumed-role session: arn:aws:sts::<account>:assumed-role/<name>/<session>). Role paths are not in a
    session ARN, so roles compare by account and name."""
    caller, principal = caller_arn.split(":"), principal_arn.split(":")
    if caller[4] != principal[4]:
        return False
    kind, _, rest = caller[5].partition("/")
    if kind == "assumed-role":
        return principal[5].startswith("role/") and principal[5].rsplit("/", 1)[-1] == rest.split("/", 1)[0]
    return caller[5] == principal[5]


def checked_deployer(caller_arn: str, admins: list[str]) -> str:
    """`caller_arn` if it is one of `admins`. The program installs the in-cluster stack as whoever runs
    `pulumi up`, and the cluster admits only the stack's admins and members (no automatic creator entry,
    whose duplicate would fail with ResourceInUseException when the creator is also listed). Anyone else
    would get Unauthorized after the cluster is built: refused in preview, before anything is created."""
    if not any(same_principal(caller_arn, admin) for admin in admins):
        refuse_deployer(caller_arn, admins)
    return caller_arn


def cidr_slug(cidr: str) -> str:
    return re.sub(r"[^0-9]+", "-", cidr)


class AwsBreedingGround(FarmComponent):
    TOKEN = token("AwsBreedingGround")

    cluster_name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    certificate_authority: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    karpenter_controller_role_name: pulumi.Output[str]
    karpenter_controller_role_arn: pulumi.Output[str]

    def __init__(self, name: str, spec: BreedingGroundSpec, *, region: str, zones: list[str],
                 subnet_ids: list[pulumi.Output[str]], key_arn: pulumi.Input[str], services_cidr: str, log_retention_days: int,
                 discovery_tag: str, tags: dict[str, str], team_troughs: dict[str, list[tuple[pulumi.Input[str], str]]] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        self.account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        cluster = self._cluster(name, spec, subnet_ids, key_arn, services_cidr, log_retention_days)
        self.cluster_name, self.endpoint = cluster.name, cluster.endpoint
        self.certificate_authority = cluster.certificate_authority.data
        admin_access = self._people(name, spec, cluster)
        node_role = self._node_role(name)
        system = self._system_pool(name, spec, cluster, subnet_ids, node_role, key_arn, tags)
        core = self._addons(name, spec, cluster, system)
        self.kubeconfig = pulumi.Output.secret(kubeconfig(cluster, region))
        # The provider (and so every in-cluster resource) waits for the admins' access and for the check that
        # the identity running `pulumi up` is one of them.
        provider = KubernetesProvider(f"{name}-k8s", kubeconfig=pulumi.Output.all(self.kubeconfig, self.deployer).apply(lambda a: a[0]),
                                      enable_server_side_apply=True, opts=self.child(depends_on=admin_access))
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        karpenter = self._karpenter(name, spec, region, zones, cluster, key_arn, discovery_tag, tags, in_cluster, [system, *core])
        self._warm_pools(name, spec, cluster, subnet_ids, region, node_role, key_arn, tags)
        self._team_identities(name, spec, cluster, region, key_arn, team_troughs or {})
        GpuStack(f"{name}-gpu", spec, cloud="aws", after=[karpenter, system, *core],
                 opts=pulumi.ResourceOptions(parent=self, providers=[provider]))
        self.finish({"cluster_name": self.cluster_name, "endpoint": self.endpoint})

    def _cluster(self, name: str, spec: BreedingGroundSpec, subnet_ids: list[pulumi.Output[str]], key_arn: pulumi.Input[str],
                 services_cidr: str, log_retention_days: int) -> eks.Cluster:
        role = iam.Role(f"{name}-cluster", assume_role_policy=assume("eks.amazonaws.com", ["sts:AssumeRole", "sts:TagSession"]),
                        opts=self.child())
        attach = iam.RolePolicyAttachment(f"{name}-cluster-policy", role=role.name,
                                          policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy", opts=self.child())
        logs = cloudwatch.LogGroup(f"{name}-control-plane", name=f"/aws/eks/{name}/cluster", retention_in_days=log_retention_days,
                                   kms_key_id=key_arn, opts=self.child())
        public = spec.deploy_from == "internet"
        cluster = eks.Cluster(
            name, name=name, version=spec.version("aws"), role_arn=role.arn,
            vpc_config={"subnet_ids": subnet_ids, "endpoint_private_access": True, "endpoint_public_access": public,
                        "public_access_cidrs": [str(c) for c in spec.public_endpoint_cidrs] if public else None},
            encryption_config={"provider": {"key_arn": key_arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=CONTROL_PLANE_LOGS,
            # No automatic entry for whoever created the cluster: access is exactly the stack's admins and
            # members, whichever identity runs `pulumi up` (it must be an admin: checked before anything is built).
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": False},
            kubernetes_network_config={"service_ipv4_cidr": services_cidr},
            upgrade_policy={"support_type": "STANDARD"},  # extended support costs 6x the control-plane fee
            opts=self.child(depends_on=[attach, logs]))
        # A private endpoint answers only what the cluster security group admits: the runners' networks.
        for cidr in spec.runner_cidrs:
            vpc.SecurityGroupIngressRule(f"{name}-api-from-{cidr_slug(str(cidr))}", description=f"Kubernetes API from runners in {cidr}",
                                         security_group_id=cluster.vpc_config.cluster_security_group_id, cidr_ipv4=str(cidr),
                                         ip_protocol="tcp", from_port=443, to_port=443, opts=self.child())
        return cluster

    def _people(self, name: str, spec: BreedingGroundSpec, cluster: eks.Cluster) -> list[pulumi.Resource]:
        """Access entries: one per principal (EKS allows one), admin cluster-wide, members edit in their teams'
        namespaces. Returns the admin associations (what the in-cluster stack waits for) plus the check that
        the identity running `pulumi up` is one of the admins."""
        namespaces: dict[str, list[str]] = {}
        for team, team_spec in spec.teams.items():
            for member in team_spec.members:
                namespaces.setdefault(member, []).append(team)
        caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).arn
        self.deployer = caller.apply(lambda arn: checked_deployer(arn, spec.admins))
        admin_access: list[pulumi.Resource] = []
        for principal in dict.fromkeys([*spec.admins, *namespaces]):
            slug = principal_slug(principal)
            entry = eks.AccessEntry(f"{name}-access-{slug}", cluster_name=cluster.name, principal_arn=principal, type="STANDARD",
                                    opts=self.child())
            if principal in spec.admins:
                admin_access.append(eks.AccessPolicyAssociation(
                    f"{name}-access-{slug}-admin", cluster_name=cluster.name, principal_arn=principal,
                    policy_arn=CLUSTER_ADMIN_POLICY, access_scope={"type": "cluster"}, opts=self.child(depends_on=[entry])))
            if principal in namespaces:
                eks.AccessPolicyAssociation(f"{name}-access-{slug}-edit", cluster_name=cluster.name, principal_arn=principal,
                                            policy_arn=EDIT_POLICY, access_scope={"type": "namespace", "namespaces": sorted(namespaces[principal])},
                                            opts=self.child(depends_on=[entry]))
        return admin_access

    def _node_role(self, name: str) -> iam.Role:
        role = iam.Role(f"{name}-system-nodes", assume_role_policy=assume("ec2.amazonaws.com"), opts=self.child())
        self.node_role_attachments = [
            iam.RolePolicyAttachment(f"{name}-system-nodes-{short}", role=role.name, policy_arn=arn, opts=self.child())
            for short, arn in node_policies().items()]
        return role

    def _launch_template(self, name: str, disk_gb: int, key_arn: pulumi.Input[str], tags: dict[str, str]) -> ec2.LaunchTemplate:
        """What a managed node group launches: IMDSv2 only, root volume encrypted with the farm key, and the
        farm's cost tags on the instances, volumes and interfaces (node group tags do not reach them)."""
        return ec2.LaunchTemplate(
            name, update_default_version=True,
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1},
            block_device_mappings=[{"device_name": "/dev/xvda", "ebs": {"volume_size": disk_gb, "volume_type": "gp3", "encrypted": "true",
                                                                        "kms_key_id": key_arn, "delete_on_termination": "true"}}],
            tag_specifications=[{"resource_type": kind, "tags": dict(tags)} for kind in ("instance", "volume", "network-interface")],
            opts=self.child())

    def _system_pool(self, name: str, spec: BreedingGroundSpec, cluster: eks.Cluster, subnet_ids: list[pulumi.Output[str]],
                     role: iam.Role, key_arn: pulumi.Input[str], tags: dict[str, str]) -> eks.NodeGroup:
        pool = spec.system_pool
        template = self._launch_template(f"{name}-system", SYSTEM_DISK_GB, key_arn, tags)
        return eks.NodeGroup(f"{name}-system", cluster_name=cluster.name, node_group_name=f"{name}-system", node_role_arn=role.arn,
                             subnet_ids=subnet_ids, capacity_type="ON_DEMAND", ami_type=system_ami_type(pool.instance("aws")),
                             release_version=node_image(spec),
                             instance_types=[pool.instance("aws").instance_type],
                             launch_template={"id": template.id, "version": template.latest_version.apply(str)},
                             scaling_config={"min_size": pool.min_nodes, "max_size": pool.max_nodes, "desired_size": pool.min_nodes},
                             update_config={"max_unavailable": 1}, labels={POOL_LABEL: "system"},
                             # The autoscaler owns desired size; a re-run must not reset it.
                             opts=self.child(depends_on=self.node_role_attachments, ignore_changes=["scalingConfig.desiredSize"]))

    def _addons(self, name: str, spec: BreedingGroundSpec, cluster: eks.Cluster, system: eks.NodeGroup) -> list[eks.Addon]:
        """Core add-ons at the versions pinned for the cluster's Kubernetes version. Returns those the
        in-cluster stack waits for (pod networking and DNS)."""
        pinned = versions.addons("aws", spec.version("aws"))
        # vpc-cni gets its AWS permissions through EKS Pod Identity (the node roles keep the CNI policy
        # only so a node can get its first IPs before the Pod Identity agent runs on it).
        cni_role = iam.Role(f"{name}-vpc-cni", assume_role_policy=assume("pods.eks.amazonaws.com", ["sts:AssumeRole", "sts:TagSession"]),
                            opts=self.child())
        iam.RolePolicyAttachment(f"{name}-vpc-cni", role=cni_role.name, policy_arn=node_policies()["cni"], opts=self.child())

        def addon(addon_name: str, depends: list[pulumi.Resource], **extra: Any) -> eks.Addon:
            return eks.Addon(f"{name}-{addon_name}", cluster_name=cluster.name, addon_name=addon_name, addon_version=pinned[addon_name],
                             resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                             opts=self.child(depends_on=depends), **extra)

        agent = addon("eks-pod-identity-agent", [])
        cni = addon("vpc-cni", [agent], pod_identity_associations=[{"role_arn": cni_role.arn, "service_account": "aws-node"}],
                    # The VPC CNI enforces NetworkPolicy only when asked (EKS user guide, "Limit pod traffic with
                    # Kubernetes network policies"): without it the team policies would be ignored.
                    configuration_values=json.dumps({"enableNetworkPolicy": "true"}))
        addon("kube-proxy", [])
        # CoreDNS pods need nodes to run on; created before them the add-on stays degraded.
        dns = addon("coredns", [system, cni])
        return [cni, dns]

    def _karpenter(self, name: str, spec: BreedingGroundSpec, region: str, zones: list[str], cluster: eks.Cluster,
                   key_arn: pulumi.Input[str], discovery_tag: str, tags: dict[str, str], in_cluster: pulumi.ResourceOptions,
                   after: list[pulumi.Resource]) -> Release:
        node_role = iam.Role(f"{name}-karpenter-nodes", name=f"{name}-karpenter-nodes", assume_role_policy=assume("ec2.amazonaws.com"),
                             opts=self.child())
        for short, arn in node_policies().items():
            iam.RolePolicyAttachment(f"{name}-karpenter-nodes-{short}", role=node_role.name, policy_arn=arn, opts=self.child())
        eks.AccessEntry(f"{name}-karpenter-nodes", cluster_name=cluster.name, principal_arn=node_role.arn, type="EC2_LINUX",
                        opts=self.child())
        queue = sqs.Queue(f"{name}-karpenter-interruptions", name=f"{name}-karpenter", message_retention_seconds=300,
                          sqs_managed_sse_enabled=True, opts=self.child())
        sqs.QueuePolicy(f"{name}-karpenter-interruptions", queue_url=queue.url, policy=queue.arn.apply(lambda arn: policy(
            {"Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
             "Action": "sqs:SendMessage", "Resource": arn},
            deny_insecure_transport("DenyHTTP", "sqs:*", arn))), opts=self.child())
        events = {
            "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
            "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
            "state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
            "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
            "reservation-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"]},
        }
        for event, pattern in events.items():
            rule = cloudwatch.EventRule(f"{name}-karpenter-{event}", event_pattern=json.dumps(pattern), opts=self.child())
            cloudwatch.EventTarget(f"{name}-karpenter-{event}", rule=rule.name, arn=queue.arn, opts=self.child())

        controller = iam.Role(f"{name}-karpenter-controller", name=f"{name}-karpenter-controller",
                              assume_role_policy=assume("pods.eks.amazonaws.com", ["sts:AssumeRole", "sts:TagSession"]),
                              opts=self.child())
        self.karpenter_controller_role_name, self.karpenter_controller_role_arn = controller.name, controller.arn
        controller_policy = iam.RolePolicy(
            f"{name}-karpenter-controller", role=controller.id,
            policy=pulumi.Output.all(self.account, cluster.name, node_role.arn, queue.arn, cluster.arn).apply(
                lambda a: karpenter_controller_policy(region, a[0], a[1], a[2], a[3], a[4])),
            opts=self.child())
        identity = eks.PodIdentityAssociation(f"{name}-karpenter", cluster_name=cluster.name, namespace=KARPENTER_NAMESPACE,
                                              service_account="karpenter", role_arn=controller.arn, opts=self.child())
        release = Release(f"{name}-karpenter", name="karpenter", chart=charts.KARPENTER.chart, version=charts.KARPENTER.version,
                          namespace=KARPENTER_NAMESPACE, atomic=True,
                          values={"settings": {"clusterName": cluster.name, "interruptionQueue": queue.name},
                                  "serviceAccount": {"name": "karpenter"},
                                  "nodeSelector": {POOL_LABEL: "system"},
                                  # The chart's anti-affinity puts each replica on its own node, and the system node
                                  # group does not grow by itself: more replicas than system nodes never become ready.
                                  "replicas": min(2, spec.system_pool.min_nodes),
                                  # Pod Identity gives credentials, not the region; with IMDSv2 at hop limit 1 the
                                  # pod cannot ask the instance either (chart values: controller.env AWS_REGION).
                                  "controller": {"env": [{"name": "AWS_REGION", "value": region}],
                                                 "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}},
                          # Karpenter runs on the system nodes and needs pod networking, DNS and its permissions first.
                          opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(
                              depends_on=[identity, controller_policy, *after])))
        after_release = pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=[release]))
        security_group = cluster.vpc_config.cluster_security_group_id
        for key, pool in spec.gpu_pools.items():
            CustomResource(f"{name}-nodeclass-{key}", api_version="karpenter.k8s.aws/v1", kind="EC2NodeClass",
                           metadata={"name": key},
                           spec=node_class_spec(discovery_tag, pool, node_role.name, security_group, key_arn, tags, node_image(spec)),
                           opts=after_release)
            CustomResource(f"{name}-nodepool-{key}", api_version="karpenter.sh/v1", kind="NodePool", metadata={"name": key},
                           spec=node_pool_spec(key, pool, key, region, zones), opts=after_release)
        if any(pool.efa for pool in spec.gpu_pools.values()):
            # EFA interfaces become schedulable (`vpc.amazonaws.com/efa`) only with this plugin.
            Release(f"{name}-efa-device-plugin", name="aws-efa-k8s-device-plugin", chart=charts.AWS_EFA_DEVICE_PLUGIN.chart,
                    version=charts.AWS_EFA_DEVICE_PLUGIN.version, repository_opts={"repo": charts.AWS_EFA_DEVICE_PLUGIN.repo},
                    namespace=KARPENTER_NAMESPACE, atomic=True,
                    values={"tolerations": gpu_tolerations(spec), "nodeSelector": {GPU_NODE_LABEL[0]: GPU_NODE_LABEL[1]}},
                    opts=in_cluster)
        return release

    def _warm_pools(self, name: str, spec: BreedingGroundSpec, cluster: eks.Cluster, subnet_ids: list[pulumi.Output[str]],
                    region: str, role: iam.Role, key_arn: pulumi.Input[str], tags: dict[str, str]) -> None:
        """min_nodes GPU nodes that stay up: a managed node group with the pool's labels and taints below
        the pool's Karpenter NodePool (which has no minimum). Warm nodes of a spot pool are spot; of any
        other pool on-demand, so the floor does not vanish with spot capacity."""
        for key, pool in spec.gpu_pools.items():
            if pool.min_nodes == 0:
                continue
            template = self._launch_template(f"{name}-warm-{key}", pool.disk_gb, key_arn, tags)
            eks.NodeGroup(f"{name}-warm-{key}", cluster_name=cluster.name, node_group_name=f"{name}-warm-{key}", node_role_arn=role.arn,
                          subnet_ids=subnet_ids, ami_type="AL2023_x86_64_NVIDIA", release_version=node_image(spec),
                          capacity_type="SPOT" if pool.capacity is Capacity.spot else "ON_DEMAND",
                          instance_types=pool.instance_types("aws", region),
                          launch_template={"id": template.id, "version": template.latest_version.apply(str)},
                          scaling_config={"min_size": pool.min_nodes, "max_size": pool.min_nodes, "desired_size": pool.min_nodes},
                          update_config={"max_unavailable": 1}, labels=pool_labels(key, pool),
                          taints=[{"key": t.key, "value": t.value, "effect": MNG_TAINT_EFFECT[t.effect]} for t in pool.taints],
                          opts=self.child(depends_on=self.node_role_attachments))

    def _team_identities(self, name: str, spec: BreedingGroundSpec, cluster: eks.Cluster, region: str, key_arn: pulumi.Input[str],
                         team_troughs: dict[str, list[tuple[pulumi.Input[str], str]]]) -> None:
        """Each team's `workload` ServiceAccount gets its own IAM role through Pod Identity, allowed only its troughs."""
        for team in spec.teams:
            grants = team_troughs.get(team, [])
            if not grants:
                continue
            role = iam.Role(f"{name}-team-{team}", assume_role_policy=assume("pods.eks.amazonaws.com", ["sts:AssumeRole", "sts:TagSession"]),
                            opts=self.child())
            arns = pulumi.Output.all(*[arn for arn, _ in grants])
            iam.RolePolicy(f"{name}-team-{team}-troughs", role=role.id,
                           policy=pulumi.Output.all(arns, key_arn).apply(
                               lambda a, g=grants: trough_policy([(arn, access) for arn, (_, access) in zip(a[0], g)], a[1], region)),
                           opts=self.child())
            eks.PodIdentityAssociation(f"{name}-team-{team}", cluster_name=cluster.name, namespace=team,
                                       service_account=TEAM_SERVICE_ACCOUNT, role_arn=role.arn, opts=self.child())
