"""When the hard stop acts: the pure part of the function, tested offline."""

from __future__ import annotations


def over_budget(data: dict) -> bool:
    """Actual spend (costAmount) at or over the budget (budgetAmount) of a budget notification; a forecast
    never stops anything, and a message without a budget amount is never over it."""
    return float(data.get("costAmount", 0)) >= float(data.get("budgetAmount", float("inf")))
