"""Every shipped stack plans; plans are stable; resource inventories are pinned so changes show in review.

Regenerate the pinned inventories after an intended change: UPDATE_INVENTORY=1 pytest tests/test_plans.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dragonfarm.plan import NOTICE, Plan, PlanError, layer_of, typo_keys
from tests.conftest import ROOT, STACKS, planned

INVENTORY = ROOT / "tests" / "inventory"


@pytest.mark.parametrize("stack", STACKS)
def test_inventory_is_pinned(stack):
    plan = planned(stack)
    counts = plan.counts()
    path = INVENTORY / f"{stack}.json"
    if os.environ.get("UPDATE_INVENTORY"):
        path.write_text(json.dumps(counts, indent=2, sort_keys=True) + "\n")
    assert counts == json.loads(path.read_text()), f"inventory of {stack} changed; if intended, UPDATE_INVENTORY=1"


def test_the_four_required_stacks_exist():
    assert {"aws-dev", "aws-prod", "gcp-dev", "azure-dev"} <= set(STACKS)


@pytest.mark.parametrize("stack", ["aws-dev", "gcp-dev"])
def test_json_is_identical_across_two_runs(stack):
    runs = [subprocess.run([sys.executable, "-m", "dragonfarm.cli", "plan", stack, "--json"], capture_output=True, text=True,
                           cwd=ROOT, check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1]
    body = json.loads(runs[0])
    assert body["notice"] == NOTICE and "not `pulumi preview`" in body["notice"]
    assert {"stack", "cloud", "resources"} <= body.keys()
    first = body["resources"][0]
    assert {"type", "name", "parent", "inputs", "protect", "layer"} <= first.keys()


def test_plan_round_trips_through_json():
    plan = planned("aws-dev")
    again = Plan.from_json(plan.to_json())
    assert again.to_json() == plan.to_json()


def test_human_plan_says_it_is_not_a_preview():
    run = subprocess.run([sys.executable, "-m", "dragonfarm.cli", "plan", "aws-dev"], capture_output=True, text=True, cwd=ROOT,
                         check=True, env={**os.environ, "COLUMNS": "200"})
    assert "not `pulumi preview`" in run.stdout
    assert "fence (" in run.stdout and "trough (" in run.stdout


def test_every_cloud_resource_sits_in_a_layer():
    for stack in STACKS:
        plan = planned(stack)
        stray = [r.name for r in plan.resources if r.custom and not r.type.startswith("pulumi:providers:")
                 and layer_of(plan, r) == "farm"]
        assert stray == [], stack


def test_snake_case_key_left_in_inputs_is_a_typo():
    inputs = {"rules": [{"id": "a", "abort_incomplete_upload": {"days": 7}}], "tags": {"cost_center": "x"}}
    assert list(typo_keys(inputs)) == ["rules[0].abort_incomplete_upload"]


def test_plan_fails_on_a_misspelled_nested_key(tmp_path, monkeypatch):
    from components.trough import aws as trough_aws

    real = trough_aws.lifecycle_rules

    def misspelled(lc, versioning):
        rules = real(lc, versioning)
        rules[0]["noncurrent_version_expiraton"] = {"noncurrent_days": 3}  # type: ignore[typeddict-unknown-key]
        return rules

    monkeypatch.setattr(trough_aws, "lifecycle_rules", misspelled)
    from dragonfarm.plan import plan_stack

    with pytest.raises(PlanError) as info:
        plan_stack("aws-dev")
    assert "input key 'rules[0].noncurrent_version_expiraton' is not a property" in str(info.value)


def test_two_resources_with_one_urn_fail_the_plan():
    import pulumi_aws as aws

    from dragonfarm.plan import record, refused

    def program():
        aws.sns.Topic("alerts")
        aws.sns.Topic("alerts")

    records = record(program, cloud="aws", region="us-east-1")
    assert refused(records) == ["urn:pulumi:example::dragonfarm::aws:sns/topic:Topic::alerts: registered twice (two resources "
                                "with one type and name); the engine refuses a duplicate URN"]
