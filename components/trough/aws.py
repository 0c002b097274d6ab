"""AwsTrough: one S3 bucket, versioned, KMS-encrypted, public access blocked, TLS only, lifecycle by purpose."""

from __future__ import annotations

import pulumi
from pulumi_aws import s3

from components.aws_iam import deny_insecure_transport, policy
from components.base import FarmComponent, token
from components.trough.spec import TIERS, Lifecycle, TroughSpec

Rule = s3.BucketLifecycleConfigurationRuleArgsDict


def lifecycle_rules(lc: Lifecycle, versioning: bool) -> list[Rule]:
    """S3 lifecycle rules for a Lifecycle spec (typed, so pyright checks every nested key)."""
    tiers = TIERS["aws"]
    everything: s3.BucketLifecycleConfigurationRuleFilterArgsDict = {"prefix": ""}
    rules: list[Rule] = []
    transitions: list[s3.BucketLifecycleConfigurationRuleTransitionArgsDict] = [
        {"days": days, "storage_class": tiers[tier].name}
        for tier, days in (("cool", lc.cool_after_days), ("cold", lc.cold_after_days)) if days is not None]
    if transitions:
        rules.append({"id": "tier-down", "status": "Enabled", "filter": everything, "transitions": transitions})
    if lc.expire_after_days is not None:
        rules.append({"id": "expire-current", "status": "Enabled", "filter": everything,
                      "expiration": {"days": lc.expire_after_days}})
    if versioning and lc.noncurrent_expire_after_days is not None:
        rules.append({"id": "expire-noncurrent", "status": "Enabled", "filter": everything,
                      "noncurrent_version_expiration": {"noncurrent_days": lc.noncurrent_expire_after_days}})
        if lc.expire_after_days is None:
            # Delete markers left once every older version has expired cost requests on every list.
            rules.append({"id": "remove-expired-delete-markers", "status": "Enabled", "filter": everything,
                          "expiration": {"expired_object_delete_marker": True}})
    rules.append({"id": "abort-incomplete-uploads", "status": "Enabled", "filter": everything,
                  "abort_incomplete_multipart_upload": {"days_after_initiation": lc.abort_incomplete_upload_days}})
    return rules


class AwsTrough(FarmComponent):
    TOKEN = token("AwsTrough")

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(self, name: str, spec: TroughSpec, *, bucket_name: pulumi.Input[str], key_arn: pulumi.Input[str],
                 protect_data: bool = False, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts, protect_data)
        if spec.existing_bucket is not None:
            self.bucket_name = pulumi.Output.from_input(spec.existing_bucket)
            self.bucket_arn = pulumi.Output.from_input(f"arn:aws:s3:::{spec.existing_bucket}")
            self.finish({"bucket_name": self.bucket_name})
            return
        # Dev buckets may be emptied on destroy; prod buckets are protected and retained instead.
        bucket = s3.Bucket(name, bucket=bucket_name, force_destroy=not protect_data,
                           tags={"Name": bucket_name, "dragonfarm-purpose": spec.purpose.value}, opts=self.stateful())
        self.bucket_name, self.bucket_arn = bucket.bucket, bucket.arn
        s3.BucketOwnershipControls(f"{name}-ownership", bucket=bucket.id,
                                   rule={"object_ownership": "BucketOwnerEnforced"}, opts=self.child())
        block = s3.BucketPublicAccessBlock(f"{name}-public-access", bucket=bucket.id, block_public_acls=True,
                                           block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True,
                                           opts=self.child())
        s3.BucketVersioning(f"{name}-versioning", bucket=bucket.id,
                            versioning_configuration={"status": "Enabled" if spec.versioning else "Suspended"}, opts=self.child())
        s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key_arn},
                    "bucket_key_enabled": True}],
            opts=self.child())
        s3.BucketPolicy(f"{name}-tls-only", bucket=bucket.id, policy=bucket.arn.apply(lambda arn: policy(
            deny_insecure_transport("DenyInsecureTransport", "s3:*", [arn, f"{arn}/*"]))), opts=self.child(depends_on=[block]))
        s3.BucketLifecycleConfiguration(f"{name}-lifecycle", bucket=bucket.id,
                                        rules=lifecycle_rules(spec.effective_lifecycle(), spec.versioning),
                                        opts=self.child())
        self.finish({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})
