"""The pack through pulumi-policy's own API: ResourceValidationArgs / StackValidationArgs built the way the analyzer
builds them (props behind pulumi-policy's unknown-checking proxy), each policy's validate called with a reporter.

Run in the pack's venv: `policy/.venv/bin/python -m pytest policy/tests` (the main suite's tests/test_policy_pack.py
does it, handing over recorded plans and `dragonfarm check`'s verdicts on them through DF_GUARDRAIL_CASES).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from pulumi_policy import (  # noqa: E402
    EnforcementLevel, PolicyCustomTimeouts, PolicyProviderResource, PolicyResource, PolicyResourceOptions,
    ResourceValidationArgs, ResourceValidationPolicy, StackValidationArgs, StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError  # noqa: E402
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, unknown_checking_proxy  # noqa: E402

import dragonfarm_policy  # noqa: E402

POLICIES = dragonfarm_policy.policies()


def opts(protect: bool = False, parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], parent)


def run_resource(rtype: str, props: dict[str, Any], name: str = "r", urn: str = "urn:r", provider: Any = None,
                 protect: bool = False, parent: str | None = None) -> tuple[list[tuple[str, str]], list[str]]:
    """(policy name, message) violations and the names of policies that said not applicable."""
    found: list[tuple[str, str]] = []
    skipped: list[str] = []
    for policy in POLICIES:
        if not isinstance(policy, ResourceValidationPolicy):
            continue
        args = ResourceValidationArgs(rtype, unknown_checking_proxy(props), urn, name, opts(protect, parent), provider)
        try:
            policy.validate(args, lambda message, _urn=None, n=policy.name: found.append((n, message)))
        except _NotApplicableError:
            skipped.append(policy.name)
    return found, skipped


def provider_of(row: dict[str, Any] | None) -> PolicyProviderResource | None:
    if row is None:
        return None
    return PolicyProviderResource(row["type"], unknown_checking_proxy(row["inputs"]), row["urn"], row["name"])


def verdicts(rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(rule id, urn or '') of every violation the pack reports over a recorded plan."""
    by_urn = {r["urn"]: r for r in rows}
    out: set[tuple[str, str]] = set()
    for r in rows:
        prov = provider_of(by_urn.get(r.get("provider") or ""))
        for policy in POLICIES:
            if not isinstance(policy, ResourceValidationPolicy):
                continue
            args = ResourceValidationArgs(r["type"], unknown_checking_proxy(r["inputs"]), r["urn"], r["name"],
                                          opts(r.get("protect", False), r.get("parent") or None), prov)
            try:
                policy.validate(args, lambda _m, _u=None, n=policy.name, u=r["urn"]: out.add((n, u)))
            except _NotApplicableError:
                pass
    resources = {r["urn"]: PolicyResource(r["type"], unknown_checking_proxy(r["inputs"]), r["urn"], r["name"],
                                          opts(r.get("protect", False), r.get("parent") or None),
                                          provider_of(by_urn.get(r.get("provider") or "")), None, [], {}) for r in rows}
    for r in rows:
        if r.get("parent") in resources:
            resources[r["urn"]].parent = resources[r["parent"]]
    args = StackValidationArgs(list(resources.values()))
    for policy in POLICIES:
        if isinstance(policy, StackValidationPolicy):
            try:
                policy.validate(args, lambda _m, urn=None, n=policy.name: out.add((n, urn or "")))
            except _NotApplicableError:
                pass
    return out


def test_every_rule_is_one_policy_with_its_enforcement_level():
    from dragonfarm.guardrails import RULES

    assert [p.name for p in POLICIES] == [r.id for r in RULES]
    for policy, rule in zip(POLICIES, RULES):
        expected = EnforcementLevel.MANDATORY if rule.severity == "mandatory" else EnforcementLevel.ADVISORY
        assert policy.enforcement_level == expected
        assert isinstance(policy, StackValidationPolicy if rule.kind == "stack" else ResourceValidationPolicy)


