"""AwsFence: VPC across zones, private and public subnets, NAT, S3 gateway endpoint, flow logs, KMS key.

Nodes live in private subnets with no public IPs; egress goes through NAT (one in dev, one per zone
in prod). S3 traffic stays on the gateway endpoint (free, and no NAT data charge). The default
security group is emptied. One KMS key with rotation encrypts the farm's data and logs.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
from pulumi_aws import cloudwatch, ec2, iam, kms

from components.aws_iam import assume, policy
from components.base import FarmComponent, token
from components.fence.spec import FenceSpec, NatMode, subnet_plan


class AwsFence(FarmComponent):
    TOKEN = token("AwsFence")

    vpc_id: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    key_arn: pulumi.Output[str]

    def __init__(self, name: str, spec: FenceSpec, *, region: str, zones: list[str], environment: str,
                 discovery_tag: str | None = None, protect_data: bool = False, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts, protect_data)
        self.key_arn = self._key(name, spec, region) if spec.existing_key_id is None else pulumi.Output.from_input(spec.existing_key_id)
        self.public_subnet_ids = []
        if spec.existing_network is not None:
            self.vpc_id = pulumi.Output.from_input(spec.existing_network.network_id)
            self.private_subnet_ids = [pulumi.Output.from_input(s) for s in spec.existing_network.private_subnet_ids]
            if discovery_tag:
                # Karpenter finds the subnets for its nodes by this tag: tag the existing ones (only the tag is managed).
                for subnet in spec.existing_network.private_subnet_ids:
                    ec2.Tag(f"{name}-discovery-{subnet}", resource_id=subnet, key="karpenter.sh/discovery", value=discovery_tag,
                            opts=self.child())
        else:
            self._network(name, spec, region, zones, spec.nat_mode(environment), discovery_tag)
        self.finish({"vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids, "key_arn": self.key_arn})

    def _key(self, name: str, spec: FenceSpec, region: str) -> pulumi.Output[str]:
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        key_policy = account.apply(lambda acct: policy(
            {"Sid": "AccountAdmin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"},
             "Action": "kms:*", "Resource": "*"},
            # CloudWatch Logs must be named in the key policy to encrypt flow and control-plane logs.
            {"Sid": "CloudWatchLogs", "Effect": "Allow", "Principal": {"Service": f"logs.{region}.amazonaws.com"},
             "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
             "Resource": "*",
             "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{acct}:*"}}},
            # EBS volumes of nodes Karpenter and node groups launch, and of dev boxes: the launching principal
            # (a role, or the Auto Scaling service-linked role) must be able to use the key through EC2
            # (Karpenter troubleshooting, "Node terminates before ready on failed encrypted EBS volume";
            # the same statement as AWS's own aws/ebs key policy).
            {"Sid": "EbsThroughEc2", "Effect": "Allow", "Principal": {"AWS": "*"},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"],
             "Resource": "*",
             "Condition": {"StringEquals": {"kms:CallerAccount": acct, "kms:ViaService": f"ec2.{region}.amazonaws.com"}}},
            # Cost Anomaly Detection publishes alerts to the farm's encrypted SNS topic (the topic's own
            # policy limits it to this account: Cost Management user guide, ad-SNS).
            {"Sid": "AlertPublishers", "Effect": "Allow",
             "Principal": {"Service": "costalerts.amazonaws.com"},
             "Action": ["kms:GenerateDataKey*", "kms:Decrypt"], "Resource": "*"},
        ))
        key = kms.Key(f"{name}-key", description=f"{name}: farm data at rest", enable_key_rotation=True,
                      deletion_window_in_days=30, policy=key_policy, opts=self.stateful())
        kms.Alias(f"{name}-key-alias", name=f"alias/{name}", target_key_id=key.key_id, opts=self.child())
        return key.arn

    def _network(self, name: str, spec: FenceSpec, region: str, zones: list[str], nat: NatMode, discovery_tag: str | None) -> None:
        vpc = ec2.Vpc(f"{name}-vpc", cidr_block=str(spec.cidr), enable_dns_hostnames=True, enable_dns_support=True,
                      tags={"Name": f"{name}-vpc"}, opts=self.child())
        self.vpc_id = vpc.id
        # No rules: nothing may use the default security group by accident.
        ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, tags={"Name": f"{name}-default-deny"}, opts=self.child())

        private_cidrs, public_cidrs = subnet_plan(spec.cidr, len(zones))
        discovery = {"karpenter.sh/discovery": discovery_tag} if discovery_tag else {}
        # Keyed by zone name, never by position: adding a zone must not shift existing subnets.
        private = {z: ec2.Subnet(f"{name}-private-{z}", vpc_id=vpc.id, cidr_block=c, availability_zone=z,
                                 map_public_ip_on_launch=False,
                                 tags={"Name": f"{name}-private-{z}", "kubernetes.io/role/internal-elb": "1", **discovery},
                                 opts=self.child())
                   for z, c in zip(zones, private_cidrs)}
        self.private_subnet_ids = [s.id for s in private.values()]
        private_routes = {z: ec2.RouteTable(f"{name}-private-{z}", vpc_id=vpc.id, tags={"Name": f"{name}-private-{z}"}, opts=self.child())
                          for z in zones}
        for z in zones:
            ec2.RouteTableAssociation(f"{name}-private-{z}", subnet_id=private[z].id, route_table_id=private_routes[z].id, opts=self.child())

        if nat is not NatMode.none:
            igw = ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{name}-igw"}, opts=self.child())
            public_rt = ec2.RouteTable(f"{name}-public", vpc_id=vpc.id, tags={"Name": f"{name}-public"}, opts=self.child())
            ec2.Route(f"{name}-public-default", route_table_id=public_rt.id, destination_cidr_block="0.0.0.0/0",
                      gateway_id=igw.id, opts=self.child())
            public = {}
            for z, c in zip(zones, public_cidrs):
                public[z] = ec2.Subnet(f"{name}-public-{z}", vpc_id=vpc.id, cidr_block=c, availability_zone=z,
                                       map_public_ip_on_launch=False,
                                       tags={"Name": f"{name}-public-{z}", "kubernetes.io/role/elb": "1"}, opts=self.child())
                ec2.RouteTableAssociation(f"{name}-public-{z}", subnet_id=public[z].id, route_table_id=public_rt.id, opts=self.child())
            self.public_subnet_ids = [s.id for s in public.values()]
            nat_zones = zones if nat is NatMode.per_zone else zones[:1]
            gateways = {}
            for z in nat_zones:
                eip = ec2.Eip(f"{name}-nat-{z}", domain="vpc", tags={"Name": f"{name}-nat-{z}"}, opts=self.child())
                gateways[z] = ec2.NatGateway(f"{name}-nat-{z}", allocation_id=eip.id, subnet_id=public[z].id,
                                             tags={"Name": f"{name}-nat-{z}"}, opts=self.child(depends_on=[igw]))
            for z in zones:
                gateway = gateways.get(z, gateways[nat_zones[0]])
                ec2.Route(f"{name}-private-{z}-default", route_table_id=private_routes[z].id,
                          destination_cidr_block="0.0.0.0/0", nat_gateway_id=gateway.id, opts=self.child())

        if spec.private_endpoints:
            ec2.VpcEndpoint(f"{name}-s3", vpc_id=vpc.id, service_name=f"com.amazonaws.{region}.s3", vpc_endpoint_type="Gateway",
                            route_table_ids=[rt.id for rt in private_routes.values()], tags={"Name": f"{name}-s3"}, opts=self.child())

        if spec.flow_logs:
            logs = cloudwatch.LogGroup(f"{name}-flow-logs", name=f"/dragonfarm/{name}/flow-logs",
                                       retention_in_days=spec.log_retention_days, kms_key_id=self.key_arn, opts=self.child())
            # VPC User Guide, "IAM role for publishing flow logs to CloudWatch Logs": the role needs
            # DescribeLogGroups too (an account-wide read, so its own statement on "*"), and its trust
            # policy should name the account the flow logs are delivered for.
            account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
            role = iam.Role(f"{name}-flow-logs", assume_role_policy=account.apply(lambda acct: assume("vpc-flow-logs.amazonaws.com", account=acct)),
                            opts=self.child())
            iam.RolePolicy(f"{name}-flow-logs", role=role.id, policy=logs.arn.apply(lambda arn: policy(
                {"Sid": "WriteFlowLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                 "Resource": [arn, f"{arn}:*"]},
                {"Sid": "FindLogGroups", "Effect": "Allow", "Action": "logs:DescribeLogGroups", "Resource": "*"})), opts=self.child())
            ec2.FlowLog(f"{name}-flow-logs", vpc_id=vpc.id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
                        log_destination=logs.arn, iam_role_arn=role.arn, opts=self.child())
