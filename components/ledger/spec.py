"""Ledger: cost control, cloud-neutral inputs.

Every stack has a monthly budget with alerts on actual and forecasted spend. Budgets alert up to a
day late and stop nothing by themselves, so the ledger pairs them with anomaly detection, an
optional hard stop, GPU quotas (breeding ground) and idle shutdown (barn).
"""

from __future__ import annotations

import re
from typing import Iterator

from pydantic import Field

from components.schema import Context, Problem, Spec

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

# How many notifications one budget may carry on each cloud.
MAX_NOTIFICATIONS = {"aws": 10, "gcp": 10, "azure": 5}
# Currencies each cloud's budget accepts; GCP and Azure budgets use the billing account's currency.
CURRENCIES = {"aws": ("USD",), "gcp": None, "azure": None}


class LedgerSpec(Spec):
    monthly_budget: float = Field(gt=0)
    """Monthly budget for the farm, in `currency`."""
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    """ISO 4217 currency code of the budget."""
    alert_emails: list[str] = Field(min_length=1)
    """Who hears about budget alerts and anomalies."""
    actual_thresholds: list[float] = Field(default_factory=lambda: [50.0, 80.0, 100.0])
    """Alert when actual spend passes these percentages of the budget."""
    forecast_thresholds: list[float] = Field(default_factory=lambda: [100.0])
    """Alert when forecasted spend passes these percentages of the budget."""
    hard_stop: bool = False
    """At 100% actual, deny new GPU instance launches (AWS: a budget action). Off by default: it stops work."""
    anomaly_threshold: float = Field(default=100.0, gt=0)
    """Alert on a cost anomaly whose impact is at least this much, in `currency`."""

    def problems(self, ctx: Context) -> Iterator[Problem]:
        for i, email in enumerate(self.alert_emails):
            if not re.fullmatch(EMAIL_PATTERN, email):
                yield Problem(f"alert_emails[{i}]", email, "an email address")
        for field in ("actual_thresholds", "forecast_thresholds"):
            values: list[float] = getattr(self, field)
            for i, value in enumerate(values):
                if not 0 < value <= 1000:
                    yield Problem(f"{field}[{i}]", value, "a percentage above 0 and at most 1000")
            if len(set(values)) != len(values):
                yield Problem(field, values, "distinct percentages")
        count = len(self.actual_thresholds) + len(self.forecast_thresholds)
        if count > MAX_NOTIFICATIONS[ctx.cloud]:
            yield Problem("actual_thresholds", self.actual_thresholds,
                          f"at most {MAX_NOTIFICATIONS[ctx.cloud]} thresholds in all on {ctx.cloud} (got {count})")
        currencies = CURRENCIES[ctx.cloud]
        if currencies is not None and self.currency not in currencies:
            yield Problem("currency", self.currency, f"one of {', '.join(currencies)} on {ctx.cloud}")


def cost_tags(prefix: str, environment: str, extra: dict[str, str]) -> dict[str, str]:
    """The tags every taggable resource carries, for cost allocation and budget scoping."""
    return {**extra, "dragonfarm-farm": prefix, "dragonfarm-environment": environment, "managed-by": "dragonfarm"}


FARM_TAG = "dragonfarm-farm"