def test_public_access_block_with_a_flag_off_is_a_violation_of_df_aws_001_only():
    props = {"bucket": "b", "blockPublicAcls": True, "blockPublicPolicy": False, "ignorePublicAcls": True,
             "restrictPublicBuckets": True}
    found, _ = run_resource("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", props)
    assert [n for n, _ in found] == ["DF-AWS-001"]
    assert "blockPublicPolicy" in found[0][1]
    props["blockPublicPolicy"] = True
    assert run_resource("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", props)[0] == []


def test_an_unknown_value_at_preview_is_not_applicable_not_a_violation():
    props = {"bucket": "b", "blockPublicAcls": True, "blockPublicPolicy": UNKNOWN_BOOLEAN_VALUE, "ignorePublicAcls": True,
             "restrictPublicBuckets": True}
    found, skipped = run_resource("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", props)
    assert found == [] and skipped == ["DF-AWS-001"]


def test_cost_tags_come_from_the_provider_default_tags():
    tags = {"tags": {"dragonfarm-farm": "f", "dragonfarm-environment": "dev", "managed-by": "dragonfarm"}}
    good = PolicyProviderResource("pulumi:providers:aws", unknown_checking_proxy({"defaultTags": json.dumps(tags)}), "urn:p", "aws")
    bare = PolicyProviderResource("pulumi:providers:aws", unknown_checking_proxy({}), "urn:p", "aws")
    assert run_resource("aws:sqs/queue:Queue", {}, provider=good)[0] == []
    assert [n for n, _ in run_resource("aws:sqs/queue:Queue", {}, provider=bare)[0]] == ["DF-COST-001"]


def test_stack_policy_reports_a_stack_without_a_budget():
    args = StackValidationArgs([PolicyResource("aws:sqs/queue:Queue", unknown_checking_proxy({}), "urn:q", "q", opts(),
                                               None, None, [], {})])
    reported: list[tuple[str, str | None]] = []
    policy = next(p for p in POLICIES if p.name == "DF-COST-007")
    policy.validate(args, lambda message, urn=None: reported.append((message, urn)))
    assert len(reported) == 1 and reported[0][1] is None and "no budget" in reported[0][0]


def test_stack_policies_read_azure_native_inputs_kept_under_dunder_inputs():
    """On a preview after the first `pulumi up`, a stack policy sees an azure-native resource's outputs: the API's
    response, with the program's inputs under a secret `__inputs`. The account-to-policy join must still work."""
    from dragonfarm_policy import SECRET_SIG

    def existing(type_: str, name: str, inputs: dict) -> PolicyResource:
        outputs = {"id": f"/subscriptions/s/{name}", "name": name, "__inputs": {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270",
                                                                               "value": inputs}}
        return PolicyResource(type_, unknown_checking_proxy(outputs), f"urn:{name}", name, opts(), None, None, [], {})

    account = existing("azure-native:storage:StorageAccount", "ckpt",
                       {"accountName": "dfckpt", "tags": {"dragonfarm-purpose": "checkpoints"}})
    versioned = existing("azure-native:storage:BlobServiceProperties", "ckpt-blob", {"accountName": "dfckpt", "isVersioningEnabled": True})
    policy = next(p for p in POLICIES if p.name == "DF-AZ-006")
    reported: list[str] = []
    policy.validate(StackValidationArgs([account, versioned]), lambda message, urn=None: reported.append(message))
    assert reported == []
    policy.validate(StackValidationArgs([account]), lambda message, urn=None: reported.append(message))
    assert len(reported) == 1 and "no blob versioning" in reported[0]


CASES = os.environ.get("DF_GUARDRAIL_CASES")


@pytest.mark.skipif(not CASES, reason="needs DF_GUARDRAIL_CASES (written by the main suite's tests/test_policy_pack.py)")
def test_pack_gives_dragonfarm_checks_verdicts_on_recorded_plans():
    cases = json.loads(Path(str(CASES)).read_text())
    assert cases, "no recorded plans were handed over"
    for case in cases:
        expected = {(rule, urn) for rule, urn in case["expected"]}
        assert verdicts(case["resources"]) == expected, case["name"]
