"""AwsBreedingGround: EKS with Karpenter GPU pools, spot first, scaling to zero.

- EKS: pinned version, private API endpoint (public only for listed CIDRs), secrets encrypted with the
  fence's KMS key, control-plane logs kept `log_retention_days`, API access entries (no aws-auth
  ConfigMap), EKS Pod Identity for add-ons, core add-ons pinned.
- A small on-demand system node group for cluster services (Karpenter itself runs there).
- Karpenter: controller role (Pod Identity), node role + access entry, the spot interruption queue
  and its EventBridge rules, the Helm release, and per GPU pool one EC2NodeClass (pool's disk size,
  encrypted gp3, IMDSv2 only, private subnets, optional capacity reservation) and one NodePool
  (capacity types, instance types from the GPU catalog, GPU limit, taint, consolidate when empty).
- The cloud-neutral GpuStack on top.

Karpenter never creates placement groups, so EFA pools stay usable with capacity reservations.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi_aws import cloudwatch, eks, iam, sqs
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.helm.v3 import Release

from components.aws_iam import assume, deny_insecure_transport, policy
from components.base import FarmComponent, token
from components.breeding_ground import catalog, charts
from components.breeding_ground.gpu_stack import CapacityLabel, GpuStack, gpu_tolerations
from components.breeding_ground.spec import BreedingGroundSpec, GpuPoolSpec

SYSTEM_INSTANCE_TYPE = "m7i.large"
# Pinned EKS add-on versions for the default Kubernetes version; bump together with `kubernetes_version`.
# Written from the EKS add-on release notes, not checked against a live account: confirm with
# `aws eks describe-addon-versions --kubernetes-version 1.33` before the first `pulumi up`.
ADDONS = {
    "vpc-cni": "v1.20.4-eksbuild.1",
    "coredns": "v1.12.4-eksbuild.1",
    "kube-proxy": "v1.33.5-eksbuild.2",
    "eks-pod-identity-agent": "v1.3.9-eksbuild.3",
}
# Pinned EKS-optimized AL2023 release for Karpenter nodes: no silent GPU driver drift (Karpenter picks
# the NVIDIA variant of the release for GPU instance types). Confirm the release exists in your region.
NODE_AMI_ALIAS = "al2023@v20251108"
CONTROL_PLANE_LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
CAPACITY_LABEL = CapacityLabel("karpenter.sh/capacity-type", spot="spot", on_demand="on-demand")
KARPENTER_NAMESPACE = "kube-system"


def node_pool_spec(key: str, pool: GpuPoolSpec, node_class: str) -> dict[str, Any]:
    """The Karpenter NodePool spec for a GPU pool (pure: tests read it directly)."""
    types = [i.instance_type for i in catalog.instances("aws", pool.gpu, pool.gpus_per_node) if i.fabric or not pool.efa]
    capacity_types = ["reserved"] if pool.capacity_reservation_id else pool.capacity.capacity_types
    return {
        "template": {
            "metadata": {"labels": {"dragonfarm.io/pool": key, "nvidia.com/gpu.present": "true", **pool.labels}},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": node_class},
                "requirements": [
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity_types},
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": types},
                ],
                "taints": [{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.taints],
                "expireAfter": "720h",
            },
        },
        "limits": {"nvidia.com/gpu": str(pool.gpu_limit)},
        # GPU jobs are long: only empty nodes are removed (never a running job's node), after the pool's delay.
        "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": f"{pool.scale_down_after_minutes}m"},
    }


class AwsBreedingGround(FarmComponent):
    TOKEN = token("AwsBreedingGround")

    cluster_name: pulumi.Output[str]
    karpenter_controller_role_name: pulumi.Output[str]

    def __init__(self, name: str, spec: BreedingGroundSpec, *, region: str,
                 subnet_ids: list[pulumi.Output[str]], key_arn: pulumi.Input[str], services_cidr: str, log_retention_days: int,
                 discovery_tag: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        cluster = self._cluster(name, spec, subnet_ids, key_arn, services_cidr, log_retention_days)
        self.cluster_name = cluster.name
        self._system_pool(name, spec, cluster, subnet_ids)
        provider = k8s.Provider(f"{name}-k8s", kubeconfig=kubeconfig(cluster, region), enable_server_side_apply=True,
                                opts=self.child())
        in_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        karpenter = self._karpenter(name, spec, region, cluster, key_arn, discovery_tag, in_cluster)
        GpuStack(f"{name}-gpu", spec, capacity_label=CAPACITY_LABEL,
                 opts=pulumi.ResourceOptions(parent=self, providers=[provider], depends_on=[karpenter]))
        self.finish({"cluster_name": self.cluster_name})

    def _cluster(self, name: str, spec: BreedingGroundSpec, subnet_ids: list[pulumi.Output[str]], key_arn: pulumi.Input[str],
                 services_cidr: str, log_retention_days: int) -> eks.Cluster:
        role = iam.Role(f"{name}-cluster", assume_role_policy=assume("eks.amazonaws.com", ["sts:AssumeRole", "sts:TagSession"]),
                        opts=self.child())
        attach = iam.RolePolicyAttachment(f"{name}-cluster-policy", role=role.name,
                                          policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy", opts=self.child())
        logs = cloudwatch.LogGroup(f"{name}-control-plane", name=f"/aws/eks/{name}/cluster", retention_in_days=log_retention_days,
                                   kms_key_id=key_arn, opts=self.child())
        public = bool(spec.public_endpoint_cidrs)
        return eks.Cluster(
            name, name=name, version=spec.kubernetes_version, role_arn=role.arn,
            vpc_config={"subnet_ids": subnet_ids, "endpoint_private_access": True, "endpoint_public_access": public,
                        "public_access_cidrs": [str(c) for c in spec.public_endpoint_cidrs] if public else None},
            encryption_config={"provider": {"key_arn": key_arn}, "resources": ["secrets"]},
            enabled_cluster_log_types=CONTROL_PLANE_LOGS,
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            kubernetes_network_config={"service_ipv4_cidr": services_cidr},
            upgrade_policy={"support_type": "STANDARD"},  # extended support costs 6x the control-plane fee
            opts=self.child(depends_on=[attach, logs]))

    def _system_pool(self, name: str, spec: BreedingGroundSpec, cluster: eks.Cluster, subnet_ids: list[pulumi.Output[str]]) -> None:
        role = iam.Role(f"{name}-system-nodes", assume_role_policy=assume("ec2.amazonaws.com"), opts=self.child())
        attachments = [iam.RolePolicyAttachment(f"{name}-system-nodes-{short}", role=role.name, policy_arn=arn, opts=self.child())
                       for short, arn in node_policies().items()]
        pool = spec.system_pool
        eks.NodeGroup(f"{name}-system", cluster_name=cluster.name, node_group_name=f"{name}-system", node_role_arn=role.arn,
                      subnet_ids=subnet_ids, capacity_type="ON_DEMAND", ami_type="AL2023_x86_64_STANDARD",
                      instance_types=[pool.instance_type or SYSTEM_INSTANCE_TYPE],
                      scaling_config={"min_size": pool.min_nodes, "max_size": pool.max_nodes, "desired_size": pool.min_nodes},
                      update_config={"max_unavailable": 1}, labels={"dragonfarm.io/pool": "system"},
                      # The autoscaler owns desired size; a re-run must not reset it.
                      opts=self.child(depends_on=attachments, ignore_changes=["scalingConfig.desiredSize"]))
        # vpc-cni gets its AWS permissions through EKS Pod Identity (the node roles keep the CNI policy
        # only so a node can get its first IPs before the Pod Identity agent runs on it).
        cni_role = iam.Role(f"{name}-vpc-cni", assume_role_policy=assume("pods.eks.amazonaws.com", ["sts:AssumeRole", "sts:TagSession"]),
                            opts=self.child())
        iam.RolePolicyAttachment(f"{name}-vpc-cni", role=cni_role.name, policy_arn=node_policies()["cni"], opts=self.child())
        agent = eks.Addon(f"{name}-eks-pod-identity-agent", cluster_name=cluster.name, addon_name="eks-pod-identity-agent",
                          addon_version=ADDONS["eks-pod-identity-agent"], resolve_conflicts_on_create="OVERWRITE",
                          resolve_conflicts_on_update="OVERWRITE", opts=self.child())
        for addon, version in ADDONS.items():
            if addon == "eks-pod-identity-agent":
                continue
            identities: list[eks.AddonPodIdentityAssociationArgsDict] | None = (
                [{"role_arn": cni_role.arn, "service_account": "aws-node"}] if addon == "vpc-cni" else None)
            eks.Addon(f"{name}-{addon}", cluster_name=cluster.name, addon_name=addon, addon_version=version,
                      resolve_conflicts_on_create="OVERWRITE", resolve_conflicts_on_update="OVERWRITE",
                      pod_identity_associations=identities, opts=self.child(depends_on=[agent]))

    def _karpenter(self, name: str, spec: BreedingGroundSpec, region: str, cluster: eks.Cluster, key_arn: pulumi.Input[str],
                   discovery_tag: str,
                   in_cluster: pulumi.ResourceOptions) -> Release:
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
        }
        for event, pattern in events.items():
            rule = cloudwatch.EventRule(f"{name}-karpenter-{event}", event_pattern=json.dumps(pattern), opts=self.child())
            cloudwatch.EventTarget(f"{name}-karpenter-{event}", rule=rule.name, arn=queue.arn, opts=self.child())

        controller = iam.Role(f"{name}-karpenter-controller", name=f"{name}-karpenter-controller",
                              assume_role_policy=assume("pods.eks.amazonaws.com", ["sts:AssumeRole", "sts:TagSession"]),
                              opts=self.child())
        self.karpenter_controller_role_name = controller.name
        iam.RolePolicy(f"{name}-karpenter-controller", role=controller.id,
                       policy=pulumi.Output.all(node_role.arn, queue.arn, cluster.arn).apply(
                           lambda a: karpenter_controller_policy(region, a[0], a[1], a[2])),
                       opts=self.child())
        identity = eks.PodIdentityAssociation(f"{name}-karpenter", cluster_name=cluster.name, namespace=KARPENTER_NAMESPACE,
                                              service_account="karpenter", role_arn=controller.arn, opts=self.child())
        release = Release(f"{name}-karpenter", chart=charts.KARPENTER.chart, version=charts.KARPENTER.version,
                          namespace=KARPENTER_NAMESPACE, atomic=True,
                          values={"settings": {"clusterName": cluster.name, "interruptionQueue": queue.name},
                                  "serviceAccount": {"name": "karpenter"},
                                  "nodeSelector": {"dragonfarm.io/pool": "system"},
                                  "controller": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}},
                          opts=pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=[identity])))
        after = pulumi.ResourceOptions.merge(in_cluster, pulumi.ResourceOptions(depends_on=[release]))
        for key, pool in spec.gpu_pools.items():
            CustomResource(f"{name}-nodeclass-{key}", api_version="karpenter.k8s.aws/v1", kind="EC2NodeClass",
                           metadata={"name": key}, spec=node_class_spec(discovery_tag, pool, node_role.name, cluster, key_arn),
                           opts=after)
            CustomResource(f"{name}-nodepool-{key}", api_version="karpenter.sh/v1", kind="NodePool", metadata={"name": key},
                           spec=node_pool_spec(key, pool, key), opts=after)
        if any(pool.efa for pool in spec.gpu_pools.values()):
            # EFA interfaces become schedulable (`vpc.amazonaws.com/efa`) only with this plugin.
            Release(f"{name}-efa-device-plugin", chart=charts.AWS_EFA_DEVICE_PLUGIN.chart, version=charts.AWS_EFA_DEVICE_PLUGIN.version,
                    repository_opts={"repo": charts.AWS_EFA_DEVICE_PLUGIN.repo}, namespace=KARPENTER_NAMESPACE, atomic=True,
                    values={"tolerations": gpu_tolerations()},
                    opts=in_cluster)
        return release


def node_class_spec(discovery_tag: str, pool: GpuPoolSpec, role: pulumi.Input[str], cluster: eks.Cluster,
                    key_arn: pulumi.Input[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "role": role,
        "amiSelectorTerms": [{"alias": NODE_AMI_ALIAS}],
        "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": discovery_tag}}],
        "securityGroupSelectorTerms": [{"id": cluster.vpc_config.cluster_security_group_id}],
        "metadataOptions": {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1},
        "blockDeviceMappings": [{"deviceName": "/dev/xvda",
                                 "ebs": {"volumeSize": f"{pool.disk_gb}Gi", "volumeType": "gp3", "encrypted": True,
                                         "kmsKeyID": key_arn, "deleteOnTermination": True}}],
    }
    if pool.capacity_reservation_id:
        spec["capacityReservationSelectorTerms"] = [{"id": pool.capacity_reservation_id}]
    return spec


def node_policies() -> dict[str, str]:
    base = "arn:aws:iam::aws:policy/"
    return {"worker": base + "AmazonEKSWorkerNodePolicy", "cni": base + "AmazonEKS_CNI_Policy",
            "ecr": base + "AmazonEC2ContainerRegistryReadOnly", "ssm": base + "AmazonSSMManagedInstanceCore"}


def karpenter_controller_policy(region: str, node_role_arn: str, queue_arn: str, cluster_arn: str) -> str:
    """Least privilege for the Karpenter controller (after the policy the Karpenter project publishes)."""
    return policy(
        {"Sid": "Provisioning", "Effect": "Allow",
         "Action": ["ec2:CreateFleet", "ec2:RunInstances", "ec2:CreateLaunchTemplate", "ec2:CreateTags"],
         "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": region}}},
        {"Sid": "Termination", "Effect": "Allow", "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
         "Resource": "*", "Condition": {"StringLike": {"ec2:ResourceTag/karpenter.sh/nodepool": "*"}}},
        {"Sid": "Discovery", "Effect": "Allow",
         "Action": ["ec2:DescribeAvailabilityZones", "ec2:DescribeImages", "ec2:DescribeInstances", "ec2:DescribeInstanceTypeOfferings",
                    "ec2:DescribeInstanceTypes", "ec2:DescribeLaunchTemplates", "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets", "ec2:DescribeCapacityReservations",
                    "pricing:GetProducts", "ssm:GetParameter"],
         "Resource": "*"},
        {"Sid": "PassNodeRole", "Effect": "Allow", "Action": "iam:PassRole", "Resource": node_role_arn,
         "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}},
        {"Sid": "InstanceProfiles", "Effect": "Allow",
         "Action": ["iam:CreateInstanceProfile", "iam:TagInstanceProfile", "iam:AddRoleToInstanceProfile",
                    "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile", "iam:GetInstanceProfile"],
         "Resource": "*"},
        {"Sid": "Interruptions", "Effect": "Allow",
         "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"], "Resource": queue_arn},
        {"Sid": "Cluster", "Effect": "Allow", "Action": "eks:DescribeCluster", "Resource": cluster_arn},
    )


def kubeconfig(cluster: eks.Cluster, region: str) -> pulumi.Output[str]:
    """A kubeconfig that gets tokens from the AWS CLI (no long-lived credentials in state)."""
    return pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(lambda a: json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "farm",
        "clusters": [{"name": "farm", "cluster": {"server": a[1], "certificate-authority-data": a[2]}}],
        "contexts": [{"name": "farm", "context": {"cluster": "farm", "user": "farm"}}],
        "users": [{"name": "farm", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
                                                     "args": ["eks", "get-token", "--cluster-name", a[0], "--region", region]}}}],
    }))
