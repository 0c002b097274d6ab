"""AwsBarn: a GPU dev box that stops itself when idle.

Private subnet, no public IP, IMDSv2 only, root volume encrypted with the farm key and tagged with the
farm's cost tags, reached with SSM Session Manager (no SSH keys, no open ports). Its own security group
admits nothing and lets out only HTTPS and HTTP (the SSM agent, package mirrors): the fence empties the
VPC's default group, so a box left there could not reach SSM at all.

Idle stop: the in-guest watcher (components/barn/idle_watch.sh) powers the box off after `idle_minutes`
with no busy GPU, a quiet CPU and nobody logged in; with shutdown behaviour "stop", a guest power-off
stops the instance and its GPU billing. A nightly EventBridge Scheduler stop is the backstop, in case
the watcher is removed or broken. The box's role may use the farm's troughs as the spec grants.
"""

from __future__ import annotations

import json

import pulumi
from pulumi_aws import ec2, iam, scheduler, vpc

from components.aws_iam import assume, policy, trough_policy
from components.barn.idle import startup_script
from components.barn.spec import BarnSpec
from components.base import FarmComponent, token

# The Deep Learning Base AMI (NVIDIA driver installed), newest release, published by Amazon.
DLAMI_NAME = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"
EGRESS_PORTS = {"https": 443, "http": 80}


class AwsBarn(FarmComponent):
    TOKEN = token("AwsBarn")

    instance_id: pulumi.Output[str]
    connect_command: pulumi.Output[str]

    def __init__(self, name: str, spec: BarnSpec, *, region: str, vpc_id: pulumi.Input[str], subnet_id: pulumi.Input[str],
                 key_arn: pulumi.Input[str], tags: dict[str, str], troughs: list[tuple[pulumi.Input[str], str]] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        instance_type = spec.instance_type("aws", region)
        role = iam.Role(f"{name}-role", assume_role_policy=assume("ec2.amazonaws.com"), opts=self.child())
        iam.RolePolicyAttachment(f"{name}-ssm", role=role.name,
                                 policy_arn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore", opts=self.child())
        if troughs:
            arns = pulumi.Output.all(*[arn for arn, _ in troughs])
            iam.RolePolicy(f"{name}-troughs", role=role.id, policy=pulumi.Output.all(arns, key_arn).apply(
                lambda a: trough_policy([(arn, access) for arn, (_, access) in zip(a[0], troughs)], a[1], region)),
                opts=self.child())
        profile = iam.InstanceProfile(f"{name}-profile", role=role.name, opts=self.child())
        group = ec2.SecurityGroup(f"{name}-sg", vpc_id=vpc_id, description=f"{name}: no inbound; HTTPS and HTTP out",
                                  tags={"Name": f"{name}-sg"}, opts=self.child())
        for label, port in EGRESS_PORTS.items():
            vpc.SecurityGroupEgressRule(f"{name}-sg-{label}-out", security_group_id=group.id, cidr_ipv4="0.0.0.0/0",
                                        ip_protocol="tcp", from_port=port, to_port=port, opts=self.child())
        ami = ec2.get_ami_output(most_recent=True, owners=["amazon"],
                                 filters=[{"name": "name", "values": [DLAMI_NAME]}, {"name": "architecture", "values": ["x86_64"]}],
                                 opts=pulumi.InvokeOutputOptions(parent=self))
        market: ec2.InstanceInstanceMarketOptionsArgsDict | None = (
            {"market_type": "spot", "spot_options": {"spot_instance_type": "persistent", "instance_interruption_behavior": "stop"}}
            if spec.spot else None)
        instance = ec2.Instance(
            name, ami=ami.id, instance_type=instance_type, subnet_id=subnet_id, associate_public_ip_address=False,
            vpc_security_group_ids=[group.id], iam_instance_profile=profile.name,
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 2},
            root_block_device={"encrypted": True, "kms_key_id": key_arn, "volume_size": spec.disk_gb, "volume_type": "gp3",
                               "tags": dict(tags)},
            instance_initiated_shutdown_behavior="stop",  # the watcher's power-off stops (not terminates) the box
            user_data=startup_script(spec.idle_minutes, "systemctl poweroff"),
            instance_market_options=market, tags={"Name": name},
            # A new AMI release must not replace the box (and its disk) under its user.
            opts=self.child(ignore_changes=["ami"]))
        self.instance_id = instance.id
        self.connect_command = pulumi.Output.concat("aws ssm start-session --region ", region, " --target ", instance.id)
        if spec.nightly_stop is not None:
            self._nightly_stop(name, spec, instance, region)
        self.finish({"instance_id": self.instance_id, "instance_type": instance_type, "connect_command": self.connect_command})

    def _nightly_stop(self, name: str, spec: BarnSpec, instance: ec2.Instance, region: str) -> None:
        assert spec.nightly_stop is not None
        hour, minute = spec.nightly_stop.split(":")
        zone = spec.stop_time_zone("aws", region)
        # Only this account's schedules may use the role (EventBridge Scheduler User Guide, execution role:
        # aws:SourceAccount against the confused deputy).
        account = instance.arn.apply(lambda arn: arn.split(":")[4])
        role = iam.Role(f"{name}-nightly-stop", assume_role_policy=account.apply(lambda acct: assume("scheduler.amazonaws.com", account=acct)),
                        opts=self.child())
        iam.RolePolicy(f"{name}-nightly-stop", role=role.id, policy=instance.arn.apply(lambda arn: policy(
            {"Effect": "Allow", "Action": "ec2:StopInstances", "Resource": arn})), opts=self.child())
        scheduler.Schedule(
            f"{name}-nightly-stop", description=f"Backstop: stop {name} every day at {spec.nightly_stop} {zone}",
            schedule_expression=f"cron({int(minute)} {int(hour)} * * ? *)", schedule_expression_timezone=zone,
            flexible_time_window={"mode": "OFF"},
            # EventBridge Scheduler universal target: calls EC2 StopInstances with the role above.
            target={"arn": "arn:aws:scheduler:::aws-sdk:ec2:stopInstances", "role_arn": role.arn,
                    "input": instance.id.apply(lambda i: json.dumps({"InstanceIds": [i]}))},
            opts=self.child())
