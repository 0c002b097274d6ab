"""AwsLedger: monthly budget on the farm's cost tag, anomaly detection, optional hard stop.

Alerts go to an SNS topic encrypted with the farm key (whose policy lets Budgets and Cost Anomaly
Detection use it: they cannot publish to a topic under the AWS-managed SNS key) and straight to the
stack's emails. The anomaly monitor watches only the farm's cost tag: AWS allows one account-wide
per-service monitor, and several farms in one account must not collide on it. Budgets lag by up to a day
and stop nothing by themselves: the optional hard stop (`hard_stop: true`) attaches a policy that
denies launching GPU instances to the role that launches them (Karpenter's controller) at 100%
actual. It is off by default because it stops work; running instances keep running.
"""

from __future__ import annotations

import json

import pulumi
from pulumi_aws import budgets, costexplorer, iam, sns

from components.aws_iam import assume, policy
from components.base import FarmComponent, token
from components.ledger.spec import FARM_TAG, LedgerSpec

# Instance families carrying GPUs; the hard stop denies launching them.
GPU_INSTANCE_PATTERNS = ["arn:aws:ec2:*:*:instance/*"]
GPU_FAMILIES = ["p4d.*", "p4de.*", "p5.*", "p5e.*", "p5en.*", "g4dn.*", "g5.*", "g6.*", "g6e.*"]


def account_of(arn: str) -> str:
    """The account id field of an ARN (arn:partition:service:region:account:resource)."""
    return arn.split(":")[4]


def farm_cost_expression(farm: str) -> dict:
    """Cost Explorer expression selecting the farm's spend by its cost allocation tag."""
    return {"Tags": {"Key": FARM_TAG, "Values": [farm], "MatchOptions": ["EQUALS"]}}


def notifications(spec: LedgerSpec) -> list[budgets.BudgetNotificationArgsDict]:
    """Budget alerts e-mail the stack's addresses directly: no subscription to confirm, so they arrive even
    if nobody clicks the SNS confirmation link, and once each (not once directly and once through SNS)."""
    kinds = [("ACTUAL", t) for t in spec.actual_thresholds] + [("FORECASTED", t) for t in spec.forecast_thresholds]
    return [{"comparison_operator": "GREATER_THAN", "threshold": threshold, "threshold_type": "PERCENTAGE",
             "notification_type": kind, "subscriber_email_addresses": list(spec.alert_emails)}
            for kind, threshold in kinds]


class AwsLedger(FarmComponent):
    TOKEN = token("AwsLedger")

    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, spec: LedgerSpec, *, farm: str, key_arn: pulumi.Input[str],
                 stop_role_name: pulumi.Input[str] | None = None, stop_role_arn: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        topic = sns.Topic(f"{name}-alerts", name=f"{name}-alerts", kms_master_key_id=key_arn, opts=self.child())
        self.topic_arn = topic.arn
        # The topic carries cost anomaly alerts (IMMEDIATE anomaly alerts can only go to SNS). Only this
        # account's anomaly subscriptions may publish (Cost Management user guide, "Creating an Amazon SNS
        # topic for anomaly notifications").
        topic_policy = sns.TopicPolicy(f"{name}-alerts", arn=topic.arn, policy=topic.arn.apply(lambda arn: policy(
            {"Sid": "CostAnomalyDetection", "Effect": "Allow", "Principal": {"Service": "costalerts.amazonaws.com"},
             "Action": "SNS:Publish", "Resource": arn, "Condition": {"StringEquals": {"aws:SourceAccount": account_of(arn)}}})),
            opts=self.child())
        for email in spec.alert_emails:
            sns.TopicSubscription(f"{name}-alerts-{email}", topic=topic.arn, protocol="email", endpoint=email, opts=self.child())
        budget = budgets.Budget(
            f"{name}-monthly", name=f"{farm}-monthly", budget_type="COST", time_unit="MONTHLY",
            limit_amount=f"{spec.monthly_budget:.2f}", limit_unit=spec.currency,
            # Scoped to the farm: the cost allocation tag must be activated once per account (see README).
            cost_filters=[{"name": "TagKeyValue", "values": [f"user:{FARM_TAG}${farm}"]}],
            notifications=notifications(spec), opts=self.child())
        monitor = costexplorer.AnomalyMonitor(f"{name}-anomalies", name=f"{farm}-farm", monitor_type="CUSTOM",
                                              monitor_specification=json.dumps(farm_cost_expression(farm)), opts=self.child())
        costexplorer.AnomalySubscription(
            f"{name}-anomalies", name=f"{farm}-anomalies", frequency="IMMEDIATE", monitor_arn_lists=[monitor.arn],
            subscribers=[{"type": "SNS", "address": topic.arn}],
            threshold_expression={"dimension": {"key": "ANOMALY_TOTAL_IMPACT_ABSOLUTE", "match_options": ["GREATER_THAN_OR_EQUAL"],
                                                "values": [f"{spec.anomaly_threshold:g}"]}},
            # The service checks it may publish when the subscription is created: wait for the topic policy.
            opts=self.child(depends_on=[topic_policy]))
        if spec.hard_stop and stop_role_name is not None and stop_role_arn is not None:
            self._hard_stop(name, spec, budget, stop_role_name, stop_role_arn)
        self.finish({"topic_arn": self.topic_arn})

    def _hard_stop(self, name: str, spec: LedgerSpec, budget: budgets.Budget, role_name: pulumi.Input[str],
                   role_arn: pulumi.Input[str]) -> None:
        deny = iam.Policy(f"{name}-deny-gpu-launch", description="dragonfarm hard stop: no new GPU instances", policy=policy(
            {"Sid": "DenyGpuLaunch", "Effect": "Deny", "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
             "Resource": GPU_INSTANCE_PATTERNS, "Condition": {"StringLike": {"ec2:InstanceType": GPU_FAMILIES}}}),
            opts=self.child())
        executor = iam.Role(f"{name}-budget-action", assume_role_policy=assume("budgets.amazonaws.com"), opts=self.child())
        # The budget action may attach and detach the deny policy, and only on the role it stops.
        iam.RolePolicy(f"{name}-budget-action", role=executor.id, policy=pulumi.Output.all(deny.arn, role_arn).apply(lambda a: policy(
            {"Effect": "Allow", "Action": ["iam:AttachRolePolicy", "iam:DetachRolePolicy"], "Resource": a[1],
             "Condition": {"ArnEquals": {"iam:PolicyARN": a[0]}}})), opts=self.child())
        budgets.BudgetAction(
            f"{name}-hard-stop", budget_name=budget.name, action_type="APPLY_IAM_POLICY", approval_model="AUTOMATIC",
            notification_type="ACTUAL", execution_role_arn=executor.arn,
            action_threshold={"action_threshold_type": "PERCENTAGE", "action_threshold_value": 100},
            definition={"iam_action_definition": {"policy_arn": deny.arn, "roles": [role_name]}},
            subscribers=[{"address": email, "subscription_type": "EMAIL"} for email in spec.alert_emails],
            opts=self.child())
