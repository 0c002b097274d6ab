"""AzureLedger: a monthly Cost Management budget on the subscription, filtered to the farm's cost tag.

Notifications at 50/80/100 % actual and 100 % forecasted go to the stack's emails (Azure allows five
per budget). Azure evaluates budgets about once a day and never stops resources by itself.
"""

from __future__ import annotations

import datetime as dt

import pulumi
from pulumi_azure_native import authorization, consumption

from components.base import FarmComponent, token
from components.ledger.spec import FARM_TAG, LedgerSpec


def notifications(spec: LedgerSpec) -> dict[str, consumption.NotificationArgsDict]:
    kinds = [("actual", consumption.ThresholdType.ACTUAL, t) for t in spec.actual_thresholds]
    kinds += [("forecast", consumption.ThresholdType.FORECASTED, t) for t in spec.forecast_thresholds]
    return {f"{label}-{t:g}": {"enabled": True, "operator": consumption.OperatorType.GREATER_THAN, "threshold": t,
                                "threshold_type": kind, "contact_emails": list(spec.alert_emails)}
            for label, kind, t in kinds}


def month_start(today: dt.date | None = None) -> str:
    day = today or dt.datetime.now(dt.timezone.utc).date()
    return f"{day.year:04d}-{day.month:02d}-01T00:00:00Z"


class AzureLedger(FarmComponent):
    TOKEN = token("AzureLedger")

    def __init__(self, name: str, spec: LedgerSpec, *, farm: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        client = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        consumption.Budget(
            f"{name}-monthly", budget_name=f"{farm}-monthly", scope=client.subscription_id.apply(lambda s: f"/subscriptions/{s}"),
            amount=spec.monthly_budget, category=consumption.CategoryType.COST, time_grain=consumption.TimeGrainType.MONTHLY,
            # Azure wants the first day of a month; once created, the start date stays as it was.
            time_period={"start_date": month_start()},
            filter={"tags": {"name": FARM_TAG, "operator": consumption.BudgetOperatorType.IN_, "values": [farm]}},
            notifications=notifications(spec), opts=self.child(ignore_changes=["timePeriod"]))
        self.finish({})
