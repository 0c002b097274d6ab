"""Every component README's python example runs under mocks and creates what the README says."""

from __future__ import annotations

import re

from dragonfarm.plan import record
from tests.conftest import ROOT


def example(layer: str) -> str:
    text = (ROOT / "components" / layer / "README.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return code


def run(layer: str):
    return record(lambda: exec(example(layer), {}), cloud="aws", region="eu-west-1")


def test_fence_example():
    records = run("fence")
    types = [r.type for r in records]
    assert types.count("aws:ec2/subnet:Subnet") == 4 and types.count("aws:ec2/natGateway:NatGateway") == 2
    (key,) = [r for r in records if r.type == "aws:kms/key:Key"]
    assert key.protect is False


def test_trough_example():
    records = run("trough")
    (bucket,) = [r for r in records if r.type == "aws:s3/bucket:Bucket"]
    assert bucket.inputs["bucket"] == "demo-logs-bucket" and bucket.protect is True
    (lifecycle,) = [r for r in records if r.type.endswith("BucketLifecycleConfiguration")]
    assert {rule["id"] for rule in lifecycle.inputs["rules"]} == {
        "tier-down", "expire-current", "expire-noncurrent", "abort-incomplete-uploads"}
