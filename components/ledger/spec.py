"""Ledger: cost control, cloud-neutral inputs.

Every stack has a monthly budget with alerts on actual and forecasted spend. Budgets alert up to a
day late and stop nothing by themselves, so the ledger pairs them with anomaly detection, an
optional hard stop, GPU quotas (breeding ground) and idle shutdown (barn).
"""

from __future__ import annotations

import re
from typing import Literal, Iterator

from pydantic import Field

from components.schema import Context, Problem, Spec, only_on

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

# How many notifications one budget may carry on each cloud.
MAX_NOTIFICATIONS = {"aws": 10, "gcp": 10, "azure": 5}
# How many people one budget notification can e-mail: AWS Budgets, 10 email subscribers per notification
# (Cost Management user guide, "Quotas and restrictions"); GCP, 5 monitoring notification channels per
# budget (billing budgets API, allUpdatesRule.monitoringNotificationChannels); Azure, 50 contact emails
# per notification (Consumption Budgets API, notification.contactEmails).
MAX_EMAILS = {"aws": 10, "gcp": 5, "azure": 50}
# Budget amounts each cloud takes: GCP's specified_amount is whole units plus nanos, and dragonfarm sets
# units only, so GCP budgets are whole numbers.
WHOLE_AMOUNTS = {"aws": False, "gcp": True, "azure": False}

# Currencies each cloud's budget accepts; GCP and Azure budgets use the billing account's currency.
CURRENCIES = {"aws": ("USD",), "gcp": None, "azure": None}


class LedgerSpec(Spec):
    monthly_budget: float = Field(gt=0, le=100_000_000, allow_inf_nan=False)
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
    """At 100% actual, stop GPU spend (AWS: a budget action denies new GPU launches; GCP: a function scales every GPU node pool to zero and stops the dev boxes; Azure: a Logic App scales every GPU agent pool to zero and deallocates the dev boxes). Off by default: it stops work."""
    anomaly_threshold: float = Field(default=100.0, gt=0)
    """Alert on a cost anomaly whose impact is at least this much, in `currency` (AWS)."""
    billing_account: str | None = None
    """GCP billing account id (XXXXXX-XXXXXX-XXXXXX) the budget belongs to (GCP only, required there)."""

    def problems(self, ctx: Context) -> Iterator[Problem]:
        for i, email in enumerate(self.alert_emails):
            if not re.fullmatch(EMAIL_PATTERN, email):
                yield Problem(f"alert_emails[{i}]", email, "an email address")
            elif email.lower() in (e.lower() for e in self.alert_emails[:i]):
                yield Problem(f"alert_emails[{i}]", email, "each address once (a repeated address is a second subscription with the same name)")
        for field in ("actual_thresholds", "forecast_thresholds"):
            values: list[float] = getattr(self, field)
            for i, value in enumerate(values):
                if not 0 < value <= 1000:
                    yield Problem(f"{field}[{i}]", value, "a percentage above 0 and at most 1000")
            if len(set(values)) != len(values):
                yield Problem(field, values, "distinct percentages")
        if len(self.alert_emails) > MAX_EMAILS[ctx.cloud]:
            yield Problem("alert_emails", f"{len(self.alert_emails)} addresses", f"at most {MAX_EMAILS[ctx.cloud]} on {ctx.cloud} "
                                                                                 "(a list address reaches more people)")
        if WHOLE_AMOUNTS[ctx.cloud] and not float(self.monthly_budget).is_integer():
            yield Problem("monthly_budget", self.monthly_budget, f"a whole amount on {ctx.cloud} (the budget is set in whole units)")
        count = len(self.actual_thresholds) + len(self.forecast_thresholds)
        if count > MAX_NOTIFICATIONS[ctx.cloud]:
            yield Problem("actual_thresholds", self.actual_thresholds,
                          f"at most {MAX_NOTIFICATIONS[ctx.cloud]} thresholds in all on {ctx.cloud} (got {count})")
        yield from only_on(ctx.cloud, "gcp", "billing_account", self.billing_account, r"[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}",
                           "a GCP billing account id such as 012345-6789AB-CDEF01")
        currencies = CURRENCIES[ctx.cloud]
        if currencies is not None and self.currency not in currencies:
            yield Problem("currency", self.currency, f"one of {', '.join(currencies)} on {ctx.cloud}")


def cost_tags(prefix: str, environment: str, extra: dict[str, str]) -> dict[str, str]:
    """The tags every taggable resource carries, for cost allocation and budget scoping."""
    return {**extra, "dragonfarm-farm": prefix, "dragonfarm-environment": environment, "managed-by": "dragonfarm"}


FARM_TAG = "dragonfarm-farm"


HOURS_PER_MONTH = 730


class StorageUsage(Spec):
    stored_gb: float = Field(default=0, ge=0)
    """GB in the bucket now (used for buckets whose objects never expire)."""
    ingest_gb_per_month: float = Field(default=0, ge=0)
    """GB written per month; with the lifecycle rules it sets the steady-state GB in each storage class."""


class UsageSpec(Spec):
    """What the farm is expected to use in a month: the input of the cost estimate (not used by `pulumi up`)."""

    gpu_node_hours: dict[str, float] = Field(default_factory=dict)
    """GPU node-hours per pool per month (nodes x hours they run)."""
    spot_share: float = Field(default=0.9, ge=0, le=1)
    """Share of a spot-with-fallback pool's hours actually obtained on spot."""
    storage: dict[str, StorageUsage] = Field(default_factory=dict)
    """Per trough: GB stored and GB ingested per month."""
    barn_hours: dict[str, float] = Field(default_factory=dict)
    """Hours each dev box runs per month (default 176: 8 h x 22 days; the idle stop keeps it near that)."""
    egress_gb: float = Field(default=0, ge=0)
    """GB sent to the internet per month."""
    nat_gb: float = Field(default=0, ge=0)
    """GB through NAT per month (image pulls, package downloads, API calls)."""
    log_ingest_gb: dict[Literal["flow_logs", "control_plane"], float] = Field(default_factory=dict)
    """GB a month written to the farm's log groups: VPC flow logs, Kubernetes control-plane logs. Unset: those log groups are listed as usage-based, not priced."""

    def problems(self, pools: dict[str, int], troughs: list[str], barns: list[str]) -> Iterator[Problem]:
        """`pools` maps pool name to max_nodes."""
        for pool, hours in self.gpu_node_hours.items():
            if pool not in pools:
                yield Problem(f"gpu_node_hours.{pool}", pool, f"a GPU pool of the stack: {', '.join(pools) or 'none'}")
            elif not 0 <= hours <= pools[pool] * HOURS_PER_MONTH:
                yield Problem(f"gpu_node_hours.{pool}", hours,
                              f"0 to {pools[pool] * HOURS_PER_MONTH} (max_nodes {pools[pool]} x {HOURS_PER_MONTH} h)")
        for key in self.storage:
            if key not in troughs:
                yield Problem(f"storage.{key}", key, f"a trough of the stack: {', '.join(troughs) or 'none'}")
        for key, hours in self.barn_hours.items():
            if key not in barns:
                yield Problem(f"barn_hours.{key}", key, f"a barn of the stack: {', '.join(barns) or 'none'}")
            elif not 0 <= hours <= HOURS_PER_MONTH:
                yield Problem(f"barn_hours.{key}", hours, f"0 to {HOURS_PER_MONTH}")
