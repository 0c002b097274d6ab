"""GcpTrough: one GCS bucket, uniform access, public access prevented, versioned, CMEK, lifecycle by purpose."""

from __future__ import annotations

import pulumi
from pulumi_gcp import storage

from components.base import FarmComponent, token
from components.trough.spec import TIERS, Lifecycle, TroughSpec

Rule = storage.BucketLifecycleRuleArgsDict


def lifecycle_rules(lc: Lifecycle, versioning: bool) -> list[Rule]:
    """GCS lifecycle rules for a Lifecycle spec (typed, so pyright checks every nested key)."""
    tiers = TIERS["gcp"]
    rules: list[Rule] = []
    if lc.cool_after_days is not None:
        rules.append({"action": {"type": "SetStorageClass", "storage_class": tiers["cool"].name},
                      "condition": {"age": lc.cool_after_days, "matches_storage_classes": [tiers["hot"].name], "with_state": "LIVE"}})
    if lc.cold_after_days is not None:
        rules.append({"action": {"type": "SetStorageClass", "storage_class": tiers["cold"].name},
                      "condition": {"age": lc.cold_after_days, "matches_storage_classes": [tiers["hot"].name, tiers["cool"].name],
                                    "with_state": "LIVE"}})
    if lc.expire_after_days is not None:
        rules.append({"action": {"type": "Delete"}, "condition": {"age": lc.expire_after_days, "with_state": "LIVE"}})
    if versioning and lc.noncurrent_expire_after_days is not None:
        rules.append({"action": {"type": "Delete"},
                      "condition": {"days_since_noncurrent_time": lc.noncurrent_expire_after_days, "with_state": "ARCHIVED"}})
    rules.append({"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": lc.abort_incomplete_upload_days}})
    return rules


class GcpTrough(FarmComponent):
    TOKEN = token("GcpTrough")

    bucket_name: pulumi.Output[str]

    def __init__(self, name: str, spec: TroughSpec, *, bucket_name: str, project: str, region: str, key_id: pulumi.Input[str],
                 protect_data: bool = False, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts, protect_data)
        if spec.existing_bucket is not None:
            self.bucket_name = pulumi.Output.from_input(spec.existing_bucket)
            self.finish({"bucket_name": self.bucket_name})
            return
        bucket = storage.Bucket(
            name, name=bucket_name, project=project, location=region.upper(), storage_class=TIERS["gcp"]["hot"].name,
            uniform_bucket_level_access=True, public_access_prevention="enforced",
            versioning={"enabled": spec.versioning}, encryption={"default_kms_key_name": key_id},
            lifecycle_rules=lifecycle_rules(spec.effective_lifecycle(), spec.versioning),
            # The farm's cost labels come from the provider's default labels.
            labels={"dragonfarm-purpose": spec.purpose.value}, force_destroy=not protect_data,
            opts=self.stateful())
        self.bucket_name = bucket.name
        self.finish({"bucket_name": self.bucket_name})
