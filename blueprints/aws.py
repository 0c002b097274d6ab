"""The AWS blueprint: a farm on AWS, composed from the five layers.

Fork here: change which layers are built or how they are wired; each layer's knobs are in its spec.
An explicit provider carries the region and the farm's cost tags as default tags, so every taggable
resource is tagged without each component repeating it.
"""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_aws as aws

from blueprints.config import FarmConfig
from components.base import FarmComponent, token
from components.barn.aws import AwsBarn
from components.breeding_ground.aws import AwsBreedingGround
from components.fence.aws import AwsFence
from components.ledger.aws import AwsLedger
from components.ledger.spec import cost_tags
from components.trough.aws import AwsTrough
from components.trough.spec import Access, bucket_name, trough_access

ACCOUNT_SUFFIX_CHARS = 8


class AwsFarm(FarmComponent):
    TOKEN = token("AwsFarm")

    def __init__(self, farm: FarmConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(farm.prefix, opts)
        tags = cost_tags(farm.prefix, farm.environment, farm.tags)
        provider = aws.Provider("aws", region=farm.region, default_tags={"tags": tags}, opts=self.child())
        layer = pulumi.ResourceOptions(parent=self, providers=[provider])
        name = farm.prefix
        self.fence = AwsFence(f"{name}-fence", farm.fence, region=farm.region, zones=farm.zones, environment=farm.environment,
                              discovery_tag=name, protect_data=farm.prod, opts=layer)
        # S3 bucket names are global across every AWS account: a short digest of the account id keeps a
        # second adopter who kept a shipped prefix from colliding with the first.
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self, provider=provider)).account_id
        owner = account.apply(lambda a: hashlib.sha256(a.encode()).hexdigest()[:ACCOUNT_SUFFIX_CHARS])
        self.troughs = {
            key: AwsTrough(f"{name}-{key}", spec,
                           bucket_name=spec.name or owner.apply(lambda o, k=key: f"{bucket_name('aws', farm.prefix, k)}-{o}"),
                           key_arn=self.fence.key_arn, protect_data=farm.prod, opts=layer)
            for key, spec in farm.troughs.items()
        }
        self.breeding_ground = None
        if farm.breeding_ground is not None:
            bg = farm.breeding_ground
            self.breeding_ground = AwsBreedingGround(
                f"{name}-cluster", bg, region=farm.region, zones=farm.zones,
                subnet_ids=self.fence.private_subnet_ids, key_arn=self.fence.key_arn, services_cidr=str(farm.fence.services_cidr),
                log_retention_days=farm.fence.log_retention_days, discovery_tag=name, tags=tags,
                team_troughs={team: self._grants(farm, t.troughs) for team, t in bg.teams.items()}, opts=layer)
        bgr = self.breeding_ground
        self.ledger = AwsLedger(f"{name}-ledger", farm.ledger, farm=name, key_arn=self.fence.key_arn,
                                stop_role_name=bgr.karpenter_controller_role_name if bgr else None,
                                stop_role_arn=bgr.karpenter_controller_role_arn if bgr else None, opts=layer)
        self.barns = {
            key: AwsBarn(f"{name}-{key}", spec, region=farm.region, vpc_id=self.fence.vpc_id, subnet_id=self.fence.private_subnet_ids[0],
                         key_arn=self.fence.key_arn, tags=tags, troughs=self._grants(farm, spec.troughs), opts=layer)
            for key, spec in farm.barns.items()
        }
        self.finish({"vpc_id": self.fence.vpc_id})
        self._exports(farm)

    def _grants(self, farm: FarmConfig, explicit: dict[str, Access] | None) -> list[tuple[pulumi.Input[str], str]]:
        """(bucket ARN, access) for each trough a workload may use."""
        return [(self.troughs[key].bucket_arn, access.value) for key, access in trough_access(explicit, farm.troughs).items()]

    def _exports(self, farm: FarmConfig) -> None:
        """What a user needs next: where things are and the commands to reach them."""
        pulumi.export("vpc_id", self.fence.vpc_id)
        pulumi.export("buckets", {key: t.bucket_name for key, t in self.troughs.items()})
        pulumi.export("alerts_topic", self.ledger.topic_arn)
        bg = self.breeding_ground
        if bg is not None:
            pulumi.export("cluster_name", bg.cluster_name)
            pulumi.export("cluster_endpoint", bg.endpoint)
            pulumi.export("cluster_certificate_authority", bg.certificate_authority)
            pulumi.export("kubeconfig", bg.kubeconfig)
            pulumi.export("kubeconfig_command", pulumi.Output.concat("aws eks update-kubeconfig --region ", farm.region,
                                                                     " --name ", bg.cluster_name))
        pulumi.export("dev_boxes", {key: {"instance_id": b.instance_id, "connect": b.connect_command} for key, b in self.barns.items()})


def build(farm: FarmConfig) -> AwsFarm:
    return AwsFarm(farm)
