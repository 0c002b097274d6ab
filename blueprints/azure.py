"""The Azure blueprint: a farm on Azure, composed from the five layers.

azure-native has no provider-level default tags, so the farm's cost tags are passed to each layer.
"""

from __future__ import annotations

import pulumi
import pulumi_azure_native as azure_native

from blueprints.config import FarmConfig
from components.base import FarmComponent, token
from components.fence.azure import AzureFence
from components.ledger.azure import AzureLedger
from components.ledger.spec import cost_tags
from components.trough.azure import AzureTrough
from components.trough.spec import bucket_name


class AzureFarm(FarmComponent):
    TOKEN = token("AzureFarm")

    def __init__(self, farm: FarmConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(farm.prefix, opts)
        tags = cost_tags(farm.prefix, farm.environment, farm.tags)
        provider = azure_native.Provider("azure-native", location=farm.region, opts=self.child())
        layer = pulumi.ResourceOptions(parent=self, providers=[provider])
        name = farm.prefix
        self.fence = AzureFence(f"{name}-fence", farm.fence, region=farm.region, environment=farm.environment, tags=tags,
                                protect_data=farm.prod, opts=layer)
        self.troughs = {
            key: AzureTrough(f"{name}-{key}", spec, account_name=bucket_name("azure", farm.prefix, key, spec.name),
                             fence=self.fence, protect_data=farm.prod, zone_redundant=farm.prod, opts=layer)
            for key, spec in farm.troughs.items()
        }
        self.ledger = AzureLedger(f"{name}-ledger", farm.ledger, farm=name, opts=layer)
        self.finish({"resource_group": self.fence.resource_group_name})
        pulumi.export("resource_group", self.fence.resource_group_name)
        pulumi.export("storage_accounts", {key: t.account_name for key, t in self.troughs.items()})


def build(farm: FarmConfig) -> AzureFarm:
    return AzureFarm(farm)
