"""Guardrails: one rule set, run offline by `dragonfarm check` and at deploy by the CrossGuard pack in `policy/`.

    from dragonfarm.guardrails import RULES, check, resources_from_plan

Rules are plain functions over the neutral `Resource` view (model.py); this package imports only the standard
library, so the policy pack's venv (pulumi-policy + pulumi) can import it from the repository root.
"""

from __future__ import annotations

from dragonfarm.guardrails import rules_aws, rules_azure, rules_cost, rules_gcp, rules_k8s  # noqa: F401  (register)
from dragonfarm.guardrails.engine import Finding, Report, check, resources_from_plan, rules_markdown, waiver_problems
from dragonfarm.guardrails.model import REGISTERED, Resource, Rule, Stack, Unknown

RULES: tuple[Rule, ...] = tuple(sorted(REGISTERED, key=lambda r: r.id))
BY_ID: dict[str, Rule] = {r.id: r for r in RULES}

__all__ = ["RULES", "BY_ID", "Finding", "Report", "Resource", "Rule", "Stack", "Unknown", "check", "resources_from_plan",
           "rules_markdown", "waiver_problems"]
