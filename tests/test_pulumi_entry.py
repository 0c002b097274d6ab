"""The `pulumi up` entry point (__main__.py -> blueprints.main) reads config the way the Pulumi CLI
hands it over: every value a string, objects JSON-encoded. It must build the same farm as the plan,
and a bad config must stop it with a RunError (printed without a traceback) before anything is built."""

from __future__ import annotations

import json

import pulumi
import pytest

from dragonfarm.plan import record
from tests.conftest import planned, stack_config


def as_cli_config(config: dict) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def real_runner(config: dict) -> dict:
    """aws-dev with its documentation-range endpoint CIDR replaced by a range a real runner could have."""
    config["dragonfarm:breeding_ground"]["public_endpoint_cidrs"] = ["198.18.0.0/15"]
    return config


def test_main_builds_what_the_plan_shows():
    from blueprints import main

    records = record(main, cloud="aws", region="us-east-1", stack="aws-dev", config=as_cli_config(real_runner(stack_config("aws-dev"))),
                     caller="arn:aws:sts::123456789012:assumed-role/ml-platform-admins/alice")
    assert sorted(r.urn for r in records) == sorted(r.urn for r in planned("aws-dev").resources)


def test_main_refuses_the_example_endpoint_range_the_plan_only_warns_about():
    # RFC 5737: 203.0.113.0/24 (TEST-NET-3) is for documentation; no runner has such an address, so a cluster
    # endpoint open only to it could never be reached by the program installing the in-cluster stack.
    from blueprints import main

    line = ("stack aws-dev: dragonfarm:breeding_ground.public_endpoint_cidrs[0]: got '203.0.113.0/24'; allowed: your runners' "
            "public CIDRs: this is a documentation range (RFC 5737) that no real machine has")
    with pytest.raises(pulumi.RunError) as info:
        record(main, cloud="aws", region="us-east-1", stack="aws-dev", config=as_cli_config(stack_config("aws-dev")))
    assert str(info.value) == line
    assert planned("aws-dev").warnings == [line.replace("stack aws-dev", "stacks/Pulumi.aws-dev.yaml") + " (`pulumi up` refuses this)"]


def test_main_stops_on_bad_config_before_building_anything():
    from blueprints import main

    config = stack_config("aws-dev")
    config["dragonfarm:fence"] = {"cidr": "10.0.0.1/16"}
    with pytest.raises(pulumi.RunError) as info:
        record(main, cloud="aws", region="us-east-1", stack="aws-dev", config=as_cli_config(config))
    assert str(info.value) == ("stack aws-dev: dragonfarm:fence.cidr: got '10.0.0.1/16'; allowed: an IPv4 network in CIDR form "
                               "with no host bits set, e.g. 10.0.0.0/16")
