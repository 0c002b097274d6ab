"""The GCP blueprint: a farm on GCP, composed from the five layers.

An explicit provider carries project, region and the farm's cost labels as default labels.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from blueprints.config import FarmConfig
from components.base import FarmComponent, token
from components.fence.gcp import GcpFence
from components.ledger.gcp import GcpLedger
from components.ledger.spec import cost_tags
from components.trough.gcp import GcpTrough
from components.trough.spec import bucket_name


class GcpFarm(FarmComponent):
    TOKEN = token("GcpFarm")

    def __init__(self, farm: FarmConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(farm.prefix, opts)
        assert farm.project is not None  # guaranteed by FarmConfig.problems()
        labels = cost_tags(farm.prefix, farm.environment, farm.tags)
        provider = gcp.Provider("gcp", project=farm.project, region=farm.region, default_labels=labels, opts=self.child())
        layer = pulumi.ResourceOptions(parent=self, providers=[provider])
        name = farm.prefix
        self.fence = GcpFence(f"{name}-fence", farm.fence, project=farm.project, region=farm.region,
                              environment=farm.environment, protect_data=farm.prod, opts=layer)
        self.troughs = {
            key: GcpTrough(f"{name}-{key}", spec, bucket_name=bucket_name("gcp", farm.prefix, key, spec.name), project=farm.project,
                           region=farm.region, key_id=self.fence.key_id, protect_data=farm.prod, opts=layer)
            for key, spec in farm.troughs.items()
        }
        self.ledger = GcpLedger(f"{name}-ledger", farm.ledger, farm=name, project=farm.project, opts=layer)
        self.finish({"network_id": self.fence.network_id})
        pulumi.export("network_id", self.fence.network_id)
        pulumi.export("buckets", {key: t.bucket_name for key, t in self.troughs.items()})


def build(farm: FarmConfig) -> GcpFarm:
    return GcpFarm(farm)
