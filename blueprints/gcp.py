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
        # The Budgets API called with user credentials needs a quota project: only the budget goes through a
        # provider that bills its calls to the farm's project (user_project_override + billing_project send that
        # header on every call, which would need each API on in the project before anything runs).
        billing_provider = gcp.Provider("gcp-billing", project=farm.project, region=farm.region, default_labels=labels,
                                        user_project_override=True, billing_project=farm.project, opts=self.child())
        layer = pulumi.ResourceOptions(parent=self, providers=[provider])
        name = farm.prefix
        self.fence = GcpFence(f"{name}-fence", farm.fence, project=farm.project, region=farm.region,
                              environment=farm.environment, protect_data=farm.prod, opts=layer)
        # Every other layer waits for the APIs the fence enables.
        layer = pulumi.ResourceOptions.merge(layer, pulumi.ResourceOptions(depends_on=self.fence.services))
        self.troughs = {
            key: GcpTrough(f"{name}-{key}", spec, bucket_name=bucket_name("gcp", farm.prefix, key, spec.name), project=farm.project,
                           region=farm.region, key_id=self.fence.key_id, protect_data=farm.prod, opts=layer)
            for key, spec in farm.troughs.items()
        }
        self.ledger = GcpLedger(f"{name}-ledger", farm.ledger, farm=name, project=farm.project, billing_provider=billing_provider,
                                opts=layer)
        self.finish({"network_id": self.fence.network_id})
        pulumi.export("network_id", self.fence.network_id)
        pulumi.export("buckets", {key: t.bucket_name for key, t in self.troughs.items()})


def build(farm: FarmConfig) -> GcpFarm:
    return GcpFarm(farm)
