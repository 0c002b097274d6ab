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


def test_breeding_ground_example():
    records = run("breeding_ground")
    (pool,) = [r for r in records if r.type == "kubernetes:karpenter.sh/v1:NodePool"]
    assert pool.inputs["spec"]["limits"] == {"nvidia.com/gpu": "12"}  # 3 nodes x 4 L4
    queues = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in records if r.type.endswith(":ClusterQueue")}
    # research is guaranteed 8 of the 12 GPUs; the lender queue holds the other 4 for anyone to borrow.
    gpu = lambda q: next(x["nominalQuota"] for x in q["resourceGroups"][0]["flavors"][0]["resources"] if x["name"] == "nvidia.com/gpu")
    assert {name: gpu(q) for name, q in queues.items()} == {"research": 8, "farm-shared": 4}


def test_ledger_example():
    records = run("ledger")
    (budget,) = [r for r in records if r.type == "aws:budgets/budget:Budget"]
    assert budget.inputs["limitAmount"] == "1500.00"
    (action,) = [r for r in records if r.type == "aws:budgets/budgetAction:BudgetAction"]
    assert action.inputs["definition"]["iamActionDefinition"]["roles"] == ["demo-karpenter-controller"]


def test_barn_example():
    records = run("barn")
    (box,) = [r for r in records if r.type == "aws:ec2/instance:Instance"]
    assert box.inputs["instanceType"] == "g6.xlarge"  # the smallest L4 type (gpu_catalog.csv)
    assert "Environment=IDLE_MINUTES=30" in box.inputs["userData"]
    (schedule,) = [r for r in records if r.type == "aws:scheduler/schedule:Schedule"]
    assert schedule.inputs["scheduleExpression"] == "cron(0 21 * * ? *)"  # the default nightly stop, 21:00
