"""GcpLedger: a monthly Cloud Billing budget on the farm's project, with alerts.

Threshold rules on current spend (50/80/100 %) and forecasted spend (100 %) go to e-mail
notification channels and to a Pub/Sub topic, where a function can act on them (budgets alone stop
nothing). GCP raises cost anomalies by itself in the Billing console; there is no resource to create.
"""

from __future__ import annotations

import pulumi
from pulumi_gcp import billing, monitoring, organizations, pubsub

from components.base import FarmComponent, token
from components.ledger.spec import LedgerSpec

# The service account Cloud Billing publishes budget notifications with.
BUDGET_PUBLISHER = "serviceAccount:billing-budget-alert@system.gserviceaccount.com"


def threshold_rules(spec: LedgerSpec) -> list[billing.BudgetThresholdRuleArgsDict]:
    rules: list[billing.BudgetThresholdRuleArgsDict] = []
    for basis, thresholds in (("CURRENT_SPEND", spec.actual_thresholds), ("FORECASTED_SPEND", spec.forecast_thresholds)):
        for t in thresholds:
            rule: billing.BudgetThresholdRuleArgsDict = {"threshold_percent": t / 100, "spend_basis": basis}
            rules.append(rule)
    return rules


class GcpLedger(FarmComponent):
    TOKEN = token("GcpLedger")

    topic_id: pulumi.Output[str]

    def __init__(self, name: str, spec: LedgerSpec, *, farm: str, project: str, billing_provider: pulumi.ProviderResource | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        """`billing_provider`: the provider the Budget is created through (one that bills its API calls to a
        quota project, as the Budgets API needs with user credentials)."""
        super().__init__(name, opts)
        assert spec.billing_account is not None  # guaranteed by LedgerSpec.problems on gcp
        channels = [monitoring.NotificationChannel(f"{name}-email-{email}", project=project, type="email",
                                                   display_name=f"{farm} budget: {email}", labels={"email_address": email},
                                                   opts=self.child())
                    for email in spec.alert_emails]
        topic = pubsub.Topic(f"{name}-alerts", name=f"{farm}-budget-alerts", project=project, opts=self.child())
        self.topic_id = topic.id
        pubsub.TopicIAMMember(f"{name}-alerts-publisher", topic=topic.name, project=project, role="roles/pubsub.publisher",
                              member=BUDGET_PUBLISHER, opts=self.child())
        number = organizations.get_project_output(project_id=project, opts=self.invoke()).number
        billing.Budget(
            f"{name}-monthly", billing_account=spec.billing_account, display_name=f"{farm}-monthly",
            amount={"specified_amount": {"currency_code": spec.currency, "units": f"{int(spec.monthly_budget)}"}},
            # The whole project: a label filter would AND with it and drop unlabelled spend (Cloud NAT, logging,
            # egress), under-reporting. A farm is meant to have its project.
            budget_filter={"projects": [number.apply(lambda n: f"projects/{n}")], "calendar_period": "MONTH"},
            threshold_rules=threshold_rules(spec),
            all_updates_rule={"monitoring_notification_channels": [c.id for c in channels], "pubsub_topic": topic.id},
            opts=self.child(provider=billing_provider) if billing_provider is not None else self.child())
        self.finish({"topic_id": self.topic_id})
