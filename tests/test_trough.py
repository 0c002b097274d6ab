"""Trough: encryption with the fence's key, public access blocked, lifecycle days by purpose, protection in prod."""

from __future__ import annotations

import pytest

from tests.conftest import planned

LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"


def rules_of(plan, bucket: str) -> dict[str, dict]:
    return {rule["id"]: rule for rule in plan.one(LIFECYCLE, f"{bucket}-lifecycle").inputs["rules"]}


def test_aws_buckets_are_encrypted_with_the_fence_key():
    plan = planned("aws-dev")
    (key,) = plan.of_type("aws:kms/key:Key")
    sse = plan.of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert len(sse) == 4
    for config in sse:
        rule = config.inputs["rules"][0]
        assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
        assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"].endswith(":key/" + _mock_key_id(key.name))
        assert rule["bucketKeyEnabled"] is True


def _mock_key_id(name: str) -> str:
    from dragonfarm.mocks import uuid_like

    return uuid_like(name)


def test_aws_public_access_is_blocked_and_tls_required():
    plan = planned("aws-dev")
    blocks = plan.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert len(blocks) == 4
    for block in blocks:
        assert all(block.inputs[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    for policy in plan.of_type("aws:s3/bucketPolicy:BucketPolicy"):
        assert '"aws:SecureTransport": "false"' in policy.inputs["policy"]


def test_aws_lifecycle_days_by_purpose():
    plan = planned("aws-dev")
    datasets = rules_of(plan, "dfarm-aws-dev-datasets")
    assert datasets["tier-down"]["transitions"] == [{"days": 30, "storageClass": "STANDARD_IA"}]
    assert datasets["expire-noncurrent"]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert "expire-current" not in datasets
    checkpoints = rules_of(plan, "dfarm-aws-dev-checkpoints")
    assert checkpoints["expire-noncurrent"]["noncurrentVersionExpiration"] == {"noncurrentDays": 14}
    models = rules_of(plan, "dfarm-aws-dev-models")
    assert "tier-down" not in models and "expire-current" not in models  # current models are kept forever
    logs = rules_of(plan, "dfarm-aws-dev-logs")
    assert logs["tier-down"]["transitions"] == [{"days": 30, "storageClass": "STANDARD_IA"}, {"days": 90, "storageClass": "GLACIER"}]
    assert logs["expire-current"]["expiration"] == {"days": 365}
    for bucket in ("datasets", "checkpoints", "models", "logs"):
        rules = rules_of(plan, f"dfarm-aws-dev-{bucket}")
        assert rules["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}


def test_stack_override_of_one_lifecycle_key_keeps_the_other_defaults():
    checkpoints = rules_of(planned("aws-prod"), "dfarm-aws-prod-checkpoints")
    assert checkpoints["expire-noncurrent"]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert checkpoints["tier-down"]["transitions"] == [{"days": 30, "storageClass": "STANDARD_IA"}]


@pytest.mark.parametrize("stack,protected", [("aws-dev", False), ("aws-prod", True)])
def test_buckets_are_protected_in_prod_only(stack, protected):
    buckets = planned(stack).of_type("aws:s3/bucket:Bucket")
    assert len(buckets) == 4
    assert all(b.protect is protected and b.retainOnDelete is protected for b in buckets)
    assert all(b.inputs["forceDestroy"] is (not protected) for b in buckets)


def test_versioning_is_on():
    for versioning in planned("aws-dev").of_type("aws:s3/bucketVersioning:BucketVersioning"):
        assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}


def test_gcp_buckets_uniform_private_cmek_and_lifecycle():
    plan = planned("gcp-dev")
    (key,) = plan.of_type("gcp:kms/cryptoKey:CryptoKey")
    buckets = {b.name: b for b in plan.of_type("gcp:storage/bucket:Bucket")}
    for bucket in buckets.values():
        i = bucket.inputs
        assert i["uniformBucketLevelAccess"] is True and i["publicAccessPrevention"] == "enforced"
        assert i["versioning"] == {"enabled": True}
        assert i["encryption"]["defaultKmsKeyName"].endswith("/cryptoKeys/dfarm-gcp-dev-fence-data")
        assert bucket.protect is False and i["forceDestroy"] is True
    logs = buckets["dfarm-gcp-dev-logs"].inputs["lifecycleRules"]
    assert [(r["action"].get("storageClass", r["action"]["type"]), r["condition"].get("age"), r["condition"].get("daysSinceNoncurrentTime"))
            for r in logs] == [("NEARLINE", 30, None), ("COLDLINE", 90, None), ("Delete", 365, None), ("Delete", None, 7),
                               ("AbortIncompleteMultipartUpload", 7, None)]


def test_azure_accounts_private_no_shared_keys_cmk_and_lifecycle():
    plan = planned("azure-dev")
    accounts = plan.of_type("azure-native:storage:StorageAccount")
    assert sorted(a.inputs["accountName"] for a in accounts) == ["dfarmazdevckpt", "dfarmazdevdata", "dfarmazdevlogs"]
    for account in accounts:
        i = account.inputs
        assert i["allowBlobPublicAccess"] is False and i["allowSharedKeyAccess"] is False
        assert i["minimumTlsVersion"] == "TLS1_2" and i["publicNetworkAccess"] == "Disabled"
        assert i["encryption"]["keySource"] == "Microsoft.Keyvault"
        assert i["encryption"]["keyVaultProperties"]["keyName"] == "farm-data"
        assert i["sku"]["name"] == "Standard_LRS"
    policy = plan.one("azure-native:storage:ManagementPolicy", "dfarm-az-dev-logs-lifecycle").inputs["policy"]
    actions = policy["rules"][0]["definition"]["actions"]
    assert actions["baseBlob"] == {"tierToCool": {"daysAfterModificationGreaterThan": 30},
                                   "tierToCold": {"daysAfterModificationGreaterThan": 90},
                                   "delete": {"daysAfterModificationGreaterThan": 365}}
    assert actions["version"] == {"delete": {"daysAfterCreationGreaterThan": 7}}
    assert len(plan.of_type("azure-native:network:PrivateEndpoint")) == 3
