"""The AWS blueprint: a farm on AWS, composed from the five layers.

Fork here: change which layers are built or how they are wired; each layer's knobs are in its spec.
An explicit provider carries the region and the farm's cost tags as default tags, so every taggable
resource is tagged without each component repeating it.
"""

from __future__ import annotations

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
from components.trough.spec import bucket_name


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
        self.troughs = {
            key: AwsTrough(f"{name}-{key}", spec, bucket_name=bucket_name("aws", farm.prefix, key, spec.name),
                           key_arn=self.fence.key_arn, protect_data=farm.prod, opts=layer)
            for key, spec in farm.troughs.items()
        }
        self.breeding_ground = None
        if farm.breeding_ground is not None:
            self.breeding_ground = AwsBreedingGround(
                f"{name}-cluster", farm.breeding_ground, region=farm.region,
                subnet_ids=self.fence.private_subnet_ids, key_arn=self.fence.key_arn, services_cidr=str(farm.fence.services_cidr),
                log_retention_days=farm.fence.log_retention_days, discovery_tag=name, opts=layer)
        stop_role = self.breeding_ground.karpenter_controller_role_name if self.breeding_ground is not None else None
        self.ledger = AwsLedger(f"{name}-ledger", farm.ledger, farm=name, stop_role_name=stop_role, opts=layer)
        self.barns = {
            key: AwsBarn(f"{name}-{key}", spec, region=farm.region, subnet_id=self.fence.private_subnet_ids[0],
                         key_arn=self.fence.key_arn, opts=layer)
            for key, spec in farm.barns.items()
        }
        self.finish({"vpc_id": self.fence.vpc_id})
        pulumi.export("vpc_id", self.fence.vpc_id)
        pulumi.export("buckets", {key: t.bucket_name for key, t in self.troughs.items()})
        if self.breeding_ground is not None:
            pulumi.export("cluster_name", self.breeding_ground.cluster_name)
        pulumi.export("alerts_topic", self.ledger.topic_arn)


def build(farm: FarmConfig) -> AwsFarm:
    return AwsFarm(farm)
