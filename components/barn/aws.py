"""AwsBarn: a GPU dev box that stops itself when idle.

Private subnet, no public IP, IMDSv2 only, encrypted root volume, reached with SSM Session Manager
(no SSH keys, no open ports). A CloudWatch alarm stops the instance after `idle_minutes` of CPU
below 5%, so a forgotten box does not run all weekend. (GPU utilisation needs the CloudWatch agent
on the box; CPU is the signal that needs nothing installed.)
"""

from __future__ import annotations

import pulumi
from pulumi_aws import cloudwatch, ec2, iam

from components.aws_iam import assume
from components.barn.spec import BarnSpec
from components.base import FarmComponent, token
from components.breeding_ground import catalog

# The Deep Learning Base AMI (NVIDIA driver installed), newest release, published by Amazon.
DLAMI_NAME = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"
IDLE_CPU_PERCENT = 5
PERIOD_SECONDS = 300


class AwsBarn(FarmComponent):
    TOKEN = token("AwsBarn")

    instance_id: pulumi.Output[str]

    def __init__(self, name: str, spec: BarnSpec, *, region: str, subnet_id: pulumi.Input[str], key_arn: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        instance_type = catalog.instances("aws", spec.gpu, spec.gpus)[0].instance_type
        role = iam.Role(f"{name}-role", assume_role_policy=assume("ec2.amazonaws.com"), opts=self.child())
        iam.RolePolicyAttachment(f"{name}-ssm", role=role.name,
                                 policy_arn="arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore", opts=self.child())
        profile = iam.InstanceProfile(f"{name}-profile", role=role.name, opts=self.child())
        ami = ec2.get_ami_output(most_recent=True, owners=["amazon"],
                                 filters=[{"name": "name", "values": [DLAMI_NAME]}, {"name": "architecture", "values": ["x86_64"]}],
                                 opts=pulumi.InvokeOutputOptions(parent=self))
        market: ec2.InstanceInstanceMarketOptionsArgsDict | None = (
            {"market_type": "spot", "spot_options": {"spot_instance_type": "persistent", "instance_interruption_behavior": "stop"}}
            if spec.spot else None)
        instance = ec2.Instance(
            name, ami=ami.id, instance_type=instance_type, subnet_id=subnet_id, associate_public_ip_address=False,
            iam_instance_profile=profile.name,
            metadata_options={"http_endpoint": "enabled", "http_tokens": "required", "http_put_response_hop_limit": 1},
            root_block_device={"encrypted": True, "kms_key_id": key_arn, "volume_size": spec.disk_gb, "volume_type": "gp3"},
            instance_market_options=market, tags={"Name": name},
            # A new AMI release must not replace the box (and its disk) under its user.
            opts=self.child(ignore_changes=["ami"]))
        self.instance_id = instance.id
        cloudwatch.MetricAlarm(
            f"{name}-idle-stop", alarm_description=f"Stop {name} after {spec.idle_minutes} idle minutes",
            namespace="AWS/EC2", metric_name="CPUUtilization", dimensions={"InstanceId": instance.id},
            statistic="Average", period=PERIOD_SECONDS, evaluation_periods=max(1, spec.idle_minutes * 60 // PERIOD_SECONDS),
            threshold=IDLE_CPU_PERCENT, comparison_operator="LessThanThreshold", treat_missing_data="notBreaching",
            alarm_actions=[f"arn:aws:automate:{region}:ec2:stop"], opts=self.child())
        self.finish({"instance_id": self.instance_id, "instance_type": instance_type})
