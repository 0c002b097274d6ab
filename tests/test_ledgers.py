"""Budgets on GCP and Azure: thresholds, scope and filters a user relies on (AWS: test_aws_blueprint.py)."""

from __future__ import annotations

from components.ledger.azure import month_start
from tests.conftest import planned


def test_gcp_budget_thresholds_filter_and_channels():
    plan = planned("gcp-dev")
    (budget,) = plan.of_type("gcp:billing/budget:Budget")
    i = budget.inputs
    assert i["billingAccount"] == "012345-6789AB-CDEF01"
    assert i["amount"] == {"specifiedAmount": {"currencyCode": "USD", "units": "2000"}}
    assert sorted((r["spendBasis"], r["thresholdPercent"]) for r in i["thresholdRules"]) == [
        ("CURRENT_SPEND", 0.5), ("CURRENT_SPEND", 0.8), ("CURRENT_SPEND", 1), ("FORECASTED_SPEND", 1)]
    assert "labels" not in i["budgetFilter"]  # the whole project: a label filter would drop unlabelled spend (AND)
    assert i["budgetFilter"]["projects"] == ["projects/424242424242"]
    assert len(i["allUpdatesRule"]["monitoringNotificationChannels"]) == 1 and i["allUpdatesRule"]["pubsubTopic"]
    (member,) = plan.of_type("gcp:pubsub/topicIAMMember:TopicIAMMember")
    assert member.inputs["member"] == "serviceAccount:billing-budget-alert@system.gserviceaccount.com"


def test_azure_budget_thresholds_scope_and_tag_filter():
    (budget,) = planned("azure-dev").of_type("azure-native:consumption:Budget")
    i = budget.inputs
    assert i["scope"].startswith("/subscriptions/") and i["amount"] == 2000 and i["timeGrain"] == "Monthly"
    assert i["filter"]["tags"] == {"name": "dragonfarm-farm", "operator": "In", "values": ["dfarm-az-dev"]}
    assert sorted((n["thresholdType"], n["threshold"]) for n in i["notifications"].values()) == [
        ("Actual", 50), ("Actual", 80), ("Actual", 100), ("Forecasted", 100)]
    assert budget.ignoreChanges == ["timePeriod"]


def test_azure_budget_starts_on_the_first_of_the_month():
    import datetime as dt

    assert month_start(dt.date(2026, 11, 22)) == "2026-11-01T00:00:00Z"
