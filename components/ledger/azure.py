"""AzureLedger: a monthly Cost Management budget on the subscription, filtered to the farm's cost tag.

Notifications at the actual and forecasted thresholds (50/80/100 % actual and 100 % forecasted by default)
go through an Azure Monitor action group that emails the stack's addresses. Azure evaluates budgets about
once a day and never stops resources by itself.

Hard stop (`hard_stop: true`, off by default): the actual notifications at 100 % or more use a second
action group that also starts a Logic App (definition in hard_stop_azure/workflow.json). It scales every
GPU agent pool of the farm to zero with the autoscaler off and deallocates the dev boxes, acting with its
own identity through the fence's stop-spend role on the farm's resource group. Undo: hard_stop_azure/README.md.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Sequence

import pulumi
from pulumi_azure_native import authorization, consumption, logic, monitor

from components.azure_rbac import assignment_name
from components.base import FarmComponent, token
from components.ledger.spec import FARM_TAG, LedgerSpec

WORKFLOW = Path(__file__).with_name("hard_stop_azure") / "workflow.json"
TRIGGER = "BudgetActionGroup"
HARD_STOP_PERCENT = 100.0


def notifications(spec: LedgerSpec, alerts: pulumi.Input[str], stop: pulumi.Input[str] | None = None) -> dict[str, consumption.NotificationArgsDict]:
    """One notification per threshold, through the alert action group; an actual one at 100 % or more through the
    hard-stop group when there is one (it emails the same people)."""
    kinds = [("actual", consumption.ThresholdType.ACTUAL, t) for t in spec.actual_thresholds]
    kinds += [("forecast", consumption.ThresholdType.FORECASTED, t) for t in spec.forecast_thresholds]
    out: dict[str, consumption.NotificationArgsDict] = {}
    for label, kind, t in kinds:
        group = stop if (stop is not None and label == "actual" and t >= HARD_STOP_PERCENT) else alerts
        # The action group carries the emails: listing them here too would send each alert twice.
        out[f"{label}-{t:g}"] = {"enabled": True, "operator": consumption.OperatorType.GREATER_THAN, "threshold": t, "threshold_type": kind,
                                 "contact_emails": [], "contact_groups": [group]}
    return out


def month_start(today: dt.date | None = None) -> str:
    day = today or dt.datetime.now(dt.timezone.utc).date()
    return f"{day.year:04d}-{day.month:02d}-01T00:00:00Z"


class AzureLedger(FarmComponent):
    TOKEN = token("AzureLedger")

    def __init__(self, name: str, spec: LedgerSpec, *, farm: str, resource_group_name: pulumi.Input[str], resource_group_id: pulumi.Input[str],
                 stop_role_id: pulumi.Input[str], tags: dict[str, str], agent_pools: Sequence[pulumi.Input[str]] = (),
                 virtual_machines: Sequence[pulumi.Input[str]] = (), opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        emails: list[monitor.MicrosoftCommonEmailReceiverArgsDict] = [
            {"name": f"email-{i}", "email_address": email, "use_common_alert_schema": True} for i, email in enumerate(spec.alert_emails)]
        alerts = monitor.ActionGroup(f"{name}-alerts", action_group_name=f"{farm}-budget-alerts", group_short_name="df-budget",
                                     resource_group_name=resource_group_name, location="Global", enabled=True, email_receivers=emails,
                                     tags=tags, opts=self.child())
        stop = self._hard_stop(name, farm, resource_group_name, resource_group_id, stop_role_id, tags, emails, agent_pools,
                               virtual_machines, alerts) if spec.hard_stop else None
        consumption.Budget(
            f"{name}-monthly", budget_name=f"{farm}-monthly", scope=client.subscription_id.apply(lambda s: f"/subscriptions/{s}"),
            amount=spec.monthly_budget, category=consumption.CategoryType.COST, time_grain=consumption.TimeGrainType.MONTHLY,
            # Azure wants the first day of a month; once created, the start date stays as it was.
            time_period={"start_date": month_start()},
            filter={"tags": {"name": FARM_TAG, "operator": consumption.BudgetOperatorType.IN_, "values": [farm]}},
            notifications=notifications(spec, alerts.id, stop), opts=self.child(ignore_changes=["timePeriod"]))
        self.finish({})

    def _hard_stop(self, name: str, farm: str, resource_group_name: pulumi.Input[str], resource_group_id: pulumi.Input[str],
                   stop_role_id: pulumi.Input[str], tags: dict[str, str], emails: list[monitor.MicrosoftCommonEmailReceiverArgsDict],
                   agent_pools: Sequence[pulumi.Input[str]], virtual_machines: Sequence[pulumi.Input[str]],
                   alerts: monitor.ActionGroup) -> pulumi.Output[str]:
        workflow = logic.Workflow(
            f"{name}-hard-stop", workflow_name=f"{farm}-hard-stop", resource_group_name=resource_group_name,
            identity={"type": logic.ManagedServiceIdentityType.SYSTEM_ASSIGNED}, state=logic.WorkflowState.ENABLED,
            definition=json.loads(WORKFLOW.read_text()),
            parameters={"agentPools": {"type": logic.ParameterType.ARRAY, "value": list(agent_pools)},
                        "virtualMachines": {"type": logic.ParameterType.ARRAY, "value": list(virtual_machines)}},
            tags=tags, opts=self.child())
        authorization.RoleAssignment(
            f"{name}-hard-stop", role_assignment_name=assignment_name(name, "hard-stop"),
            principal_id=workflow.identity.apply(lambda i: (i.principal_id if i else None) or ""), principal_type="ServicePrincipal",
            scope=resource_group_id, role_definition_id=stop_role_id, opts=self.child(delete_before_replace=True))
        # A hard stop that failed (a pool AKS kept busy past the workflow's hour, a role not yet in effect) must not go
        # unnoticed: the workflow's failed runs (Logic Apps metric RunsFailed) alert the budget's people.
        monitor.MetricAlert(
            f"{name}-hard-stop-failed", rule_name=f"{farm}-hard-stop-failed", resource_group_name=resource_group_name, location="global",
            description="The budget hard stop failed: GPU pools or dev boxes may still be running", severity=1, enabled=True,
            scopes=[workflow.id], evaluation_frequency="PT5M", window_size="PT15M", auto_mitigate=True,
            # A union-typed argument: given as its Args class, or the SDK cannot name its keys on the wire.
            criteria=monitor.MetricAlertSingleResourceMultipleMetricCriteriaArgs(
                odata_type="Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                all_of=[monitor.MetricCriteriaArgs(criterion_type="StaticThresholdCriterion", name="runs-failed", metric_name="RunsFailed",
                                                   metric_namespace="Microsoft.Logic/workflows", operator="GreaterThan", threshold=0,
                                                   time_aggregation="Total")]),
            actions=[{"action_group_id": alerts.id}], tags=tags, opts=self.child())
        callback = logic.list_workflow_trigger_callback_url_output(resource_group_name=resource_group_name, workflow_name=workflow.name,
                                                                   trigger_name=TRIGGER, opts=self.invoke())
        group = monitor.ActionGroup(
            f"{name}-hard-stop-group", action_group_name=f"{farm}-hard-stop", group_short_name="df-hardstop",
            resource_group_name=resource_group_name, location="Global", enabled=True, email_receivers=emails,
            logic_app_receivers=[{"name": "hard-stop", "resource_id": workflow.id,
                                  "callback_url": pulumi.Output.secret(callback.value.apply(lambda v: v or "")),
                                  "use_common_alert_schema": True}],
            tags=tags, opts=self.child())
        return group.id
